package procfs

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// NegativeTTL is the longest time Cache remembers that a pid was not in
// procfs, so a burst of events from a process that just exited reads procfs
// once; it is shortened to the cache's ttl when that is shorter.
const NegativeTTL = time.Second

// Cache is a bounded, expiring cache of Info by pid in front of ReadInfo.
// Entries expire after the ttl given to NewCache, so a pid the kernel hands to
// a new process is read again (until then, Get answers for the old process);
// the least recently used entry is evicted when the cache is full.
// A Cache is safe for concurrent use.
type Cache struct {
	procRoot string
	withArgs bool
	ttl      time.Duration
	negTTL   time.Duration
	now      func() time.Duration // monotonic time since the cache was made; replaced in tests

	mu    sync.Mutex
	lru   *simplelru.LRU[uint32, *cacheEntry]
	stats CacheStats
}

// cacheEntry is one pid's cached answer.
type cacheEntry struct {
	info    Info
	expires time.Duration // on the clock of Cache.now
	found   bool          // false: the process was not in procfs
}

// CacheStats counts what a Cache did since it was made.
type CacheStats struct {
	Hits         uint64 // Get answered from the cache
	NegativeHits uint64 // the part of Hits that answered "process gone"
	Misses       uint64 // Get read procfs: pid not cached, or its entry expired
	Evictions    uint64 // entries pushed out to keep within the size limit
	Errors       uint64 // reads that failed other than by the process being gone
	Len          int    // entries held now, expired ones included
}

// NewCache returns a Cache of at most size entries that live for ttl, reading
// from procRoot (normally "/proc") and reading arguments only when withArgs.
func NewCache(procRoot string, size int, ttl time.Duration, withArgs bool) (*Cache, error) {
	if size < 1 {
		return nil, fmt.Errorf("new process cache: size %d: must be at least 1", size)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("new process cache: ttl %v: must be positive", ttl)
	}
	lru, err := simplelru.NewLRU[uint32, *cacheEntry](size, nil)
	if err != nil {
		return nil, fmt.Errorf("new process cache: %w", err)
	}
	start := time.Now()
	return &Cache{
		procRoot: procRoot,
		withArgs: withArgs,
		ttl:      ttl,
		negTTL:   min(ttl, NegativeTTL),
		// time.Since reads only the monotonic clock: half the cost of time.Now.
		now: func() time.Duration { return time.Since(start) },
		lru: lru,
	}, nil
}

// Get returns the context of process pid, from the cache while its entry is
// fresh, else read from procfs and cached. It returns false when the process
// is not in procfs (it exited before it was looked at); the caller then has
// only what the kernel reported. A process read with some fields missing
// (see ReadInfo) is returned with those fields empty and true.
// Get does not allocate when it answers from the cache.
func (c *Cache) Get(pid uint32) (Info, bool) {
	c.mu.Lock()
	if e, ok := c.lru.Get(pid); ok && c.now() < e.expires {
		c.stats.Hits++
		if !e.found {
			c.stats.NegativeHits++
		}
		c.mu.Unlock()
		return e.info, e.found
	}
	c.stats.Misses++
	c.mu.Unlock()

	// Read without the lock so hits for other pids are not held up by procfs.
	// Concurrent misses for one pid may each read it; the last one is kept.
	info, found, err := readInfo(c.procRoot, pid, c.withArgs)
	ttl := c.ttl
	if !found {
		ttl = c.negTTL
	}
	e := &cacheEntry{info: info, expires: c.now() + ttl, found: found}

	c.mu.Lock()
	if err != nil && !errors.Is(err, ErrNoProcess) {
		c.stats.Errors++
	}
	if c.lru.Add(pid, e) {
		c.stats.Evictions++
	}
	c.mu.Unlock()
	return info, found
}

// Stats returns the counters of the cache so far.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Len = c.lru.Len()
	return s
}
