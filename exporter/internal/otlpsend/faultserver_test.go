package otlpsend

import (
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// fault is one scripted answer of a fault-injecting collector. The zero
// fault accepts the request. Fields for the other transport are ignored.
type fault struct {
	// code is the gRPC status to answer with; OK accepts the request.
	code codes.Code
	// retryInfo attaches a google.rpc.RetryInfo asking for retryDelay to a
	// gRPC error status.
	retryInfo  bool
	retryDelay time.Duration

	// status is the HTTP status to answer with; 0 means 200.
	status int
	// retryAfter, if set, gives the HTTP Retry-After header. It is called
	// when the answer is written, so that a date can be relative to then.
	retryAfter func(now time.Time) string

	// rejected and message turn an accepted request into a partial
	// success.
	rejected int64
	message  string

	// hang never answers: the handler blocks until the client gives up or
	// the test ends.
	hang bool
	// drop closes the connection without answering.
	drop bool
	// do, if set, runs when the attempt arrives, before it is answered.
	do func()
}

// retryAfterSeconds is a Retry-After header of s seconds.
func retryAfterSeconds(s string) func(time.Time) string {
	return func(time.Time) string { return s }
}

// accept accepts the request.
var accept = fault{}

// faultAttempt is what a fault-injecting collector saw of one attempt.
type faultAttempt struct {
	at     time.Time // arrival, once the request was read
	body   []byte    // the request as received (decompressed)
	answer fault     // what it was answered with
	// retryAfter is the Retry-After header sent, if any.
	retryAfter string
}

// faultScript answers attempts with its faults in order; attempts past the
// end get the last one, so that a one-fault script always answers the same.
type faultScript struct {
	faults []fault
	// release ends hanging answers when the test ends.
	release chan struct{}

	mu       sync.Mutex
	attempts []faultAttempt
}

func newFaultScript(faults []fault) *faultScript {
	if len(faults) == 0 {
		faults = []fault{accept}
	}
	return &faultScript{faults: faults, release: make(chan struct{})}
}

// arrive records an attempt and returns its number (from 1) and answer.
func (s *faultScript) arrive(body []byte) (int, fault) {
	s.mu.Lock()
	n := len(s.attempts) + 1
	f := s.faults[min(n, len(s.faults))-1]
	s.attempts = append(s.attempts, faultAttempt{at: time.Now(), body: body, answer: f})
	s.mu.Unlock()
	if f.do != nil {
		f.do()
	}
	return n, f
}

// setRetryAfter notes the Retry-After header sent to attempt n.
func (s *faultScript) setRetryAfter(n int, v string) {
	s.mu.Lock()
	s.attempts[n-1].retryAfter = v
	s.mu.Unlock()
}

// seen returns the attempts so far.
func (s *faultScript) seen() []faultAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]faultAttempt(nil), s.attempts...)
}

// hangUntil blocks a hanging answer until done is closed or the test ends.
func (s *faultScript) hangUntil(done <-chan struct{}) {
	select {
	case <-done:
	case <-s.release:
	}
}

// faultCollector is a collector scripted with faults, over one transport.
type faultCollector struct {
	*faultScript
	protocol string
	addr     string // gRPC: host:port; HTTP: the server's base URL
}

// config returns a client configuration that sends sig to fc.
func (fc *faultCollector) config(sig Signal) Config {
	cfg := Config{Protocol: fc.protocol, Endpoint: fc.addr, Insecure: true}
	if fc.protocol == ProtocolHTTPProtobuf {
		cfg.Endpoint = fc.addr + "/v1/" + sig.String()
	}
	return cfg
}

// startFaultCollector starts a fault-injecting collector for protocol,
// serving both the logs and the traces service, until the test ends.
func startFaultCollector(t testing.TB, protocol string, faults ...fault) *faultCollector {
	t.Helper()
	switch protocol {
	case ProtocolGRPC:
		return startFaultGRPC(t, faults...)
	case ProtocolHTTPProtobuf:
		return startFaultHTTP(t, faults...)
	}
	t.Fatalf("no fault collector for protocol %q", protocol)
	return nil
}

// startFaultGRPC serves the OTLP logs and traces Export methods on a real
// gRPC server that answers as scripted.
func startFaultGRPC(t testing.TB, faults ...fault) *faultCollector {
	t.Helper()
	s := newFaultScript(faults)
	fs := &faultGRPC{script: s}
	addr, lis := startGRPC(t, func(srv *grpc.Server) {
		plogotlp.RegisterGRPCServer(srv, &faultLogsGRPC{faultGRPC: fs})
		ptraceotlp.RegisterGRPCServer(srv, &faultTracesGRPC{faultGRPC: fs})
	})
	fs.lis = lis
	// Registered after the server's Stop, so it runs first: hanging
	// handlers return before the server waits for them.
	t.Cleanup(func() { close(s.release) })
	return &faultCollector{faultScript: s, protocol: ProtocolGRPC, addr: addr}
}

type faultGRPC struct {
	script *faultScript
	lis    *countingListener
}

// answer returns what to answer a request of body with: the partial
// success to report, or the status error.
func (fs *faultGRPC) answer(ctx context.Context, body []byte) (rejected int64, msg string, err error) {
	_, f := fs.script.arrive(body)
	switch {
	case f.hang:
		fs.script.hangUntil(ctx.Done())
		if ctx.Err() != nil {
			// The call's deadline (sent along by the client) may end it
			// here a moment before the client's own timer does: end it
			// as gRPC does a handler that overruns.
			return 0, "", status.FromContextError(ctx.Err()).Err()
		}
		return 0, "", status.Error(codes.Unavailable, "fault: the test ended")
	case f.drop:
		fs.lis.dropAll()
		return 0, "", status.Error(codes.Unavailable, "fault: connection dropped")
	case f.code != codes.OK:
		st := status.New(f.code, "fault: "+f.code.String())
		if f.retryInfo {
			// WithDetails fails only for codes.OK.
			st, _ = st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(f.retryDelay)})
		}
		return 0, "", st.Err()
	}
	return f.rejected, f.message, nil
}

type faultLogsGRPC struct {
	plogotlp.UnimplementedGRPCServer
	*faultGRPC
}

func (s *faultLogsGRPC) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	body, err := req.MarshalProto()
	if err != nil {
		return plogotlp.ExportResponse{}, err
	}
	rejected, msg, err := s.answer(ctx, body)
	resp := plogotlp.NewExportResponse()
	if rejected != 0 || msg != "" {
		resp.PartialSuccess().SetRejectedLogRecords(rejected)
		resp.PartialSuccess().SetErrorMessage(msg)
	}
	return resp, err
}

type faultTracesGRPC struct {
	ptraceotlp.UnimplementedGRPCServer
	*faultGRPC
}

func (s *faultTracesGRPC) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	body, err := req.MarshalProto()
	if err != nil {
		return ptraceotlp.ExportResponse{}, err
	}
	rejected, msg, err := s.answer(ctx, body)
	resp := ptraceotlp.NewExportResponse()
	if rejected != 0 || msg != "" {
		resp.PartialSuccess().SetRejectedSpans(rejected)
		resp.PartialSuccess().SetErrorMessage(msg)
	}
	return resp, err
}

// startFaultHTTP serves OTLP/HTTP at /v1/logs and /v1/traces on an httptest
// server that answers as scripted.
func startFaultHTTP(t testing.TB, faults ...fault) *faultCollector {
	t.Helper()
	s := newFaultScript(faults)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveFaultHTTP(t, s, w, r)
	}))
	t.Cleanup(srv.Close)
	// Registered after Close, so it runs first: Close waits for handlers.
	t.Cleanup(func() { close(s.release) })
	return &faultCollector{faultScript: s, protocol: ProtocolHTTPProtobuf, addr: srv.URL}
}

func serveFaultHTTP(t testing.TB, s *faultScript, w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || (r.URL.Path != "/v1/logs" && r.URL.Path != "/v1/traces") {
		http.Error(w, "fault collector: no such endpoint", http.StatusNotFound)
		return
	}
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, "bad gzip", http.StatusBadRequest)
			return
		}
		rd = zr
	}
	body, err := io.ReadAll(rd)
	if err != nil {
		// The client gave up while sending: no attempt arrived.
		return
	}
	n, f := s.arrive(body)
	switch {
	case f.hang:
		s.hangUntil(r.Context().Done())
		return
	case f.drop:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("fault collector: hijack to drop the connection: %v", err)
			return
		}
		_ = conn.Close()
		return
	}
	if f.retryAfter != nil {
		v := f.retryAfter(time.Now())
		s.setRetryAfter(n, v)
		w.Header().Set("Retry-After", v)
	}
	if f.status != 0 && f.status != http.StatusOK {
		http.Error(w, "fault: "+http.StatusText(f.status), f.status)
		return
	}
	var resp []byte
	if f.rejected != 0 || f.message != "" {
		if strings.HasSuffix(r.URL.Path, "/traces") {
			pr := ptraceotlp.NewExportResponse()
			pr.PartialSuccess().SetRejectedSpans(f.rejected)
			pr.PartialSuccess().SetErrorMessage(f.message)
			resp, err = pr.MarshalProto()
		} else {
			pr := plogotlp.NewExportResponse()
			pr.PartialSuccess().SetRejectedLogRecords(f.rejected)
			pr.PartialSuccess().SetErrorMessage(f.message)
			resp, err = pr.MarshalProto()
		}
		if err != nil {
			t.Errorf("fault collector: encode partial success: %v", err)
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(resp)
}

// startSilentCollector listens on a loopback port and accepts connections
// but never reads from or writes to them, as a wedged collector would. No
// attempt ever arrives at its script.
func startSilentCollector(t testing.TB, protocol string) *faultCollector {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = lis.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	fc := &faultCollector{faultScript: newFaultScript(nil), protocol: protocol, addr: lis.Addr().String()}
	if protocol == ProtocolHTTPProtobuf {
		fc.addr = "http://" + fc.addr
	}
	return fc
}
