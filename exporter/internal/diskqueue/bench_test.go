package diskqueue

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// benchItems and benchItemSize make a request like the exporter's: a full
// batch of 512 log records of about 300 bytes, some 150 KiB.
const (
	benchItems    = 512
	benchItemSize = 300
)

func benchBody() []byte {
	body := make([]byte, benchItems*benchItemSize)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(body)
	return body
}

// BenchmarkQueue measures one request through the queue, as the exporter's
// sender will use it: Push, then Peek and Remove once it is delivered,
// with a few requests always queued before it: a full batch (512 items,
// 150 KiB) and a small one (16 items). ns/op is per request, ns/event per
// item of it, cpu-ns the process's CPU time; the file is in the test's
// temporary directory, on the disk TMPDIR is on. The cases are the
// defaults, and the bbolt settings and layouts they were chosen over.
func BenchmarkQueue(b *testing.B) {
	cases := []struct {
		name string
		opts []Option
	}{
		{"default", nil}, // no fsync, freelist synced, map freelist, 16 KiB pages
		{"fsync", []Option{Fsync(true)}},
		{"nofreelistsync", []Option{withNoFreelistSync()}},
		{"fsync-nofreelistsync", []Option{Fsync(true), withNoFreelistSync()}},
		{"array-freelist", []Option{withFreelistType(bolt.FreelistArrayType)}},
		{"page-4k", []Option{withPageSize(4 << 10)}},
		{"page-32k", []Option{withPageSize(32 << 10)}},
		{"page-4k-fsync", []Option{withPageSize(4 << 10), Fsync(true)}},
		{"unchunked", []Option{withChunkSize(1 << 30)}},
		{"unchunked-fsync", []Option{withChunkSize(1 << 30), Fsync(true)}},
	}
	for _, items := range []int{benchItems, 16} {
		body := benchBody()[:items*benchItemSize]
		for _, c := range cases {
			b.Run(fmt.Sprintf("%s/items=%d", c.name, items), func(b *testing.B) {
				benchQueue(b, body, items, c.opts...)
			})
		}
	}
}

func benchQueue(b *testing.B, body []byte, items int, opts ...Option) {
	q, err := Open(filepath.Join(b.TempDir(), "q"), 1<<30, opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	const backlog = 8
	for range backlog {
		if err := q.Push(body, items); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if err := q.Push(body, items); err != nil {
			b.Fatal(err)
		}
		id, got, n, ok, err := q.Peek()
		if err != nil || !ok || n != items || len(got) != len(body) {
			b.Fatalf("Peek = %d, %d bytes, %d, %v, %v", id, len(got), n, ok, err)
		}
		if err := q.Remove(id); err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*items), "ns/event")
	// The CPU time the process spent (user and system, the kernel's
	// copies included): the part of ns/op that other processes on a busy
	// machine do not inflate.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*items), "cpu-ns/event")
	fi, err := os.Stat(q.Path())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
}

// BenchmarkFdatasync is what one flush of a small write costs on the disk
// TMPDIR is on, for comparison: Fsync(true) makes two per Push and two per
// Remove (the pages, then the meta page).
func BenchmarkFdatasync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "f"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	for b.Loop() {
		if _, err := f.WriteAt(page, 0); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen is what Open costs with a backlog queued (it checks the
// file's pages and reads each record's header).
func BenchmarkOpen(b *testing.B) {
	body := benchBody()
	for _, requests := range []int{0, 100, 1000} {
		b.Run(itoa(requests)+"-requests", func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "q")
			q, err := Open(path, 1<<30)
			if err != nil {
				b.Fatal(err)
			}
			for range requests {
				if err := q.Push(body, benchItems); err != nil {
					b.Fatal(err)
				}
			}
			if err := q.Close(); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				q, err := Open(path, 1<<30)
				if err != nil {
					b.Fatal(err)
				}
				if q.Requests() != int64(requests) {
					b.Fatalf("%d requests, want %d", q.Requests(), requests)
				}
				_ = q.Close()
			}
		})
	}
}
