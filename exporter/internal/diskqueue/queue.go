package diskqueue

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	// ErrFull is returned by Push when the request would take the queue
	// over its byte limit; the request was not queued.
	ErrFull = errors.New("disk queue full")
	// ErrCorrupt is wrapped by Open's error when the file is not a bbolt
	// database or its pages are damaged. Removing the file starts an empty
	// queue; what it held is lost.
	ErrCorrupt = errors.New("disk queue file corrupt")
	// ErrClosed is returned by a Queue's methods after Close.
	ErrClosed = errors.New("disk queue closed")
)

// The bbolt file holds one bucket, bucketName. A request is a record,
// its header then its body,
//
//	byte 0       formatVersion
//	bytes 1-4    the number of items
//	bytes 5-8    the length of the body
//	bytes 9-12   the CRC-32C (Castagnoli) of the body
//	bytes 13-16  the CRC-32C of bytes 0 to 12, so that Open can trust
//	             the counts without reading the body
//	bytes 17-    the body
//
// (numbers big-endian),
// cut into chunks of at most chunkSize bytes, each under a 12-byte key:
// the request's sequence number (the bucket's own sequence) then the
// chunk's index, both big-endian, so that bbolt's cursor order is the
// order of Push. Chunks, rather than one value per request, because bbolt
// keeps at least two values in a leaf and rewrites a leaf whole: with one
// value of 150 KiB per request, each Push and each Remove rewrote its
// neighbours too, some 1.1 MB a request, and took six times as long
// (BenchmarkQueue/unchunked).
const (
	bucketName    = "requests"
	formatVersion = 1
	headerLen     = 17
	keyLen        = 12
)

// defaultPageSize is the page size of a new file: 16 KiB pages, each
// holding 8 KiB of a request, take less than half the time per request of
// 4 KiB pages (bbolt writes each page of a commit with its own system
// call); 32 KiB pages take a little more again, in the bytes each Push
// rewrites (BenchmarkQueue/page-*). A file keeps the page size it was made
// with.
const defaultPageSize = 16 << 10

// chunkSize puts two chunks in a page with their keys (bbolt's page
// header is 16 bytes, each element's header 16).
func chunkSize(pageSize int) int { return (pageSize-16)/2 - 16 - keyLen }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// compactSlack is how much larger than twice its live data a file must be
// for Open to compact it: bbolt's own growth step (16 MiB), so that a
// freshly compacted file, which bbolt grows by that much at once, is not
// compacted again at the next Open.
const compactSlack = 16 << 20

// Option changes how Open opens a queue.
type Option func(*options)

type options struct {
	fsync       bool
	lockTimeout time.Duration
	// For the benchmarks, which compare them with the defaults.
	noFreelistSync bool
	freelistType   bolt.FreelistType
	chunkSize      int // 0: two to a page
	pageSize       int // of a new file
}

// Fsync sets whether each Push and Remove is flushed to the disk (fdatasync)
// before it returns. Without (the default), a Push that returned survives a
// crash or kill of the daemon, whose writes the kernel holds, but not a
// crash of the machine or a power loss, which may lose the last seconds of
// pushes and removals or leave the file corrupt (Open then fails with
// ErrCorrupt). With, it survives both, at the cost of two flushes per
// request (see the package documentation for the numbers).
func Fsync(on bool) Option { return func(o *options) { o.fsync = on } }

// LockTimeout bounds how long Open waits for another process that has the
// file open (bbolt locks it) to close it: 1 second unless set.
func LockTimeout(d time.Duration) Option { return func(o *options) { o.lockTimeout = d } }

// Queue is a FIFO of encoded export requests in one bbolt file. Push may be
// called from any goroutine; Peek and Remove are for one consumer goroutine
// at a time, which may run alongside Push.
type Queue struct {
	path  string
	max   int64
	chunk int // the largest value put
	db    *bolt.DB
	ready chan struct{}

	mu       sync.Mutex // guards the fields below
	bytes    int64      // of bodies queued, and reserved by pushes under way
	items    int64
	requests int64
	skipped  int64
	closed   bool

	txMu   sync.Mutex // one transaction at a time; guards db and broken
	broken error      // why the queue no longer works, if it does not

	pushMu  sync.Mutex // guards pushBuf
	pushBuf []byte     // the value being put; bbolt needs it until commit
	peekBuf []byte     // the body Peek returned; the consumer's
}

// Open opens the queue in the file at path, creating it (mode 0600) and
// its directory (0700) if need be, to hold at most maxBytes bytes of
// request bodies. Each signal needs its own file: bbolt locks it, so one
// process at a time has it open.
//
// What was queued before is queued again, oldest first, with the counts of
// Len, Requests and Bytes restored (by reading each record's header). A
// file left much larger than what it holds (by a backlog since sent) is
// compacted first; if that fails (a full disk, say), the queue opens
// uncompacted.
//
// A file that is not a queue or is damaged gives an error wrapping
// ErrCorrupt that names the file and says to remove it.
func Open(path string, maxBytes int64, opts ...Option) (*Queue, error) {
	o := options{lockTimeout: time.Second, freelistType: bolt.FreelistMapType, pageSize: defaultPageSize}
	for _, opt := range opts {
		opt(&o)
	}
	if maxBytes <= 0 {
		return nil, fmt.Errorf("open disk queue %s: maximum size %d bytes, want more than 0", path, maxBytes)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create disk queue directory: %w", err)
	}
	q := &Queue{path: path, max: maxBytes, ready: make(chan struct{}, 1)}
	db, err := q.open(o)
	if err != nil {
		return nil, err
	}
	q.db = db
	size, err := q.restore()
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	if fi, err := os.Stat(path); err == nil && fi.Size() > 2*size+compactSlack {
		if db, err := q.compact(o); err == nil {
			q.db = db
		} else if q.db, err = q.open(o); err != nil {
			return nil, err
		}
	}
	// The page size is the file's, which may predate defaultPageSize.
	q.chunk = o.chunkSize
	if q.chunk <= 0 {
		q.chunk = chunkSize(q.db.Info().PageSize)
	}
	q.chunk = max(q.chunk, headerLen)
	return q, nil
}

// open opens the bbolt file and makes sure it holds the bucket.
func (q *Queue) open(o options) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil { // bbolt panics on some damaged pages
			if db != nil {
				_ = db.Close()
			}
			db, err = nil, q.corrupt(fmt.Errorf("%v", r))
		}
	}()
	db, err = bolt.Open(q.path, 0o600, &bolt.Options{
		Timeout:        o.lockTimeout,
		NoSync:         !o.fsync,
		NoFreelistSync: o.noFreelistSync,
		PageSize:       o.pageSize,
		FreelistType:   o.freelistType,
	})
	if err != nil {
		return nil, q.openErr(err, o)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte(bucketName)) != nil {
			return nil
		}
		others := false
		_ = tx.ForEach(func([]byte, *bolt.Bucket) error { others = true; return nil })
		if others {
			return fmt.Errorf("a bbolt database, but not a queue (no %q bucket)", bucketName)
		}
		_, err := tx.CreateBucket([]byte(bucketName))
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, q.openErr(err, o)
	}
	return db, nil
}

// openErr says why the file could not be opened: it is locked, the system
// refused (permissions, a full disk), or else it is damaged.
func (q *Queue) openErr(err error, o options) error {
	var errno syscall.Errno
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return fmt.Errorf("open disk queue %s: another process has it open (waited %v)", q.path, o.lockTimeout)
	case errors.As(err, new(*fs.PathError)):
		return fmt.Errorf("open disk queue: %w", err) // it names the file
	case errors.As(err, &errno):
		return fmt.Errorf("open disk queue %s: %w", q.path, err)
	}
	return q.corrupt(err)
}

func (q *Queue) corrupt(err error) error {
	return fmt.Errorf("open disk queue %s: %w: %w; remove the file to start an empty queue (what it held is lost)", q.path, ErrCorrupt, err)
}

// restore checks the file's structure and counts what it holds. It returns
// the bytes of its keys and values.
func (q *Queue) restore() (size int64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = q.corrupt(fmt.Errorf("%v", r))
		}
	}()
	var last, seq uint64
	err = q.db.View(func(tx *bolt.Tx) error {
		var err error
		for cerr := range tx.Check() { // drained: Check stops when we do
			err = cmp.Or(err, cerr)
		}
		if err != nil {
			return err
		}
		b := tx.Bucket([]byte(bucketName))
		c := b.Cursor()
		k, v := c.First()
		for k != nil {
			if n, body, ok := sizeOf(k, v); ok {
				q.items += n
				q.bytes += body
				q.requests++
			}
			seq, _, ok := parseKey(k)
			if !ok {
				size += int64(len(k) + len(v))
				k, v = c.Next()
				continue
			}
			last = max(last, seq)
			// Its chunks, which hold its bytes.
			prefix := k[:8]
			for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				size += int64(len(k) + len(v))
			}
		}
		seq = b.Sequence()
		return nil
	})
	if err == nil && seq < last {
		// The sequence must be past every key, or new requests would
		// be taken for older ones.
		err = q.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte(bucketName)).SetSequence(last)
		})
	}
	if err != nil {
		return 0, q.corrupt(err)
	}
	return size, nil
}

// compact copies the queue into a new file that replaces the old one, and
// returns the new one open. The old one is closed either way.
func (q *Queue) compact(o options) (*bolt.DB, error) {
	tmp := q.path + ".compact"
	_ = os.Remove(tmp) // left by a crash while compacting
	err := func() error {
		dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: o.lockTimeout, NoSync: true, PageSize: o.pageSize})
		if err != nil {
			return err
		}
		err = bolt.Compact(dst, q.db, 64<<20)
		if err == nil {
			err = dst.Sync()
		}
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
		return err
	}()
	if cerr := q.db.Close(); err == nil {
		err = cerr
	}
	q.db = nil
	if err == nil {
		err = os.Rename(tmp, q.path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("compact disk queue %s: %w", q.path, err)
	}
	if d, err := os.Open(filepath.Dir(q.path)); err == nil {
		_ = d.Sync() // the rename
		_ = d.Close()
	}
	return q.open(o)
}

func key(seq uint64, chunk uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(make([]byte, 0, keyLen), seq), chunk)
}

func parseKey(k []byte) (seq uint64, chunk uint32, ok bool) {
	if len(k) != keyLen {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(k), binary.BigEndian.Uint32(k[8:]), true
}

// sizeOf returns the number of items and body bytes of the record whose
// first chunk is k, v, as its header says; ok is false, and the record is
// not counted, if it has no header or a damaged one.
func sizeOf(k, v []byte) (n, body int64, ok bool) {
	if _, chunk, kok := parseKey(k); !kok || chunk != 0 || !headerOK(v) {
		return 0, 0, false
	}
	return int64(binary.BigEndian.Uint32(v[1:5])), int64(binary.BigEndian.Uint32(v[5:9])), true
}

func headerOK(rec []byte) bool {
	return len(rec) >= headerLen && rec[0] == formatVersion &&
		crc32.Checksum(rec[:13], castagnoli) == binary.BigEndian.Uint32(rec[13:17])
}

// decode returns the number of items and the body of a record, or an error
// if it is damaged.
func decode(rec []byte) (n int, body []byte, err error) {
	switch {
	case !headerOK(rec):
		return 0, nil, errors.New("record header damaged")
	case int64(binary.BigEndian.Uint32(rec[5:9])) != int64(len(rec)-headerLen):
		return 0, nil, fmt.Errorf("record body of %d bytes, its header says %d", len(rec)-headerLen, binary.BigEndian.Uint32(rec[5:9]))
	case crc32.Checksum(rec[headerLen:], castagnoli) != binary.BigEndian.Uint32(rec[9:13]):
		return 0, nil, errors.New("record body checksum mismatch")
	}
	return int(binary.BigEndian.Uint32(rec[1:5])), rec[headerLen:], nil
}

// Push appends one encoded export request standing for n items (log
// records or spans). The queue keeps a copy of body. When the request
// would take the queue's bodies over its maximum size, Push refuses it
// with an error wrapping ErrFull and writes nothing: the newest request is
// dropped, and what is queued is kept, as the stream drops the newest
// batch when its queue in memory is full. The caller counts the n items
// lost.
func (q *Queue) Push(body []byte, n int) error {
	if n < 0 || int64(n) > math.MaxUint32 {
		return fmt.Errorf("push to disk queue: %d items, want 0 to %d", n, uint32(math.MaxUint32))
	}
	size := int64(len(body))
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if q.bytes+size > q.max || size > math.MaxUint32 {
		queued := q.bytes
		q.mu.Unlock()
		return fmt.Errorf("push %d bytes to disk queue %s holding %d of %d: %w", size, q.path, queued, q.max, ErrFull)
	}
	q.bytes += size // reserved: another Push cannot take it
	q.mu.Unlock()

	q.pushMu.Lock()
	rec := append(q.pushBuf[:0], make([]byte, headerLen)...)
	rec = append(rec, body...)
	rec[0] = formatVersion
	binary.BigEndian.PutUint32(rec[1:5], uint32(n))
	binary.BigEndian.PutUint32(rec[5:9], uint32(len(body)))
	binary.BigEndian.PutUint32(rec[9:13], crc32.Checksum(body, castagnoli))
	binary.BigEndian.PutUint32(rec[13:17], crc32.Checksum(rec[:13], castagnoli))
	q.pushBuf = rec
	err := q.tx(true, func(b *bolt.Bucket) error {
		b.FillPercent = 1 // keys only ever grow: fill each page
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		// The chunks lie in rec until the commit, as bbolt needs.
		for i := 0; i == 0 || i*q.chunk < len(rec); i++ {
			if err := b.Put(key(seq, uint32(i)), rec[i*q.chunk:min((i+1)*q.chunk, len(rec))]); err != nil {
				return err
			}
		}
		return nil
	})
	q.pushMu.Unlock()

	q.mu.Lock()
	if err != nil {
		q.bytes -= size
	} else {
		q.items += int64(n)
		q.requests++
	}
	q.mu.Unlock()
	if err != nil {
		return q.opErr("push to", err)
	}
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return nil
}

func (q *Queue) opErr(verb string, err error) error {
	if errors.Is(err, ErrClosed) || errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return fmt.Errorf("%s disk queue %s: %w", verb, q.path, err)
}

// Ready is signalled after each Push. It holds one signal at most, so a
// consumer that finds the queue empty waits on it and then calls Peek
// again; a signal may find the request already taken. It is not closed by
// Close.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// Peek returns the oldest request, its id for Remove and its number of
// items, without removing it; ok is false when the queue is empty. It does
// not wait (see Ready). The body is a copy owned by the queue, valid until
// the next Peek or Remove: send it, do not keep it.
//
// A record that cannot be read (its checksum or header is wrong: the disk
// damaged it) is removed and counted by Skipped, and Peek goes on to the
// next.
func (q *Queue) Peek() (id uint64, body []byte, n int, ok bool, err error) {
	for {
		var bad []byte // the key of a damaged record's first chunk
		err = q.tx(false, func(b *bolt.Bucket) error {
			c := b.Cursor()
			k, v := c.First()
			if k == nil {
				return nil
			}
			seq, chunk, kok := parseKey(k)
			switch {
			case !kok:
				bad = bytes.Clone(k)
				return nil
			case chunk != 0:
				bad = key(seq, 0)
				return nil
			}
			// The chunks lie in bbolt's memory map, valid only in this
			// transaction.
			rec := q.peekBuf[:0]
			for i := uint32(0); ; i++ {
				rec = append(rec, v...)
				k, v = c.Next()
				if s, chunk, _ := parseKey(k); k == nil || s != seq || len(k) != keyLen {
					break
				} else if chunk != i+1 {
					bad = key(seq, 0)
					return nil
				}
			}
			q.peekBuf = rec
			nn, data, derr := decode(rec)
			if derr != nil {
				bad = key(seq, 0)
				return nil
			}
			id, body, n, ok = seq, data, nn, true
			return nil
		})
		switch {
		case err != nil:
			return 0, nil, 0, false, q.opErr("peek at", err)
		case bad == nil:
			return id, body, n, ok, nil
		}
		if err := q.remove(bad, true); err != nil {
			return 0, nil, 0, false, err
		}
	}
}

// tx runs f on the bucket in a transaction, writable or not, one at a
// time. bbolt panics on some damaged pages, which Open's check finds
// unless the damage is done after; it may then leave its locks held, so
// tx makes the panic an error, and the queue broken: from then on every
// call returns that error without touching bbolt, and nothing waits on
// its locks (only tx takes them, under txMu).
func (q *Queue) tx(writable bool, f func(*bolt.Bucket) error) (err error) {
	q.txMu.Lock()
	defer q.txMu.Unlock()
	switch {
	case q.broken != nil:
		return q.broken
	case q.db == nil:
		return ErrClosed
	}
	defer func() {
		if r := recover(); r != nil {
			q.broken = fmt.Errorf("%w: %v; remove the file, and restart, to start an empty queue (what it held is lost)", ErrCorrupt, r)
			err = q.broken
		}
	}()
	run := q.db.View
	if writable {
		run = q.db.Update
	}
	return run(func(tx *bolt.Tx) error { return f(tx.Bucket([]byte(bucketName))) })
}

// Remove deletes the request of id, once delivered or refused for good. An
// id no longer queued is ignored.
func (q *Queue) Remove(id uint64) error {
	return q.remove(key(id, 0), false)
}

// remove deletes the record whose first key is k: all its chunks, or only
// k if it is not a key of ours. skip counts it as damaged.
func (q *Queue) remove(k []byte, skip bool) error {
	var n, size int64
	counted := false
	err := q.tx(true, func(b *bolt.Bucket) error {
		if len(k) != keyLen {
			return b.Delete(k) // a stray key
		}
		// All the chunks of k's request: none if it is not queued, and
		// not the first if it is damaged so.
		c := b.Cursor()
		first, v := c.Seek(k)
		if first == nil || !bytes.HasPrefix(first, k[:8]) {
			return nil
		}
		n, size, counted = sizeOf(first, v)
		var keys [][]byte
		for ; first != nil && bytes.HasPrefix(first, k[:8]); first, _ = c.Next() {
			keys = append(keys, bytes.Clone(first))
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return q.opErr("remove from", err)
	}
	q.mu.Lock()
	if counted {
		q.items -= n
		q.bytes -= size
		q.requests--
	}
	if skip {
		q.skipped++
	}
	q.mu.Unlock()
	return nil
}

// Len returns the number of items (the sum of Push's n) queued.
func (q *Queue) Len() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.items
}

// Requests returns the number of requests queued.
func (q *Queue) Requests() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.requests
}

// Bytes returns the bytes of the bodies queued, which Open's maxBytes
// bounds. The file is larger: bbolt's pages, and room freed and not yet
// reused.
func (q *Queue) Bytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// Skipped returns the number of damaged records Peek has dropped since
// Open. Their items are lost, and not in Len; how many they were is not
// known when the header was what the disk damaged.
func (q *Queue) Skipped() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.skipped
}

// Path returns the file's name.
func (q *Queue) Path() string { return q.path }

// Close closes the file, after the Push, Peek or Remove under way. What is
// queued stays in the file for the next Open. A broken queue (see
// ErrCorrupt) leaves the file open, as bbolt's locks may be held, and
// returns why it is broken.
func (q *Queue) Close() error {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.txMu.Lock()
	defer q.txMu.Unlock()
	if q.broken != nil {
		return q.opErr("close", q.broken)
	}
	if q.db == nil {
		return nil
	}
	err := q.db.Close()
	q.db = nil
	if err != nil {
		return fmt.Errorf("close disk queue %s: %w", q.path, err)
	}
	return nil
}
