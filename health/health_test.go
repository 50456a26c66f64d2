package health

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeReader is a Poller whose LastPoll a test sets.
type fakeReader struct {
	mu   sync.Mutex
	last time.Time
}

func (f *fakeReader) LastPoll() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *fakeReader) set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = t
}

// fakeClock is a clock a test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestDefaultStallAfter(t *testing.T) {
	for flush, want := range map[time.Duration]time.Duration{
		0:                      5 * time.Second,
		time.Millisecond:       5 * time.Second,
		200 * time.Millisecond: 5 * time.Second,
		500 * time.Millisecond: 5 * time.Second,
		time.Second:            10 * time.Second,
		time.Minute:            10 * time.Minute,
	} {
		if got := DefaultStallAfter(flush); got != want {
			t.Errorf("DefaultStallAfter(%v) = %v, want %v", flush, got, want)
		}
		if got := NewChecker(&fakeReader{}, Options{FlushInterval: flush}).StallAfter(); got != want {
			t.Errorf("Options{FlushInterval: %v}: StallAfter() = %v, want %v", flush, got, want)
		}
	}
	if got := NewChecker(&fakeReader{}, Options{FlushInterval: time.Minute, StallAfter: time.Second}).StallAfter(); got != time.Second {
		t.Errorf("explicit StallAfter 1s: StallAfter() = %v", got)
	}
}

// TestProbes walks the daemon's phases with a fake clock and reader: the
// flush interval is 200ms, so the threshold is 5s.
func TestProbes(t *testing.T) {
	const flush = 200 * time.Millisecond
	type phase struct {
		ready, stopping bool
		// lastPoll is how long before now the reader last polled; <0
		// means it never did.
		lastPoll time.Duration
		// since is how long ago the Checker was created.
		since time.Duration
	}
	tests := []struct {
		name      string
		phase     phase
		live      int
		liveBody  string
		ready     int
		readyBody string
	}{
		{"starting", phase{lastPoll: -1}, 200, "ok", 503, "starting"},
		{"ready but reader not started", phase{ready: true, lastPoll: -1, since: time.Second}, 200, "ok", 503, "event reader not started yet"},
		{"reader never started", phase{ready: true, lastPoll: -1, since: 6 * time.Second}, 503, "event reader stalled: not started for 6s (threshold 5s)",
			503, "event reader not started yet"},
		{"just started", phase{ready: true, lastPoll: 0, since: time.Second}, 200, "ok", 200, "ok"},
		{"idle but polling", phase{ready: true, lastPoll: flush, since: time.Hour}, 200, "ok", 200, "ok"},
		{"late but under the threshold", phase{ready: true, lastPoll: 5 * time.Second, since: time.Hour}, 200, "ok", 200, "ok"},
		{"stalled", phase{ready: true, lastPoll: 5*time.Second + time.Millisecond, since: time.Hour}, 503, "event reader stalled: no progress for 5.001s (threshold 5s)",
			503, "event reader stalled: no progress for 5.001s (threshold 5s)"},
		{"stalled long ago", phase{ready: true, lastPoll: time.Hour, since: 2 * time.Hour}, 503, "event reader stalled: no progress for 1h0m0s (threshold 5s)",
			503, "event reader stalled: no progress for 1h0m0s (threshold 5s)"},
		{"shutting down", phase{ready: true, stopping: true, lastPoll: flush, since: time.Hour}, 200, "shutting down", 503, "shutting down"},
		{"shutting down, reader done", phase{ready: true, stopping: true, lastPoll: time.Minute, since: time.Hour}, 200, "shutting down", 503, "shutting down"},
		{"shutting down before ready", phase{stopping: true, lastPoll: -1}, 200, "shutting down", 503, "shutting down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)}
			reader := &fakeReader{}
			c := NewChecker(reader, Options{FlushInterval: flush, Now: clock.Now})
			clock.advance(tt.phase.since)
			if tt.phase.lastPoll >= 0 {
				reader.set(clock.Now().Add(-tt.phase.lastPoll))
			}
			if tt.phase.ready {
				c.SetReady()
			}
			if tt.phase.stopping {
				c.SetStopping()
			}
			h := c.Handler()
			check(t, h, LivePath, tt.live, tt.liveBody)
			check(t, h, ReadyPath, tt.ready, tt.readyBody)
		})
	}
}

// TestStallAndRecovery: the same Checker follows the reader: healthy while
// it polls, unhealthy once it stops, healthy again when it resumes.
func TestStallAndRecovery(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	reader := &fakeReader{}
	c := NewChecker(reader, Options{FlushInterval: 100 * time.Millisecond, Now: clock.Now})
	c.SetReady()
	// An idle host for a minute: no events, one poll per flush interval.
	for range 600 {
		clock.advance(100 * time.Millisecond)
		reader.set(clock.Now())
		if ok, why := c.Live(); !ok {
			t.Fatalf("idle but polling: not live: %s", why)
		}
		if ok, why := c.Ready(); !ok {
			t.Fatalf("idle but polling: not ready: %s", why)
		}
	}
	clock.advance(5*time.Second + time.Nanosecond)
	if ok, _ := c.Live(); ok {
		t.Error("live after 5s without a poll")
	}
	if ok, _ := c.Ready(); ok {
		t.Error("ready after 5s without a poll")
	}
	reader.set(clock.Now())
	if ok, why := c.Live(); !ok {
		t.Errorf("not live after the reader resumed: %s", why)
	}
	if ok, why := c.Ready(); !ok {
		t.Errorf("not ready after the reader resumed: %s", why)
	}
}

func TestHandlerOtherRequests(t *testing.T) {
	c := NewChecker(&fakeReader{}, Options{})
	h := c.Handler()
	for _, tt := range []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, "/", 404},
		{http.MethodGet, "/healthz", 404},
		{http.MethodPost, LivePath, 405},
		{http.MethodHead, LivePath, 200},
		{http.MethodHead, ReadyPath, 503},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.code {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, rec.Code, tt.code)
		}
	}
}

// TestListen serves on a real socket and shuts down cleanly.
func TestListen(t *testing.T) {
	reader := &fakeReader{}
	reader.set(time.Now())
	c := NewChecker(reader, Options{})
	c.SetReady()
	s, err := Listen("127.0.0.1:0", c)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{LivePath, ReadyPath} {
		resp, err := http.Get("http://" + s.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok\n" {
			t.Errorf("GET %s: %d %q, want 200 \"ok\\n\"", path, resp.StatusCode, body)
		}
	}
	// A second server on the same address fails with net.Listen's error.
	if s2, err := Listen(s.Addr().String(), c); err == nil {
		s2.Shutdown(context.Background())
		t.Errorf("Listen on %s, in use, succeeded", s.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := http.Get("http://" + s.Addr().String() + LivePath); err == nil {
		t.Error("still serving after Shutdown")
	}
}

// check asserts GET path on h answers code with the one-line body want.
func check(t *testing.T, h http.Handler, path string, code int, want string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body := rec.Body.String()
	if rec.Code != code || body != want+"\n" {
		t.Errorf("GET %s: %d %q, want %d %q", path, rec.Code, body, code, want+"\n")
	}
	if strings.Count(body, "\n") != 1 {
		t.Errorf("GET %s: body %q is not one line", path, body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET %s: Content-Type %q, want text/plain", path, ct)
	}
}
