package diskqueue

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestMain runs the child of TestCrash when asked to.
func TestMain(m *testing.M) {
	if path := os.Getenv("DISKQUEUE_CRASH_PATH"); path != "" {
		crashChild(path, os.Getenv("DISKQUEUE_CRASH_FSYNC") == "1")
	}
	os.Exit(m.Run())
}

// body returns a request body of size bytes that says which it is.
func body(i, size int) []byte {
	b := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(i), byte(i >> 8), byte(i >> 16)})
	_, _ = r.Read(b)
	return b
}

func open(t testing.TB, path string, maxBytes int64, opts ...Option) *Queue {
	t.Helper()
	q, err := Open(path, maxBytes, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func push(t testing.TB, q *Queue, body []byte, n int) {
	t.Helper()
	if err := q.Push(body, n); err != nil {
		t.Fatalf("Push(%d bytes, %d): %v", len(body), n, err)
	}
}

// pop peeks at the oldest request, checks it is want with n items, and
// removes it. It returns its id.
func pop(t testing.TB, q *Queue, want []byte, n int) uint64 {
	t.Helper()
	id, got, gotN, ok, err := q.Peek()
	if err != nil || !ok {
		t.Fatalf("Peek = %v, %v; want a request", ok, err)
	}
	if !bytes.Equal(got, want) || gotN != n {
		t.Fatalf("Peek = %d bytes, %d items; want %d bytes (equal: %v), %d items", len(got), gotN, len(want), bytes.Equal(got, want), n)
	}
	if err := q.Remove(id); err != nil {
		t.Fatal(err)
	}
	return id
}

func wantEmpty(t testing.TB, q *Queue) {
	t.Helper()
	if _, _, _, ok, err := q.Peek(); ok || err != nil {
		t.Fatalf("Peek = %v, %v; want an empty queue", ok, err)
	}
	if q.Len() != 0 || q.Bytes() != 0 || q.Requests() != 0 {
		t.Fatalf("Len, Bytes, Requests = %d, %d, %d; want 0", q.Len(), q.Bytes(), q.Requests())
	}
}

func wantCounts(t testing.TB, q *Queue, items, bytes, requests int64) {
	t.Helper()
	if q.Len() != items || q.Bytes() != bytes || q.Requests() != requests {
		t.Fatalf("Len, Bytes, Requests = %d, %d, %d; want %d, %d, %d", q.Len(), q.Bytes(), q.Requests(), items, bytes, requests)
	}
}

// TestFIFO: requests of any size come back whole, oldest first, with their
// item counts, under increasing ids.
func TestFIFO(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes []int
	}{
		{"empty bodies", []int{0, 0, 0}},
		{"small", []int{1, 10, 100}},
		// A record is its 13-byte header then the body, cut into chunks.
		{"chunk edges", []int{chunkSize(defaultPageSize) - headerLen - 1, chunkSize(defaultPageSize) - headerLen, chunkSize(defaultPageSize) - headerLen + 1, 2*chunkSize(defaultPageSize) - headerLen}},
		{"batches", []int{150 << 10, 300, 512 * 300, 4 << 20, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := open(t, filepath.Join(t.TempDir(), "q"), 64<<20)
			var total int64
			for i, size := range tc.sizes {
				push(t, q, body(i, size), i+1)
				total += int64(size)
			}
			wantCounts(t, q, int64(len(tc.sizes)*(len(tc.sizes)+1)/2), total, int64(len(tc.sizes)))
			var last uint64
			for i, size := range tc.sizes {
				id := pop(t, q, body(i, size), i+1)
				if id <= last {
					t.Fatalf("id %d after %d", id, last)
				}
				last = id
			}
			wantEmpty(t, q)
		})
	}
}

// TestRestart: what was queued when the queue was closed is queued when it
// is opened again, counts and all, and new requests go after it.
func TestRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q")
	q := open(t, path, 64<<20)
	for i := range 5 {
		push(t, q, body(i, 100<<10), 10+i)
	}
	pop(t, q, body(0, 100<<10), 10)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Push(body(9, 1), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Push after Close = %v, want ErrClosed", err)
	}
	if _, _, _, _, err := q.Peek(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Peek after Close = %v, want ErrClosed", err)
	}

	q = open(t, path, 64<<20)
	wantCounts(t, q, 11+12+13+14, 4*100<<10, 4)
	if err := q.Remove(12345); err != nil {
		t.Fatalf("Remove of an id not queued: %v", err)
	}
	wantCounts(t, q, 11+12+13+14, 4*100<<10, 4)
	push(t, q, body(5, 7), 1)
	for i := 1; i < 5; i++ {
		pop(t, q, body(i, 100<<10), 10+i)
	}
	pop(t, q, body(5, 7), 1)
	wantEmpty(t, q)
}

// TestCrash: a request Push returned survives the daemon being killed
// before it closed the queue, in either mode: the kernel has the writes.
func TestCrash(t *testing.T) {
	for _, fsync := range []bool{false, true} {
		t.Run("fsync="+strconv.FormatBool(fsync), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "q")
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "DISKQUEUE_CRASH_PATH="+path, "DISKQUEUE_CRASH_FSYNC="+map[bool]string{true: "1"}[fsync])
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child: %v, want killed\n%s", err, out)
			}
			q := open(t, path, 64<<20, Fsync(fsync))
			wantCounts(t, q, crashRequests*(crashRequests+1)/2, crashRequests*crashSize, crashRequests)
			for i := range crashRequests {
				pop(t, q, body(i, crashSize), i+1)
			}
			wantEmpty(t, q)
		})
	}
}

const crashRequests, crashSize = 20, 50 << 10

// crashChild pushes crashRequests requests and kills itself.
func crashChild(path string, fsync bool) {
	q, err := Open(path, 64<<20, Fsync(fsync))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := range crashRequests {
		if err := q.Push(body(i, crashSize), i+1); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// TestFull: a request that would take the queue over its size is refused,
// nothing written, and what is queued is kept; removing makes room.
func TestFull(t *testing.T) {
	const max = 1000
	for _, tc := range []struct {
		name    string
		queued  []int // sizes pushed first, all accepted
		refused int   // the size then refused
		remove  int   // how many to remove before it is accepted
	}{
		{"over by one", []int{400, 400}, 201, 1},
		{"exactly full then one byte", []int{500, 500}, 1, 1},
		{"larger than the queue", nil, max + 1, -1},
		{"larger than the room, after removing all", []int{300, 300, 300}, 200, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "q")
			q := open(t, path, max)
			var total int64
			for i, size := range tc.queued {
				push(t, q, body(i, size), 1)
				total += int64(size)
			}
			err := q.Push(body(99, tc.refused), 7)
			if !errors.Is(err, ErrFull) {
				t.Fatalf("Push(%d bytes) = %v, want ErrFull", tc.refused, err)
			}
			t.Log(err)
			wantCounts(t, q, int64(len(tc.queued)), total, int64(len(tc.queued)))
			if tc.remove < 0 {
				return
			}
			for i := range tc.remove {
				pop(t, q, body(i, tc.queued[i]), 1)
			}
			push(t, q, body(99, tc.refused), 7)
			for i := tc.remove; i < len(tc.queued); i++ {
				pop(t, q, body(i, tc.queued[i]), 1)
			}
			pop(t, q, body(99, tc.refused), 7)
			wantEmpty(t, q)
		})
	}
}

// TestFileBounded: a queue pushed to and drained for a long time keeps its
// file the size its backlog needs: bbolt reuses the pages freed.
func TestFileBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q")
	const maxBytes, size = 2 << 20, 150 << 10
	q := open(t, path, maxBytes)
	next, oldest := 0, 0
	sizes := make([]int64, 0, 4)
	const rounds = 300 // some 1300 requests, 190 MB, through the queue
	bodies := make([][]byte, 16)
	for i := range bodies {
		bodies[i] = body(i, size)
	}
	for r := range rounds {
		// A backlog that swings between empty and full.
		for range 1 + r%12 {
			if err := q.Push(bodies[next%len(bodies)], 512); errors.Is(err, ErrFull) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			next++
		}
		for range 1 + (r+5)%12 {
			if oldest == next {
				break
			}
			pop(t, q, bodies[oldest%len(bodies)], 512)
			oldest++
		}
		if (r+1)%(rounds/4) == 0 {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, fi.Size())
		}
	}
	t.Logf("%d requests of %d KiB through a queue of at most %d MiB: file sizes %v", next, size>>10, maxBytes>>20, sizes)
	for _, s := range sizes {
		if s > 4*maxBytes {
			t.Fatalf("file sizes %v: over %d", sizes, 4*maxBytes)
		}
	}
	if sizes[len(sizes)-1] > sizes[0] {
		t.Fatalf("file sizes %v: still growing", sizes)
	}
}

// TestCompactOnOpen: a file left large by a backlog since sent shrinks at
// the next Open, keeping what is still queued and its order.
func TestCompactOnOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q")
	const size = 150 << 10
	q := open(t, path, 1<<30)
	const backlog = 150 // 22 MiB
	for i := range backlog {
		push(t, q, body(i, size), i)
	}
	for i := range backlog - 2 {
		pop(t, q, body(i, size), i)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)
	q = open(t, path, 1<<30)
	after, _ := os.Stat(path)
	t.Logf("file of %d MiB compacted to %d KiB", before.Size()>>20, after.Size()>>10)
	if after.Size() >= before.Size()/4 {
		t.Fatalf("file of %d bytes after Open, %d before: not compacted", after.Size(), before.Size())
	}
	if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the compaction's file is left: %v", err)
	}
	if ps := q.db.Info().PageSize; ps != defaultPageSize {
		t.Errorf("page size %d after compaction, want %d", ps, defaultPageSize)
	}
	wantCounts(t, q, 2*backlog-3, 2*size, 2)
	push(t, q, body(999, 10), 1)
	pop(t, q, body(backlog-2, size), backlog-2)
	pop(t, q, body(backlog-1, size), backlog-1)
	pop(t, q, body(999, 10), 1)
	wantEmpty(t, q)
	// Not compacted again.
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	open(t, path, 1<<30)
	again, _ := os.Stat(path)
	if again.Size() != after.Size() {
		t.Fatalf("file of %d bytes, %d after the compaction", again.Size(), after.Size())
	}
}

// TestConcurrent: one goroutine pushes while another peeks and removes,
// waiting on Ready when the queue is empty; pushes refused as full are
// tried again. Every request arrives once, in order.
func TestConcurrent(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "q"), 256<<10)
	const requests = 400
	size := func(i int) int { return 1 + (i*7919)%(64<<10) }
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < requests; {
			err := q.Push(body(i, size(i)), i)
			switch {
			case errors.Is(err, ErrFull):
				time.Sleep(100 * time.Microsecond)
			case err != nil:
				t.Error(err)
				return
			default:
				i++
			}
		}
	})
	timeout := time.After(time.Minute)
	for i := 0; i < requests; {
		id, got, n, ok, err := q.Peek()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			select {
			case <-q.Ready():
			case <-timeout:
				t.Fatalf("request %d did not come", i)
			}
			continue
		}
		if n != i || !bytes.Equal(got, body(i, size(i))) {
			t.Fatalf("request %d: got %d items, %d bytes", i, n, len(got))
		}
		if err := q.Remove(id); err != nil {
			t.Fatal(err)
		}
		i++
	}
	wg.Wait()
	wantEmpty(t, q)
}

// TestCorruptFile: a file that is not a queue, or whose pages are damaged,
// is refused with an error naming it and saying what to do.
func TestCorruptFile(t *testing.T) {
	// queueFile writes a queue of a few requests and returns its bytes.
	queueFile := func(t *testing.T) []byte {
		path := filepath.Join(t.TempDir(), "q")
		q := open(t, path, 64<<20)
		for i := range 10 {
			push(t, q, body(i, 20<<10), 1)
		}
		pop(t, q, body(0, 20<<10), 1) // a freelist
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const page = defaultPageSize
	for _, tc := range []struct {
		name string
		file func(t *testing.T, path string) // writes the damaged file
	}{
		{"garbage", func(t *testing.T, path string) {
			writeFile(t, path, body(1, 64<<10))
		}},
		{"truncated", func(t *testing.T, path string) {
			writeFile(t, path, queueFile(t)[:10])
		}},
		{"both meta pages zeroed", func(t *testing.T, path string) {
			b := queueFile(t)
			clear(b[:2*page])
			writeFile(t, path, b)
		}},
		{"data pages garbage", func(t *testing.T, path string) {
			b := queueFile(t)
			copy(b[2*page:], body(2, len(b)-2*page))
			writeFile(t, path, b)
		}},
		{"data pages zeroed", func(t *testing.T, path string) {
			b := queueFile(t)
			clear(b[2*page:])
			writeFile(t, path, b)
		}},
		{"another bbolt database", func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error {
				_, err := tx.CreateBucket([]byte("something else"))
				return err
			}); err != nil {
				t.Fatal(err)
			}
			_ = db.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "q")
			tc.file(t, path)
			q, err := Open(path, 64<<20)
			if err == nil {
				_ = q.Close()
				t.Fatal("Open succeeded")
			}
			t.Log(err)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "remove the file") {
				t.Fatalf("Open = %v; want ErrCorrupt naming %s and saying to remove it", err, path)
			}
			// As it says: removed, the queue starts empty.
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			q = open(t, path, 64<<20)
			wantEmpty(t, q)
		})
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedRecord: records whose bytes are wrong are dropped by Peek and
// counted, and the good ones around them come through.
func TestDamagedRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q")
	q := open(t, path, 64<<20)
	size := 4 * chunkSize(defaultPageSize) // five chunks
	for i := range 7 {
		push(t, q, body(i, size), i+1)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	// Damage requests 2 to 6 (ids 2 to 6) behind the queue's back.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketName))
		flip := func(k []byte, at int) error {
			v := bytes.Clone(b.Get(k))
			v[at] ^= 0xff
			return b.Put(k, v)
		}
		return errors.Join(
			flip(key(2, 3), 100),  // a body byte: the body's checksum
			flip(key(3, 0), 2),    // the item count: the header's
			flip(key(4, 0), 0),    // the format
			b.Delete(key(5, 0)),   // the first chunk, with the header
			b.Delete(key(6, 2)),   // a chunk in the middle
			b.Put(key(6, 9), nil), // and one after the end
			// A key that is not ours, before them all.
			b.Put([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0}, []byte("x")),
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()

	q = open(t, path, 64<<20)
	// Counted from their headers, all but requests 3's and 4's
	// (damaged) and 5's (gone).
	wantCounts(t, q, 1+2+6+7, 4*int64(size), 4)
	pop(t, q, body(0, size), 1)
	pop(t, q, body(6, size), 7)
	if q.Skipped() != 6 {
		t.Fatalf("Skipped = %d, want 6 (5 requests and a stray key)", q.Skipped())
	}
	wantEmpty(t, q)
}

// TestOpen: the file and its directory are made private; bad arguments, a
// file in use and a directory that cannot be made are refused clearly.
func TestOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "queues", "logs")
	path := filepath.Join(dir, "q")
	q := open(t, path, 1<<20)
	for p, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
	if _, err := Open(path, 1<<20, LockTimeout(50*time.Millisecond)); err == nil || !strings.Contains(err.Error(), "another process has it open") {
		t.Errorf("Open of a file open = %v, want it in use", err)
	}
	_ = q.Close()

	for _, tc := range []struct {
		name     string
		path     string
		maxBytes int64
		want     string
	}{
		{"no room", path, 0, "maximum size 0 bytes, want more than 0"},
		{"directory is a file", filepath.Join(path, "q"), 1 << 20, "create disk queue directory"},
		{"path is a directory", dir, 1 << 20, "open disk queue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := Open(tc.path, tc.maxBytes)
			if err == nil {
				_ = q.Close()
				t.Fatal("Open succeeded")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open = %v, want %q and not ErrCorrupt", err, tc.want)
			}
		})
	}
	if err := open(t, path, 1<<20).Push(nil, -1); err == nil {
		t.Error("Push of -1 items succeeded")
	}
}

// TestSequenceRepaired: a bucket sequence behind the keys (a file written
// by another tool) is moved past them, so new requests go last.
func TestSequenceRepaired(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q")
	q := open(t, path, 1<<20)
	push(t, q, body(0, 10), 1)
	push(t, q, body(1, 10), 1)
	_ = q.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucketName)).SetSequence(0) }); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	q = open(t, path, 1<<20)
	push(t, q, body(2, 10), 1)
	for i := range 3 {
		if id := pop(t, q, body(i, 10), 1); id != uint64(i+1) {
			t.Fatalf("request %d has id %d", i, id)
		}
	}
}

// TestOtherPageSize: a file made with other pages (4 KiB, bbolt's default)
// keeps them, and its requests are cut to fit them.
func TestOtherPageSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q")
	q := open(t, path, 64<<20, withPageSize(4096))
	push(t, q, body(0, 100<<10), 1)
	_ = q.Close()
	q = open(t, path, 64<<20)
	if ps := q.db.Info().PageSize; ps != 4096 || q.chunk != chunkSize(4096) {
		t.Fatalf("page size %d, chunks of %d; want 4096, %d", ps, q.chunk, chunkSize(4096))
	}
	push(t, q, body(1, 100<<10), 2)
	pop(t, q, body(0, 100<<10), 1)
	pop(t, q, body(1, 100<<10), 2)
	wantEmpty(t, q)
}

// TestDamagedWhileOpen: pages damaged under an open queue make errors,
// not panics, and nothing hangs on the locks bbolt's panics leave held.
func TestDamagedWhileOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q")
	q, err := Open(path, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		push(t, q, body(i, 50<<10), 1)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	// Every page but the meta pages: the tree, the freelist, the records.
	if _, err := f.WriteAt(body(7, int(fi.Size())-2*defaultPageSize), 2*defaultPageSize); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	done := make(chan error)
	go func() {
		var errs []error
		for range 3 {
			_, _, _, _, err := q.Peek()
			errs = append(errs, err)
			errs = append(errs, q.Push(body(99, 50<<10), 1), q.Remove(1))
		}
		errs = append(errs, q.Close())
		done <- errors.Join(errs...)
	}()
	select {
	case err := <-done:
		t.Log(err)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("errors %v; want ErrCorrupt", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the queue hangs")
	}
	if err := q.Push(nil, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Push after Close = %v, want ErrClosed", err)
	}
}
