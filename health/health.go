package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Poller is the event reader as the checks see it (bpf.Reader is one).
type Poller interface {
	// LastPoll returns when the reader last made progress, the zero Time
	// before it started. It must be safe to call from any goroutine.
	LastPoll() time.Time
}

// MinStallAfter is the least time without progress that counts as a stall,
// whatever the flush interval: a loaded host may delay a goroutine by a
// good part of a second, and a probe that kills a working daemon is worse
// than one that notices a stuck one a few seconds late.
const MinStallAfter = 5 * time.Second

// stallIntervals is how many flush intervals without progress count as a
// stall: the reader wakes at least once per interval, so ten missed in a
// row is no scheduling hiccup.
const stallIntervals = 10

// DefaultStallAfter is the stall threshold for a reader that wakes at least
// every flushInterval: the larger of ten intervals and MinStallAfter.
func DefaultStallAfter(flushInterval time.Duration) time.Duration {
	return max(stallIntervals*flushInterval, MinStallAfter)
}

// Options configure a Checker. They are set in code only: the threshold is
// derived from the flush interval, so there is nothing an operator should
// need to tune.
type Options struct {
	// FlushInterval is the reader's: it polls at least this often.
	FlushInterval time.Duration
	// StallAfter is how long the reader may go without progress before it
	// counts as stalled. Zero means DefaultStallAfter(FlushInterval).
	StallAfter time.Duration
	// Now returns the current time; nil means time.Now. Tests set a fake
	// clock.
	Now func() time.Time
}

// Checker decides liveness and readiness from the reader's progress and
// the daemon's phase (SetReady, SetStopping). Its methods may be called from
// any goroutine.
type Checker struct {
	reader     Poller
	stallAfter time.Duration
	now        func() time.Time
	created    time.Time // for how long a reader that never started has been awaited

	ready    atomic.Bool
	stopping atomic.Bool
}

// NewChecker returns a Checker of reader, neither ready nor stopping.
func NewChecker(reader Poller, opts Options) *Checker {
	c := &Checker{reader: reader, stallAfter: opts.StallAfter, now: opts.Now}
	if c.stallAfter <= 0 {
		c.stallAfter = DefaultStallAfter(opts.FlushInterval)
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.created = c.now()
	return c
}

// StallAfter returns the stall threshold in effect.
func (c *Checker) StallAfter() time.Duration { return c.stallAfter }

// SetReady says start-up is over (hooks attached, export set up) and the
// reader is being started; Ready still waits for its first LastPoll, so
// that it cannot run ahead of the reader.
func (c *Checker) SetReady() { c.ready.Store(true) }

// SetStopping says the daemon is shutting down: Ready fails from now on,
// so that traffic and dashboards stop counting on this instance.
func (c *Checker) SetStopping() { c.stopping.Store(true) }

// Live reports whether the reader is alive and making progress, with a
// one-line reason. An idle reader is alive: it polls once per flush
// interval with or without events.
func (c *Checker) Live() (bool, string) {
	if c.stopping.Load() {
		// The daemon is draining and flushing on its way out; a restart
		// now would only lose what it still holds, and the kubelet kills
		// it anyway at the end of the grace period.
		return true, "shutting down"
	}
	if stalled, why := c.stalled(); stalled {
		return false, why
	}
	return true, "ok"
}

// Ready reports whether the daemon is tracing: hooks attached, the reader
// started and not stalled, and no shutdown under way.
func (c *Checker) Ready() (bool, string) {
	switch {
	case c.stopping.Load():
		return false, "shutting down"
	case !c.ready.Load():
		return false, "starting"
	case c.reader.LastPoll().IsZero():
		return false, "event reader not started yet"
	}
	if stalled, why := c.stalled(); stalled {
		return false, why
	}
	return true, "ok"
}

// stalled reports whether the reader has gone StallAfter without progress;
// a reader that never started is measured from the Checker's creation, so
// that start-up gets the same grace as any other pause.
func (c *Checker) stalled() (bool, string) {
	last, what := c.reader.LastPoll(), "no progress"
	if last.IsZero() {
		last, what = c.created, "not started"
	}
	if age := c.now().Sub(last); age > c.stallAfter {
		return true, fmt.Sprintf("event reader stalled: %s for %v (threshold %v)", what, age.Round(time.Millisecond), c.stallAfter)
	}
	return false, ""
}

// Paths of the two probes.
const (
	LivePath  = "/livez"
	ReadyPath = "/readyz"
)

// Handler serves LivePath and ReadyPath: 200 or 503 with a plain-text,
// one-line reason; any other path is 404.
func (c *Checker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+LivePath, probe(c.Live))
	mux.Handle("GET "+ReadyPath, probe(c.Ready))
	return mux
}

// probe answers with check's verdict. Probes must never be cached: a stale
// 200 would hide a stall.
func probe(check func() (bool, string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ok, reason := check()
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		if ok {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, reason)
	})
}

// Server is the health endpoint's HTTP server.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan error // Serve's result
}

// Listen binds addr (host:port; an empty host means every address) and
// serves c's Handler on it in the background. The error is net.Listen's,
// for the caller to name the setting that gave addr.
func Listen(addr string, c *Checker) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		srv: &http.Server{
			Handler: c.Handler(),
			// A probe is one short request: bound every phase, so that a
			// slow or idle client cannot hold a connection for long.
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       5 * time.Second,
			WriteTimeout:      5 * time.Second,
			IdleTimeout:       30 * time.Second,
			MaxHeaderBytes:    8 << 10,
		},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr returns the address listened on, with the port chosen if addr's was
// 0.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops accepting connections and waits for the requests under
// way until ctx ends, then closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("shut down health endpoint: %w", err), s.srv.Close())
	}
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("serve health endpoint: %w", serr))
	}
	return err
}
