package otlpsend

// The OTLP client's contract, one test per rule, each against a
// fault-injecting collector (faultserver_test.go) that counts the attempts
// it sees. Timings are only ever bounded from below, or from above by
// seconds, so that a busy machine cannot fail them.
//
// A table starts all its sends before it checks any, each in a subtest:
// the sends mostly wait (out backoffs and servers' delays), so they overlap
// however few tests -parallel lets run at once.

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var protocols = []string{ProtocolGRPC, ProtocolHTTPProtobuf}

// generous bounds what must happen "at once" or "promptly": far above what
// it takes, so that only a client that waits for something it should not
// fails it.
const generous = 5 * time.Second

// retryCall is one call of Config.OnRetry.
type retryCall struct {
	at   time.Time
	err  error
	wait time.Duration
}

// retryLog records the calls of Config.OnRetry; then, if set, is told of
// each.
type retryLog struct {
	then  func(retryCall)
	mu    sync.Mutex
	calls []retryCall
}

func (l *retryLog) onRetry(err error, wait time.Duration) {
	c := retryCall{at: time.Now(), err: err, wait: wait}
	l.mu.Lock()
	l.calls = append(l.calls, c)
	l.mu.Unlock()
	if l.then != nil {
		l.then(c)
	}
}

func (l *retryLog) seen() []retryCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]retryCall(nil), l.calls...)
}

// sendOpts vary a send; the zero value sends logs with the default
// configuration and a background context.
type sendOpts struct {
	ctx    context.Context
	sig    Signal
	log    *retryLog // records OnRetry; nil: a fresh one
	adjust func(*Config)
	// warm has one request delivered first, straight through the
	// transport without the client's Timeout, so that the connection is
	// made even on a busy machine; the outcome leaves it out.
	warm bool
}

// send is one Send under way in its own goroutine.
type send struct {
	body []byte
	done chan outcome
}

// outcome is what one Send did, as the client and the collector saw it.
type outcome struct {
	rejected int64
	err      error
	took     time.Duration
	attempts []faultAttempt
	retries  []retryCall
}

func contractBody(t *testing.T, sig Signal) []byte {
	t.Helper()
	if sig == Traces {
		b, err := ptraceotlp.NewExportRequestFromTraces(testTraces(3)).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return encodeLogs(t, testLogs(3))
}

// startSend makes a client for fc, in the test's goroutine, and starts one
// Send on it in another.
func startSend(t *testing.T, fc *faultCollector, o sendOpts) *send {
	t.Helper()
	ctx := o.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	log := o.log
	if log == nil {
		log = &retryLog{}
	}
	cfg := fc.config(o.sig)
	cfg.OnRetry = log.onRetry
	if o.adjust != nil {
		o.adjust(&cfg)
	}
	c := newClient(t, o.sig, cfg)
	s := &send{body: contractBody(t, o.sig), done: make(chan outcome, 1)}
	go func() {
		var warm int
		if o.warm {
			if _, err := c.tr.attempt(context.Background(), s.body); err != nil {
				s.done <- outcome{err: errors.New("warming up: " + err.Error())}
				return
			}
			warm = len(fc.seen())
		}
		start := time.Now()
		rej, err := c.Send(ctx, s.body)
		took := time.Since(start)
		s.done <- outcome{rejected: rej, err: err, took: took, attempts: fc.seen()[warm:], retries: log.seen()}
	}()
	return s
}

// outcome waits for the Send to end, and checks that every attempt carried
// the request unchanged.
func (s *send) outcome(t *testing.T) outcome {
	t.Helper()
	o := <-s.done
	for i, a := range o.attempts {
		if !bytes.Equal(a.body, s.body) {
			t.Errorf("attempt %d carried %d bytes differing from the %d-byte request", i+1, len(a.body), len(s.body))
		}
	}
	return o
}

func (o outcome) wantAttempts(t *testing.T, n int) {
	t.Helper()
	if len(o.attempts) != n {
		t.Fatalf("collector saw %d attempts, want %d (Send returned %d, %v)", len(o.attempts), n, o.rejected, o.err)
	}
}

func (o outcome) wantDelivered(t *testing.T) {
	t.Helper()
	if o.err != nil || o.rejected != 0 {
		t.Fatalf("Send = %d, %v; want the request delivered", o.rejected, o.err)
	}
}

// gap is the time between the arrivals of attempts i and i+1 (from 1).
func (o outcome) gap(i int) time.Duration {
	return o.attempts[i].at.Sub(o.attempts[i-1].at)
}

// unavailable is each transport's plain retryable failure.
func unavailable(protocol string) fault {
	if protocol == ProtocolGRPC {
		return fault{code: codes.Unavailable}
	}
	return fault{status: http.StatusServiceUnavailable}
}

// throttled is a retryable failure asking the client to wait d.
func throttled(protocol string, d time.Duration) fault {
	if protocol == ProtocolGRPC {
		return fault{code: codes.Unavailable, retryInfo: true, retryDelay: d}
	}
	return fault{status: http.StatusServiceUnavailable, retryAfter: retryAfterSeconds(strconv.FormatInt(int64(d/time.Second), 10))}
}

// refused is each transport's failure that retrying cannot fix.
func refused(protocol string) fault {
	if protocol == ProtocolGRPC {
		return fault{code: codes.InvalidArgument}
	}
	return fault{status: http.StatusBadRequest}
}

// Rule: over gRPC, retry CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE,
// UNAVAILABLE and DATA_LOSS, and RESOURCE_EXHAUSTED only with RetryInfo;
// never any other code, RetryInfo or not.
func TestContractGRPCRetriesOnlyRetryableCodes(t *testing.T) {
	t.Parallel()
	retryable := map[codes.Code]bool{
		codes.Canceled: true, codes.DeadlineExceeded: true, codes.Aborted: true,
		codes.OutOfRange: true, codes.Unavailable: true, codes.DataLoss: true,
	}
	type row struct {
		name    string
		f       fault
		retried bool
	}
	var rows []row
	for code := codes.Canceled; code <= codes.Unauthenticated; code++ {
		rows = append(rows, row{name: code.String(), f: fault{code: code}, retried: retryable[code]})
	}
	withRetryInfo := func(code codes.Code) fault {
		return fault{code: code, retryInfo: true, retryDelay: 10 * time.Millisecond}
	}
	rows = append(rows,
		row{name: "ResourceExhausted with RetryInfo", f: withRetryInfo(codes.ResourceExhausted), retried: true},
		row{name: "PermissionDenied with RetryInfo", f: withRetryInfo(codes.PermissionDenied)},
		row{name: "InvalidArgument with RetryInfo", f: withRetryInfo(codes.InvalidArgument)},
	)
	fcs := make([]*faultCollector, len(rows))
	sends := make([]*send, len(rows))
	for i, r := range rows {
		fcs[i] = startFaultGRPC(t, r.f, accept)
		sends[i] = startSend(t, fcs[i], sendOpts{})
	}
	for i, r := range rows {
		verdict := " is not retried"
		if r.retried {
			verdict = " is retried"
		}
		t.Run(r.name+verdict, func(t *testing.T) {
			o := sends[i].outcome(t)
			if r.retried {
				o.wantAttempts(t, 2)
				o.wantDelivered(t)
				if len(o.retries) != 1 {
					t.Errorf("OnRetry called %d times, want 1", len(o.retries))
				}
				return
			}
			o.wantAttempts(t, 1)
			if got := status.Code(o.err); got != r.f.code {
				t.Errorf("status code of %v = %v, want %v", o.err, got, r.f.code)
			}
			if o.err != nil && !strings.Contains(o.err.Error(), fcs[i].addr) {
				t.Errorf("error %q does not name the endpoint", o.err)
			}
		})
	}
}

// Rule: over HTTP, retry only 429, 502, 503 and 504 among the error
// statuses (4xx: see TestContractNeverRetriesOther4xx).
func TestContractHTTPRetriesOnly429And502To504(t *testing.T) {
	t.Parallel()
	retryable := map[int]bool{429: true, 502: true, 503: true, 504: true}
	statuses := []int{http.StatusTooManyRequests}
	for st := 500; st <= 599; st++ {
		if http.StatusText(st) != "" {
			statuses = append(statuses, st)
		}
	}
	fcs := make([]*faultCollector, len(statuses))
	sends := make([]*send, len(statuses))
	for i, st := range statuses {
		fcs[i] = startFaultHTTP(t, fault{status: st}, accept)
		sends[i] = startSend(t, fcs[i], sendOpts{})
	}
	for i, st := range statuses {
		verdict := " is not retried"
		if retryable[st] {
			verdict = " is retried"
		}
		t.Run(strconv.Itoa(st)+verdict, func(t *testing.T) {
			o := sends[i].outcome(t)
			if retryable[st] {
				o.wantAttempts(t, 2)
				o.wantDelivered(t)
				return
			}
			o.wantAttempts(t, 1)
			if o.err == nil || !strings.Contains(o.err.Error(), strconv.Itoa(st)) || !strings.Contains(o.err.Error(), fcs[i].addr) {
				t.Errorf("Send error = %v, want one naming status %d and the endpoint", o.err, st)
			}
		})
	}
}

// Rule: a collector that drops the connection before answering is retried,
// over either transport: gRPC reports it as UNAVAILABLE, and HTTP has no
// status to go by (the client's own choice, in classifyHTTPError).
func TestContractDroppedConnectionIsRetried(t *testing.T) {
	t.Parallel()
	sends := make([]*send, len(protocols))
	for i, protocol := range protocols {
		sends[i] = startSend(t, startFaultCollector(t, protocol, fault{drop: true}, accept), sendOpts{})
	}
	for i, protocol := range protocols {
		t.Run(protocol, func(t *testing.T) {
			o := sends[i].outcome(t)
			o.wantAttempts(t, 2)
			o.wantDelivered(t)
		})
	}
}

// Rule: no 4xx other than 429 is retried, even with a Retry-After header.
func TestContractNeverRetriesOther4xx(t *testing.T) {
	t.Parallel()
	var statuses []int
	for st := 400; st <= 499; st++ {
		if st != http.StatusTooManyRequests && http.StatusText(st) != "" {
			statuses = append(statuses, st)
		}
	}
	sends := make([]*send, len(statuses))
	for i, st := range statuses {
		sends[i] = startSend(t, startFaultHTTP(t, fault{status: st, retryAfter: retryAfterSeconds("1")}, accept), sendOpts{})
	}
	for i, st := range statuses {
		t.Run(strconv.Itoa(st), func(t *testing.T) {
			o := sends[i].outcome(t)
			o.wantAttempts(t, 1)
			if o.err == nil || !strings.Contains(o.err.Error(), strconv.Itoa(st)) {
				t.Errorf("Send error = %v, want one naming status %d", o.err, st)
			}
			if len(o.retries) != 0 {
				t.Errorf("OnRetry called %d times for a failure that is not retried", len(o.retries))
			}
		})
	}
}

// Rule: a partial success is never retried: the accepted items would be
// duplicated. It is reported as a *PartialSuccessError if the collector
// said why, and only by the rejected count otherwise.
func TestContractNeverRetriesPartialSuccess(t *testing.T) {
	t.Parallel()
	type row struct {
		protocol string
		sig      Signal
		name     string
		rejected int64
		message  string
	}
	var rows []row
	for _, protocol := range protocols {
		for _, sig := range []Signal{Logs, Traces} {
			rows = append(rows,
				row{protocol, sig, "rejected with a message", 3, "3 items too old"},
				row{protocol, sig, "rejected without a message", 3, ""},
				row{protocol, sig, "a warning only", 0, "deprecated attribute"},
			)
		}
	}
	sends := make([]*send, len(rows))
	for i, r := range rows {
		fc := startFaultCollector(t, r.protocol, fault{rejected: r.rejected, message: r.message}, accept)
		sends[i] = startSend(t, fc, sendOpts{sig: r.sig})
	}
	for i, r := range rows {
		t.Run(r.protocol+"/"+r.sig.String()+"/"+r.name, func(t *testing.T) {
			o := sends[i].outcome(t)
			o.wantAttempts(t, 1)
			if o.rejected != r.rejected {
				t.Errorf("rejected = %d, want %d", o.rejected, r.rejected)
			}
			var pe *PartialSuccessError
			switch {
			case r.message == "" && o.err != nil:
				t.Errorf("Send error = %v, want none", o.err)
			case r.message != "" && (!errors.As(o.err, &pe) || pe.Rejected != r.rejected || pe.Message != r.message || pe.Signal != r.sig):
				t.Errorf("Send error = %v, want PartialSuccessError{%v, %d, %q}", o.err, r.sig, r.rejected, r.message)
			}
			if len(o.retries) != 0 {
				t.Errorf("OnRetry called %d times for a partial success", len(o.retries))
			}
		})
	}
}

// Rule: the delay a gRPC RetryInfo asks for is waited at least, and a delay
// beyond RetryMaxElapsed makes Send give up at once instead of retrying
// early.
func TestContractHonoursRetryInfo(t *testing.T) {
	t.Parallel()
	// Longer than the first backoff can be (250ms + 50%), so that only
	// RetryInfo explains the wait.
	const delay = 500 * time.Millisecond
	waitCodes := []codes.Code{codes.ResourceExhausted, codes.Unavailable, codes.Aborted}
	waits := make([]*send, len(waitCodes))
	for i, code := range waitCodes {
		waits[i] = startSend(t, startFaultGRPC(t, fault{code: code, retryInfo: true, retryDelay: delay}, accept), sendOpts{})
	}

	beyond := []struct {
		name  string
		delay time.Duration
	}{
		{"10s", 10 * time.Second},
		// RetryInfo of 10^12 s saturates to the largest Duration.
		{"largest", time.Duration(math.MaxInt64)},
	}
	// The deadline only stops a client that waits: a right one gives up
	// at once.
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	givingUp := make([]*send, len(beyond))
	for i, b := range beyond {
		fc := startFaultGRPC(t, fault{code: codes.Unavailable, retryInfo: true, retryDelay: b.delay}, accept)
		givingUp[i] = startSend(t, fc, sendOpts{ctx: ctx, adjust: func(c *Config) { c.RetryMaxElapsed = time.Second }})
	}

	for i, code := range waitCodes {
		t.Run(code.String()+" waits the delay", func(t *testing.T) {
			o := waits[i].outcome(t)
			o.wantAttempts(t, 2)
			o.wantDelivered(t)
			if len(o.retries) != 1 || o.retries[0].wait < delay {
				t.Errorf("OnRetry calls %+v, want one with a wait of at least %v", o.retries, delay)
			}
			if gap := o.gap(1); gap < delay {
				t.Errorf("retried %v after the first attempt, want at least RetryInfo's %v", gap, delay)
			}
		})
	}
	for i, b := range beyond {
		t.Run("delay beyond RetryMaxElapsed gives up at once/"+b.name, func(t *testing.T) {
			o := givingUp[i].outcome(t)
			o.wantAttempts(t, 1)
			if o.err == nil || !strings.Contains(o.err.Error(), "give up after 1 attempt") || status.Code(o.err) != codes.Unavailable {
				t.Errorf("Send error = %v, want it to give up after 1 attempt with the Unavailable status", o.err)
			}
		})
	}
}

// Rule: the delay of an HTTP Retry-After header is waited at least, whether
// given in seconds or as an HTTP date, and a delay beyond RetryMaxElapsed
// makes Send give up at once instead of retrying early.
func TestContractHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	seconds := startSend(t, startFaultHTTP(t, fault{status: http.StatusTooManyRequests, retryAfter: retryAfterSeconds("1")}, accept), sendOpts{})
	// An HTTP date has whole seconds: 2s ahead, truncated, is more than 1s
	// ahead of the answer, and so of the first attempt.
	date := func(now time.Time) string { return now.Add(2 * time.Second).UTC().Format(http.TimeFormat) }
	dated := startSend(t, startFaultHTTP(t, fault{status: http.StatusServiceUnavailable, retryAfter: date}, accept), sendOpts{})

	beyond := []struct{ name, value string }{
		{"10s", "10"},
		// 317 years, whose nanoseconds do not fit in a Duration.
		{"1e10 seconds", "10000000000"},
		// Too many digits even to parse as an int64.
		{"1e20 seconds", "100000000000000000000"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	givingUp := make([]*send, len(beyond))
	for i, b := range beyond {
		fc := startFaultHTTP(t, fault{status: http.StatusServiceUnavailable, retryAfter: retryAfterSeconds(b.value)}, accept)
		givingUp[i] = startSend(t, fc, sendOpts{ctx: ctx, adjust: func(c *Config) { c.RetryMaxElapsed = time.Second }})
	}

	t.Run("seconds", func(t *testing.T) {
		o := seconds.outcome(t)
		o.wantAttempts(t, 2)
		o.wantDelivered(t)
		if len(o.retries) != 1 || o.retries[0].wait < time.Second {
			t.Errorf("OnRetry calls %+v, want one with a wait of at least 1s", o.retries)
		}
		if gap := o.gap(1); gap < time.Second {
			t.Errorf("retried %v after the first attempt, want at least Retry-After's 1s", gap)
		}
	})

	t.Run("HTTP date", func(t *testing.T) {
		o := dated.outcome(t)
		o.wantAttempts(t, 2)
		o.wantDelivered(t)
		until, err := http.ParseTime(o.attempts[0].retryAfter)
		if err != nil {
			t.Fatalf("collector sent Retry-After %q: %v", o.attempts[0].retryAfter, err)
		}
		// The client reads the date before it calls OnRetry, so its wait
		// from then on reaches the date. Wall clocks only move in step
		// here; allow them a little slew.
		const slew = 10 * time.Millisecond
		if len(o.retries) != 1 || o.retries[0].at.Add(o.retries[0].wait).Before(until.Add(-slew)) {
			t.Errorf("OnRetry calls %+v, want one whose wait lasts until %v", o.retries, until)
		}
		if o.attempts[1].at.Before(until.Add(-slew)) {
			t.Errorf("retried at %v, before Retry-After's %v", o.attempts[1].at, until)
		}
		if gap := o.gap(1); gap < time.Second-slew {
			t.Errorf("retried %v after the first attempt, want more than 1s", gap)
		}
	})

	for i, b := range beyond {
		t.Run("delay beyond RetryMaxElapsed gives up at once/"+b.name, func(t *testing.T) {
			o := givingUp[i].outcome(t)
			o.wantAttempts(t, 1)
			if o.err == nil || !strings.Contains(o.err.Error(), "give up after 1 attempt") {
				t.Errorf("Send error = %v, want it to give up after 1 attempt", o.err)
			}
		})
	}
}

// Rule: waits between attempts grow exponentially and are jittered, so that
// clients that failed together do not come back together.
func TestContractJitteredExponentialBackoff(t *testing.T) {
	t.Parallel()
	ref := newRetryBackOff()
	r, m := ref.RandomizationFactor, ref.Multiplier
	// base is the k-th (from 0) wait before jitter.
	base := func(k int) time.Duration {
		return min(time.Duration(float64(ref.InitialInterval)*math.Pow(m, float64(k))), ref.MaxInterval)
	}
	inRange := func(w time.Duration, k int) bool {
		b := float64(base(k))
		// A nanosecond's leeway each way for rounding.
		return float64(w) >= b*(1-r)-1 && float64(w) <= b*(1+r)+1
	}

	// Two clients failing together, started first to overlap the rest.
	const failures = 2
	var clients [2]*send
	for i := range clients {
		down := unavailable(ProtocolHTTPProtobuf)
		clients[i] = startSend(t, startFaultHTTP(t, down, down, accept), sendOpts{})
	}

	t.Run("schedule", func(t *testing.T) {
		if r <= 0 || r >= 1 {
			t.Fatalf("RandomizationFactor = %v, want jitter in (0, 1)", r)
		}
		if m <= 1 {
			t.Fatalf("Multiplier = %v, want growth above 1", m)
		}
		if ref.InitialInterval != retryInitialInterval || ref.MaxInterval != retryMaxInterval {
			t.Fatalf("intervals %v..%v, want %v..%v", ref.InitialInterval, ref.MaxInterval, retryInitialInterval, retryMaxInterval)
		}
		const samples, steps = 1000, 5
		var (
			sum      [steps]float64
			distinct [steps]map[time.Duration]bool
		)
		for k := range distinct {
			distinct[k] = map[time.Duration]bool{}
		}
		for range samples {
			bo := newRetryBackOff()
			for k := range steps {
				w := bo.NextBackOff()
				if !inRange(w, k) {
					t.Fatalf("wait %d = %v, want %v ±%v%%", k+1, w, base(k), r*100)
				}
				sum[k] += float64(w)
				distinct[k][w] = true
			}
		}
		for k := range steps {
			mean := sum[k] / samples
			if math.Abs(mean/float64(base(k))-1) > 0.05 {
				t.Errorf("wait %d averages %v, want about %v", k+1, time.Duration(mean), base(k))
			}
			if len(distinct[k]) < samples*9/10 {
				t.Errorf("wait %d took only %d distinct values in %d schedules: not jittered", k+1, len(distinct[k]), samples)
			}
			if k > 0 && mean < sum[k-1]/samples*(1+(m-1)/2) {
				t.Errorf("wait %d averages %v after %v: not growing by about %v", k+1, time.Duration(mean), time.Duration(sum[k-1]/samples), m)
			}
		}
		bo := newRetryBackOff()
		for range 50 {
			if w := bo.NextBackOff(); float64(w) > float64(ref.MaxInterval)*(1+r)+1 {
				t.Fatalf("wait %v beyond MaxInterval %v and its jitter", w, ref.MaxInterval)
			}
		}
	})

	t.Run("two clients failing together", func(t *testing.T) {
		var waits [2][]time.Duration
		for i, s := range clients {
			o := s.outcome(t)
			o.wantAttempts(t, failures+1)
			o.wantDelivered(t)
			for k, rc := range o.retries {
				waits[i] = append(waits[i], rc.wait)
				if !inRange(rc.wait, k) {
					t.Errorf("client %d: wait %d = %v, want %v ±%v%%", i+1, k+1, rc.wait, base(k), r*100)
				}
				if gap := o.gap(k + 1); gap < rc.wait {
					t.Errorf("client %d: attempt %d came %v after the one before, sooner than its wait %v", i+1, k+2, gap, rc.wait)
				}
			}
			if len(waits[i]) != failures {
				t.Fatalf("client %d: OnRetry called %d times, want %d", i+1, len(waits[i]), failures)
			}
		}
		same := true
		for k := range failures {
			same = same && waits[0][k] == waits[1][k]
		}
		if same {
			t.Errorf("both clients waited %v: not jittered", waits[0])
		}
	})
}

func isDeadline(protocol string, err error) bool {
	if protocol == ProtocolGRPC {
		return status.Code(err) == codes.DeadlineExceeded
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// Rule: a collector that takes the connection and never answers holds an
// attempt no longer than Timeout: whether it never reads the request
// (wedged after accept), or reads it and never replies (a stuck handler).
func TestContractHangingCollectorBoundedByTimeout(t *testing.T) {
	t.Parallel()
	const (
		timeout    = 200 * time.Millisecond
		maxElapsed = 1500 * time.Millisecond
	)
	noRetry := func(c *Config) { c.Timeout, c.RetryMaxElapsed = timeout, -1 }
	type row struct {
		name string
		s    *send
	}
	var silent, stuck, stuckRetried []row
	for _, protocol := range protocols {
		silent = append(silent, row{protocol, startSend(t, startSilentCollector(t, protocol), sendOpts{adjust: noRetry})})
		// A connection made first lets the stuck attempt reach the
		// handler within its 200ms even on a busy machine.
		stuck = append(stuck, row{protocol, startSend(t, startFaultCollector(t, protocol, accept, fault{hang: true}),
			sendOpts{warm: true, adjust: noRetry})})
		stuckRetried = append(stuckRetried, row{protocol, startSend(t, startFaultCollector(t, protocol, accept, fault{hang: true}),
			sendOpts{warm: true, adjust: func(c *Config) { c.Timeout, c.RetryMaxElapsed = timeout, maxElapsed }})})
	}

	for _, r := range silent {
		t.Run(r.name+"/never reads", func(t *testing.T) {
			o := r.s.outcome(t)
			if !isDeadline(r.name, o.err) {
				t.Errorf("Send error = %v, want a deadline error", o.err)
			}
			if o.took < timeout || o.took > generous {
				t.Errorf("Send took %v with Timeout %v", o.took, timeout)
			}
		})
	}
	for _, r := range stuck {
		t.Run(r.name+"/never replies", func(t *testing.T) {
			o := r.s.outcome(t)
			// An attempt that timed out on its way would not be seen.
			if n := len(o.attempts); n > 1 {
				t.Errorf("collector saw %d attempts with retries off, want 1", n)
			}
			if !isDeadline(r.name, o.err) {
				t.Errorf("Send error = %v, want a deadline error", o.err)
			}
			if o.took < timeout || o.took > generous {
				t.Errorf("Send took %v with Timeout %v", o.took, timeout)
			}
		})
	}
	for _, r := range stuckRetried {
		t.Run(r.name+"/never replies, retried", func(t *testing.T) {
			o := r.s.outcome(t)
			// An attempt and the longest first wait take well under
			// maxElapsed, so a second attempt must follow.
			if len(o.retries) < 1 {
				t.Errorf("OnRetry not called: want retries")
			}
			if n := len(o.attempts); n > len(o.retries)+1 {
				t.Errorf("collector saw %d attempts, OnRetry %d calls", n, len(o.retries))
			}
			if !isDeadline(r.name, o.err) || !strings.Contains(o.err.Error(), "give up after") {
				t.Errorf("Send error = %v, want it to give up on a deadline error", o.err)
			}
			if o.took > maxElapsed+generous {
				t.Errorf("Send took %v with Timeout %v and RetryMaxElapsed %v", o.took, timeout, maxElapsed)
			}
		})
	}
}

// Rule: with RetryForever, Send retries a retryable failure for as long as
// the context lasts, whatever delay the collector asks for; it delivers
// once the collector recovers, and returns promptly once the context ends.
func TestContractRetryForever(t *testing.T) {
	t.Parallel()
	forever := func(c *Config) { c.RetryMaxElapsed = RetryForever }
	const failures = 2
	// A delay beyond the default RetryMaxElapsed of a minute.
	const long = 2 * time.Minute
	type row struct {
		protocol string
		recovers *send
		// bounded and waits are sent to a collector asking for long:
		// bounded with the default RetryMaxElapsed, waits with
		// RetryForever, canceled once OnRetry is called.
		bounded, waits *send
		// canceled is canceled while its third attempt is at the
		// collector.
		canceled *send
		// when the contexts of waits and canceled were canceled
		waitsCanceled, canceledCanceled chan time.Time
	}
	var rows []*row
	for _, protocol := range protocols {
		r := &row{protocol: protocol, waitsCanceled: make(chan time.Time, 1), canceledCanceled: make(chan time.Time, 1)}
		rows = append(rows, r)
		down := unavailable(protocol)
		r.recovers = startSend(t, startFaultCollector(t, protocol, down, down, accept), sendOpts{adjust: forever})

		r.bounded = startSend(t, startFaultCollector(t, protocol, throttled(protocol, long)), sendOpts{})
		// The deadlines only stop a broken client: a right one is
		// canceled long before.
		waitsCtx, cancelWaits := context.WithTimeout(context.Background(), 2*generous)
		t.Cleanup(cancelWaits)
		log := &retryLog{then: func(retryCall) {
			go func() {
				noteTime(r.waitsCanceled)
				cancelWaits()
			}()
		}}
		r.waits = startSend(t, startFaultCollector(t, protocol, throttled(protocol, long)), sendOpts{ctx: waitsCtx, log: log, adjust: forever})

		canceledCtx, cancelCanceled := context.WithTimeout(context.Background(), 2*generous)
		t.Cleanup(cancelCanceled)
		last := down
		last.do = func() {
			noteTime(r.canceledCanceled)
			cancelCanceled()
		}
		r.canceled = startSend(t, startFaultCollector(t, protocol, down, down, last), sendOpts{ctx: canceledCtx, adjust: forever})
	}

	for _, r := range rows {
		t.Run(r.protocol+"/delivers once the collector recovers", func(t *testing.T) {
			o := r.recovers.outcome(t)
			o.wantAttempts(t, failures+1)
			o.wantDelivered(t)
			if len(o.retries) != failures {
				t.Errorf("OnRetry called %d times, want %d", len(o.retries), failures)
			}
		})

		t.Run(r.protocol+"/waits out any delay until canceled", func(t *testing.T) {
			bounded := r.bounded.outcome(t)
			bounded.wantAttempts(t, 1)
			if bounded.err == nil || !strings.Contains(bounded.err.Error(), "give up after 1 attempt") {
				t.Fatalf("bounded client: Send error = %v, want it to give up at once", bounded.err)
			}

			o := r.waits.outcome(t)
			returned := time.Now()
			o.wantAttempts(t, 1)
			if !errors.Is(o.err, context.Canceled) {
				t.Fatalf("Send error = %v, want context.Canceled", o.err)
			}
			if len(o.retries) != 1 || o.retries[0].wait < long {
				t.Errorf("OnRetry calls %+v, want one with a wait of at least %v", o.retries, long)
			}
			if d := returned.Sub(<-r.waitsCanceled); d > generous {
				t.Errorf("Send returned %v after the context was canceled", d)
			}
		})

		t.Run(r.protocol+"/keeps retrying until canceled", func(t *testing.T) {
			o := r.canceled.outcome(t)
			returned := time.Now()
			o.wantAttempts(t, 3)
			if !errors.Is(o.err, context.Canceled) {
				t.Fatalf("Send error = %v, want context.Canceled", o.err)
			}
			if len(o.retries) != 2 {
				t.Errorf("OnRetry called %d times, want 2", len(o.retries))
			}
			if d := returned.Sub(<-r.canceledCanceled); d > generous {
				t.Errorf("Send returned %v after the context was canceled", d)
			}
		})
	}
}

// noteTime puts the time in ch unless one is there already.
func noteTime(ch chan<- time.Time) {
	select {
	case ch <- time.Now():
	default:
	}
}

// Rule: OnRetry is called once for each failed attempt that will be
// retried, before the wait, with the wait; never for one that will not be.
func TestContractOnRetry(t *testing.T) {
	t.Parallel()
	type row struct {
		protocol string
		fc       *faultCollector
		// retried fails twice, then delivers.
		retried *send
		// notRetried is refused for good.
		notRetried *send
		// retriesOff fails with RetryMaxElapsed negative.
		retriesOff *send
		// givesUp fails, then is asked to wait beyond RetryMaxElapsed.
		givesUp *send
	}
	var rows []row
	for _, protocol := range protocols {
		down := unavailable(protocol)
		r := row{protocol: protocol, fc: startFaultCollector(t, protocol, down, down, accept)}
		r.retried = startSend(t, r.fc, sendOpts{})
		r.notRetried = startSend(t, startFaultCollector(t, protocol, refused(protocol), accept), sendOpts{})
		r.retriesOff = startSend(t, startFaultCollector(t, protocol, down, accept),
			sendOpts{adjust: func(c *Config) { c.RetryMaxElapsed = -1 }})
		r.givesUp = startSend(t, startFaultCollector(t, protocol, down, throttled(protocol, 10*time.Second)),
			sendOpts{adjust: func(c *Config) { c.RetryMaxElapsed = 5 * time.Second }})
		rows = append(rows, r)
	}

	for _, r := range rows {
		t.Run(r.protocol+"/once per retried failure, with the wait", func(t *testing.T) {
			o := r.retried.outcome(t)
			o.wantAttempts(t, 3)
			o.wantDelivered(t)
			if len(o.retries) != 2 {
				t.Fatalf("OnRetry called %d times, want 2", len(o.retries))
			}
			for k, rc := range o.retries {
				if rc.wait <= 0 {
					t.Errorf("OnRetry %d: wait %v", k+1, rc.wait)
				}
				if gap := o.gap(k + 1); gap < rc.wait {
					t.Errorf("attempt %d came %v after the one before, sooner than OnRetry's wait %v", k+2, gap, rc.wait)
				}
				if rc.at.Before(o.attempts[k].at) || rc.at.After(o.attempts[k+1].at) {
					t.Errorf("OnRetry %d called at %v, not between attempts %d and %d", k+1, rc.at, k+1, k+2)
				}
				failed := status.Code(rc.err) == codes.Unavailable
				if r.protocol == ProtocolHTTPProtobuf {
					failed = rc.err != nil && strings.Contains(rc.err.Error(), "503")
				}
				if !failed || !strings.Contains(rc.err.Error(), r.fc.addr) {
					t.Errorf("OnRetry %d: err %v, want the failure, naming the endpoint", k+1, rc.err)
				}
			}
		})

		t.Run(r.protocol+"/not for a failure that is not retried", func(t *testing.T) {
			o := r.notRetried.outcome(t)
			o.wantAttempts(t, 1)
			if o.err == nil || len(o.retries) != 0 {
				t.Errorf("Send error = %v, OnRetry calls %d; want an error and no call", o.err, len(o.retries))
			}
		})

		t.Run(r.protocol+"/not when retries are off", func(t *testing.T) {
			o := r.retriesOff.outcome(t)
			o.wantAttempts(t, 1)
			if o.err == nil || len(o.retries) != 0 {
				t.Errorf("Send error = %v, OnRetry calls %d; want an error and no call", o.err, len(o.retries))
			}
		})

		t.Run(r.protocol+"/not for the failure Send gives up on", func(t *testing.T) {
			o := r.givesUp.outcome(t)
			o.wantAttempts(t, 2)
			if o.err == nil || !strings.Contains(o.err.Error(), "give up after 2 attempts") {
				t.Errorf("Send error = %v, want it to give up after 2 attempts", o.err)
			}
			if len(o.retries) != 1 {
				t.Errorf("OnRetry called %d times, want 1", len(o.retries))
			}
		})
	}
}
