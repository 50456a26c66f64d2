package procfs

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for Cache.now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Duration
}

func (c *fakeClock) now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t += d
	c.mu.Unlock()
}

// newTestCache returns a Cache over a fresh fake procfs tree with a fake clock.
func newTestCache(t *testing.T, size int, ttl time.Duration) (*Cache, string, *fakeClock) {
	t.Helper()
	root := t.TempDir()
	c, err := NewCache(root, size, ttl, false)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Hour}
	c.now = clock.now
	return c, root, clock
}

// process writes a fake process pid whose executable is exe.
func process(t *testing.T, root string, pid uint32, exe string) {
	t.Helper()
	writeFakeProcess(t, root, pid, fakeProcess{statusFile: "status-nonspid", cgroup: "0::/system.slice/docker-" + id1 + ".scope\n", exe: exe})
}

func TestNewCacheRejectsBadArguments(t *testing.T) {
	tests := []struct {
		name string
		size int
		ttl  time.Duration
	}{
		{"zero size", 0, time.Second},
		{"negative size", -1, time.Second},
		{"zero ttl", 10, 0},
		{"negative ttl", 10, -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := NewCache("/proc", tt.size, tt.ttl, false); err == nil {
				t.Errorf("NewCache(size %d, ttl %v) = %v, want an error", tt.size, tt.ttl, c)
			}
		})
	}
}

func TestCacheHitAndExpiry(t *testing.T) {
	c, root, clock := newTestCache(t, 8, 30*time.Second)
	process(t, root, 100, "/usr/bin/old")

	info, ok := c.Get(100)
	if !ok || info.ExePath != "/usr/bin/old" || info.ContainerID != id1 || info.VPID != 100 {
		t.Fatalf("first Get = %+v, %v", info, ok)
	}
	// The pid is reused by another program; the cache answers the old one until the ttl passes.
	process(t, root, 100, "/usr/bin/new")
	clock.advance(29 * time.Second)
	if info, _ := c.Get(100); info.ExePath != "/usr/bin/old" {
		t.Errorf("Get before ttl = %q, want the cached /usr/bin/old", info.ExePath)
	}
	clock.advance(time.Second)
	if info, _ := c.Get(100); info.ExePath != "/usr/bin/new" {
		t.Errorf("Get after ttl = %q, want /usr/bin/new read again", info.ExePath)
	}
	want := CacheStats{Hits: 1, Misses: 2, Len: 1}
	if got := c.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func TestCacheNegative(t *testing.T) {
	c, root, clock := newTestCache(t, 8, time.Minute)
	// A storm of events from a process that exited before we looked.
	for range 1000 {
		if info, ok := c.Get(200); ok || info.ExePath != "" {
			t.Fatalf("Get(gone pid) = %+v, %v; want nothing, false", info, ok)
		}
	}
	if s := c.Stats(); s.Misses != 1 || s.Hits != 999 || s.NegativeHits != 999 || s.Errors != 0 {
		t.Errorf("Stats after storm = %+v, want 1 miss, 999 negative hits, 0 errors", s)
	}
	// A new process gets the pid: still "gone" until NegativeTTL, not the full ttl, passes.
	process(t, root, 200, "/usr/bin/new")
	clock.advance(NegativeTTL - time.Millisecond)
	if _, ok := c.Get(200); ok {
		t.Error("Get within NegativeTTL read procfs again")
	}
	clock.advance(time.Millisecond)
	if info, ok := c.Get(200); !ok || info.ExePath != "/usr/bin/new" {
		t.Errorf("Get after NegativeTTL = %+v, %v; want /usr/bin/new, true", info, ok)
	}
}

func TestCacheNegativeTTLCappedByTTL(t *testing.T) {
	c, root, clock := newTestCache(t, 8, 100*time.Millisecond)
	c.Get(300)
	process(t, root, 300, "/bin/x")
	clock.advance(100 * time.Millisecond)
	if _, ok := c.Get(300); !ok {
		t.Error("negative entry outlived a ttl shorter than NegativeTTL")
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c, root, _ := newTestCache(t, 2, time.Minute)
	for pid := uint32(1); pid <= 3; pid++ {
		process(t, root, pid, "/bin/p"+strconv.Itoa(int(pid)))
	}
	c.Get(1)
	c.Get(2)
	c.Get(1) // hit: 1 is now the most recently used
	c.Get(3) // evicts 2
	if s := c.Stats(); s.Evictions != 1 || s.Len != 2 || s.Hits != 1 || s.Misses != 3 {
		t.Fatalf("Stats = %+v, want 1 eviction, 2 entries, 1 hit, 3 misses", s)
	}
	c.Get(1) // still cached
	c.Get(2) // read again, evicts 3
	if s := c.Stats(); s.Hits != 2 || s.Misses != 4 || s.Evictions != 2 {
		t.Errorf("Stats = %+v, want 2 hits, 4 misses, 2 evictions", s)
	}
}

func TestCacheCountsPartialReadsAsErrors(t *testing.T) {
	c, root, _ := newTestCache(t, 8, time.Minute)
	writeFakeProcess(t, root, 400, fakeProcess{statusFile: "status-nonspid", cgroup: "0::/docker/" + id1 + "\n", exeNotLink: true})
	info, ok := c.Get(400)
	if !ok || info.ContainerID != id1 || info.ExePath != "" {
		t.Errorf("Get = %+v, %v; want the container id without an exe path, true", info, ok)
	}
	if s := c.Stats(); s.Errors != 1 {
		t.Errorf("Stats.Errors = %d, want 1", s.Errors)
	}
}

func TestCacheMissingProcRootIsCachedBriefly(t *testing.T) {
	c, err := NewCache(filepath.Join(t.TempDir(), "nothing"), 8, time.Minute, false)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, ok := c.Get(1); ok {
			t.Fatal("Get from a missing procfs = true")
		}
	}
	if s := c.Stats(); s.Misses != 1 || s.Errors != 1 || s.NegativeHits != 2 {
		t.Errorf("Stats = %+v, want 1 miss, 1 error, 2 negative hits", s)
	}
}

func TestCacheWithArgs(t *testing.T) {
	for _, withArgs := range []bool{false, true} {
		t.Run("withArgs="+strconv.FormatBool(withArgs), func(t *testing.T) {
			root := t.TempDir()
			writeFakeProcess(t, root, 5, fakeProcess{statusFile: "status-nonspid", exe: "/bin/sh", cmdline: "sh\x00-c\x00true\x00"})
			c, err := NewCache(root, 8, time.Minute, withArgs)
			if err != nil {
				t.Fatal(err)
			}
			info, _ := c.Get(5)
			if got := len(info.CommandArgs) > 0; got != withArgs {
				t.Errorf("CommandArgs = %q with withArgs %v", info.CommandArgs, withArgs)
			}
		})
	}
}

func TestCacheConcurrent(t *testing.T) {
	c, root, clock := newTestCache(t, 8, time.Second)
	const pids, goroutines, gets = 20, 8, 500
	for pid := uint32(1); pid <= pids; pid += 2 { // odd pids exist, even ones do not
		process(t, root, pid, "/bin/p"+strconv.Itoa(int(pid)))
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range gets {
				pid := uint32((g*gets+i)%pids + 1)
				info, ok := c.Get(pid)
				if want := pid%2 == 1; ok != want || ok && info.ExePath != "/bin/p"+strconv.Itoa(int(pid)) {
					t.Errorf("Get(%d) = %+v, %v", pid, info, ok)
					return
				}
				if i%100 == 0 {
					clock.advance(300 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	s := c.Stats()
	if s.Hits+s.Misses != goroutines*gets || s.Len > 8 || s.Errors != 0 {
		t.Errorf("Stats = %+v, want %d lookups, at most 8 entries, no errors", s, goroutines*gets)
	}
}

func TestCacheHitDoesNotAllocate(t *testing.T) {
	c, root, _ := newTestCache(t, 8, time.Hour)
	writeFakeProcess(t, root, 7, fakeProcess{statusFile: "status-nonspid", cgroup: "0::/docker/" + id1 + "\n", exe: "/bin/sh", cmdline: "sh\x00"})
	c.Get(7)
	c.Get(8) // a negative entry
	for _, pid := range []uint32{7, 8} {
		if n := testing.AllocsPerRun(1000, func() { c.Get(pid) }); n != 0 {
			t.Errorf("Get(%d) from the cache allocates %v times, want 0", pid, n)
		}
	}
}

func BenchmarkCacheHit(b *testing.B) {
	root := b.TempDir()
	writeFakeProcess(b, root, 7, fakeProcess{statusFile: "status-nonspid", cgroup: "0::/docker/" + id1 + "\n", exe: "/bin/sh", cmdline: "sh\x00-c\x00x\x00"})
	c, err := NewCache(root, 1024, time.Hour, true)
	if err != nil {
		b.Fatal(err)
	}
	c.Get(7)
	b.ReportAllocs()
	for b.Loop() {
		c.Get(7)
	}
}

func BenchmarkCacheHitParallel(b *testing.B) {
	c, err := NewCache("/proc", 1024, time.Hour, false)
	if err != nil {
		b.Fatal(err)
	}
	pid := uint32(os.Getpid())
	c.Get(pid)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Get(pid)
		}
	})
}

// BenchmarkCacheMiss is what an event from a pid not yet cached costs: a read of the real /proc.
func BenchmarkCacheMiss(b *testing.B) {
	for _, withArgs := range []bool{false, true} {
		b.Run("withArgs="+strconv.FormatBool(withArgs), func(b *testing.B) {
			pid := uint32(os.Getpid())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ReadInfo("/proc", pid, withArgs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
