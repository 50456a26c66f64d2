package otlpsend

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

func statusWithRetryInfo(t *testing.T, c codes.Code, delay time.Duration) error {
	t.Helper()
	st, err := status.New(c, "slow down").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
	if err != nil {
		t.Fatalf("attach RetryInfo: %v", err)
	}
	return st.Err()
}

func TestSendGRPC(t *testing.T) {
	// The retry rules are in contract_test.go.
	type answer = func(call int) (int64, string, error)
	always := func(err error) answer {
		return func(int) (int64, string, error) { return 0, "", err }
	}

	tests := []struct {
		name      string
		cfg       func(addr string) Config
		records   int
		answer    func(t *testing.T) answer
		wantCode  codes.Code // codes.OK: no error
		wantCalls int
		check     func(t *testing.T, call exportCall, wire int64, bodyLen int)
	}{
		{
			name:      "plaintext host:port delivers the same logs",
			cfg:       func(a string) Config { return Config{Endpoint: a, Insecure: true} },
			records:   3,
			wantCalls: 1,
		},
		{
			name:      "http scheme means plaintext whatever Insecure says",
			cfg:       func(a string) Config { return Config{Endpoint: "http://" + a + "/ignored/path"} },
			records:   1,
			wantCalls: 1,
		},
		{
			name: "headers arrive as metadata",
			cfg: func(a string) Config {
				return Config{Endpoint: a, Insecure: true, Headers: map[string]string{"api-key": "s3cret", "X-Tenant": "blue"}}
			},
			records:   1,
			wantCalls: 1,
			check: func(t *testing.T, call exportCall, _ int64, _ int) {
				if got := call.md.Get("api-key"); len(got) != 1 || got[0] != "s3cret" {
					t.Errorf("api-key metadata = %q, want [s3cret]", got)
				}
				if got := call.md.Get("x-tenant"); len(got) != 1 || got[0] != "blue" {
					t.Errorf("x-tenant metadata = %q, want [blue]", got)
				}
			},
		},
		{
			name:      "gzip shrinks what goes over the wire",
			cfg:       func(a string) Config { return Config{Endpoint: a, Insecure: true, Compression: "gzip"} },
			records:   2000,
			wantCalls: 1,
			check: func(t *testing.T, _ exportCall, wire int64, bodyLen int) {
				if wire >= int64(bodyLen)/2 {
					t.Errorf("server read %d bytes for a %d-byte body, want gzip to at least halve it", wire, bodyLen)
				}
			},
		},
		{
			name:      "no compression sends the body as is",
			cfg:       func(a string) Config { return Config{Endpoint: a, Insecure: true, Compression: "none"} },
			records:   2000,
			wantCalls: 1,
			check: func(t *testing.T, _ exportCall, wire int64, bodyLen int) {
				if wire < int64(bodyLen) {
					t.Errorf("server read %d bytes for a %d-byte body, want at least the body", wire, bodyLen)
				}
			},
		},
		{
			name:    "negative RetryMaxElapsed disables retries",
			cfg:     func(a string) Config { return Config{Endpoint: a, Insecure: true, RetryMaxElapsed: -1} },
			records: 2,
			answer: func(*testing.T) answer {
				return always(status.Error(codes.Unavailable, "down"))
			},
			wantCode:  codes.Unavailable,
			wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			if tt.answer != nil {
				rec.handle = tt.answer(t)
			}
			addr, lis := startGRPC(t, func(s *grpc.Server) { plogotlp.RegisterGRPCServer(s, &logsServer{rec: rec}) })
			cfg := tt.cfg(addr)
			cfg.Protocol = ProtocolGRPC
			c := newClient(t, Logs, cfg)

			ld := testLogs(tt.records)
			body := encodeLogs(t, ld)
			rej, err := c.Send(context.Background(), body)

			if rej != 0 {
				t.Errorf("rejected = %d, want 0", rej)
			}
			switch {
			case tt.wantCode == codes.OK:
				if err != nil {
					t.Errorf("err = %v, want nil", err)
				}
			default:
				if got := status.Code(err); got != tt.wantCode {
					t.Errorf("status code of %v = %v, want %v", err, got, tt.wantCode)
				}
				if err != nil && !strings.Contains(err.Error(), addr) {
					t.Errorf("error %q does not name the endpoint %s", err, addr)
				}
			}

			calls := rec.snapshot()
			if len(calls) != tt.wantCalls {
				t.Fatalf("server saw %d calls, want %d", len(calls), tt.wantCalls)
			}
			if want := logsJSON(t, ld); calls[len(calls)-1].json != want {
				t.Errorf("server got logs\n%s\nwant\n%s", calls[len(calls)-1].json, want)
			}
			if tt.check != nil {
				tt.check(t, calls[len(calls)-1], lis.read.Load(), len(body))
			}
		})
	}
}

func TestSendGRPCTraces(t *testing.T) {
	rec := &recorder{handle: func(int) (int64, string, error) { return 1, "span without name", nil }}
	addr, _ := startGRPC(t, func(s *grpc.Server) { ptraceotlp.RegisterGRPCServer(s, &tracesServer{rec: rec}) })
	c := newClient(t, Traces, Config{Protocol: ProtocolGRPC, Endpoint: addr, Insecure: true})

	td := testTraces(4)
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	rej, err := c.Send(context.Background(), body)
	var pe *PartialSuccessError
	if rej != 1 || !errors.As(err, &pe) || pe.Message != "span without name" || pe.Signal != Traces {
		t.Fatalf("Send = %d, %v; want 1 span rejected with its message", rej, err)
	}
	want, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	if calls := rec.snapshot(); len(calls) != 1 || calls[0].json != string(want) {
		t.Fatalf("server got %+v, want one call with %s", calls, want)
	}
}

// TestSendGRPCWire checks that the collector receives exactly the body, on
// the signal's method, whatever the body holds, and that each signal's
// partial success is decoded from the response.
func TestSendGRPCWire(t *testing.T) {
	logsBody := encodeLogs(t, testLogs(3))
	tracesBody, err := ptraceotlp.NewExportRequestFromTraces(testTraces(2)).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	// A field this package's protobuf types do not know must pass as is.
	future := protowire.AppendString(protowire.AppendTag(bytes.Clone(logsBody), 99, protowire.BytesType), "from a newer OTLP")

	logsResp, err := proto.Marshal(&collogspb.ExportLogsServiceResponse{
		PartialSuccess: &collogspb.ExportLogsPartialSuccess{RejectedLogRecords: 2, ErrorMessage: "too old"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tracesResp, err := proto.Marshal(&coltracepb.ExportTraceServiceResponse{
		PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 1, ErrorMessage: "no name"},
	})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name        string
		sig         Signal
		compression string
		body, resp  []byte
		method      string
		wantRej     int64
		wantMsg     string
	}{
		{"logs", Logs, "none", logsBody, logsResp, "/opentelemetry.proto.collector.logs.v1.LogsService/Export", 2, "too old"},
		{"logs gzip", Logs, "gzip", logsBody, logsResp, "/opentelemetry.proto.collector.logs.v1.LogsService/Export", 2, "too old"},
		{"logs unknown field", Logs, "none", future, nil, "/opentelemetry.proto.collector.logs.v1.LogsService/Export", 0, ""},
		{"logs empty", Logs, "none", nil, nil, "/opentelemetry.proto.collector.logs.v1.LogsService/Export", 0, ""},
		{"traces", Traces, "none", tracesBody, tracesResp, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", 1, "no name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				method string
				got    *rawMessage
			)
			addr, _ := startGRPC(t, func(*grpc.Server) {}, rawServer(func(ss grpc.ServerStream) error {
				method, _ = grpc.MethodFromServerStream(ss)
				got = &rawMessage{keep: true}
				if err := ss.RecvMsg(got); err != nil {
					return err
				}
				return ss.SendMsg(&rawMessage{b: tt.resp})
			})...)
			c := newClient(t, tt.sig, Config{Protocol: ProtocolGRPC, Endpoint: addr, Insecure: true, Compression: tt.compression})

			rej, err := c.Send(context.Background(), tt.body)
			var pe *PartialSuccessError
			switch {
			case rej != tt.wantRej:
				t.Errorf("rejected = %d, want %d", rej, tt.wantRej)
			case tt.wantMsg == "" && err != nil:
				t.Errorf("Send: %v", err)
			case tt.wantMsg != "" && (!errors.As(err, &pe) || pe.Message != tt.wantMsg || pe.Signal != tt.sig):
				t.Errorf("Send error = %v, want a PartialSuccessError for %v with %q", err, tt.sig, tt.wantMsg)
			}
			if method != tt.method {
				t.Errorf("method = %q, want %q", method, tt.method)
			}
			switch {
			case got == nil:
				t.Error("server received no request")
			case !bytes.Equal(got.b, tt.body):
				t.Errorf("server received %x, want the body %x", got.b, tt.body)
			}
		})
	}
}

func TestSendGRPCUnreachable(t *testing.T) {
	for _, proto := range []string{ProtocolGRPC, ProtocolHTTPProtobuf} {
		t.Run(proto, func(t *testing.T) {
			addr := closedAddr(t)
			ep := addr
			if proto == ProtocolHTTPProtobuf {
				ep = "http://" + addr + "/v1/logs"
			}
			c, err := New(Logs, Config{Protocol: proto, Endpoint: ep, Insecure: true, RetryMaxElapsed: 300 * time.Millisecond})
			if err != nil {
				t.Fatalf("New must not fail for an unreachable collector: %v", err)
			}
			defer c.Close()

			start := time.Now()
			_, err = c.Send(context.Background(), encodeLogs(t, testLogs(1)))
			if err == nil {
				t.Fatal("Send to a closed port succeeded")
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("Send took %v with RetryMaxElapsed 300ms", took)
			}
			for _, want := range []string{addr, "give up after", "reachable"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if proto == ProtocolGRPC && status.Code(err) != codes.Unavailable {
				t.Errorf("status code of %v = %v, want Unavailable", err, status.Code(err))
			}
		})
	}
}

func TestSendGRPCTLS(t *testing.T) {
	p := newPKI(t)
	rec := &recorder{}
	register := func(s *grpc.Server) { plogotlp.RegisterGRPCServer(s, &logsServer{rec: rec}) }
	tlsAddr, _ := startGRPC(t, register, grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{p.server},
	})))
	mtlsAddr, _ := startGRPC(t, register, grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{p.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.pool,
	})))

	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "CA file", cfg: Config{Endpoint: tlsAddr, CertificateFile: p.caFile}},
		{name: "https scheme wins over Insecure", cfg: Config{Endpoint: "https://" + tlsAddr, Insecure: true, CertificateFile: p.caFile}},
		{name: "mutual TLS", cfg: Config{Endpoint: mtlsAddr, CertificateFile: p.caFile, ClientCertificateFile: p.clientCert, ClientKeyFile: p.clientKey}},
		{name: "unknown CA", cfg: Config{Endpoint: tlsAddr}, wantErr: "TLS handshake failed"},
		{name: "mutual TLS without client certificate", cfg: Config{Endpoint: mtlsAddr, CertificateFile: p.caFile}, wantErr: "give up"},
		{name: "plaintext to a TLS server", cfg: Config{Endpoint: "http://" + tlsAddr}, wantErr: "give up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Protocol = ProtocolGRPC
			tt.cfg.RetryMaxElapsed = 200 * time.Millisecond
			c := newClient(t, Logs, tt.cfg)
			_, err := c.Send(context.Background(), encodeLogs(t, testLogs(2)))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Send: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Send error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestSendGRPCBodyReusable overwrites the body as soon as Send returns, in
// the cases where gRPC is still busy with the request then: an early error
// reply leaves the client writing, and a dropped connection leaves its
// writes pending. The race detector reports any read of the body after Send
// returned.
func TestSendGRPCBodyReusable(t *testing.T) {
	// gRPC never gives back a body whose connection was dropped under it:
	// each such Send waits out releaseGrace, and a second of it is long.
	// (Not parallel: releaseGrace is shared.)
	defer func(g time.Duration) { releaseGrace = g }(releaseGrace)
	releaseGrace = 100 * time.Millisecond
	tests := []struct {
		name string
		// handle answers the n-th call (from 1) to the server on lis.
		handle  func(n int64, lis *countingListener, ss grpc.ServerStream) error
		sends   int
		wantErr bool
	}{
		{
			name: "early error reply",
			handle: func(int64, *countingListener, grpc.ServerStream) error {
				return status.Error(codes.InvalidArgument, "no thanks")
			},
			sends:   20,
			wantErr: true,
		},
		{
			name: "connection dropped mid-request, then retried",
			handle: func(n int64, lis *countingListener, ss grpc.ServerStream) error {
				// Each Send makes two calls: the dropped one and its retry.
				if n%2 == 1 {
					lis.dropAll()
					return status.Error(codes.Unavailable, "dropped")
				}
				return acceptAll(ss)
			},
			sends: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				lisp  atomic.Pointer[countingListener]
				calls atomic.Int64
			)
			addr, lis := startGRPC(t, func(*grpc.Server) {}, rawServer(func(ss grpc.ServerStream) error {
				return tt.handle(calls.Add(1), lisp.Load(), ss)
			})...)
			lisp.Store(lis)
			c := newClient(t, Logs, Config{Protocol: ProtocolGRPC, Endpoint: addr, Insecure: true, RetryMaxElapsed: 5 * time.Second})

			body := make([]byte, 4<<20)
			junk := bytes.Repeat([]byte{0xa5}, len(body))
			for i := range tt.sends {
				_, err := c.Send(context.Background(), body)
				if (err != nil) != tt.wantErr {
					t.Fatalf("Send %d: err = %v, want error %v", i, err, tt.wantErr)
				}
				// One bulk write: a loop over 4 MiB of bytes would overflow
				// the race detector's history, and it drops the report of
				// a race whose earlier access it can no longer show.
				copy(body, junk)
			}
		})
	}
}

func TestClassifyGRPC(t *testing.T) {
	tests := []struct {
		err       error
		retryable bool
		throttle  time.Duration
	}{
		{status.Error(codes.Canceled, ""), true, 0},
		{status.Error(codes.DeadlineExceeded, ""), true, 0},
		{status.Error(codes.Aborted, ""), true, 0},
		{status.Error(codes.OutOfRange, ""), true, 0},
		{status.Error(codes.Unavailable, ""), true, 0},
		{status.Error(codes.DataLoss, ""), true, 0},
		{statusWithRetryInfo(t, codes.Unavailable, 3*time.Second), true, 3 * time.Second},
		{statusWithRetryInfo(t, codes.ResourceExhausted, time.Second), true, time.Second},
		{status.Error(codes.ResourceExhausted, ""), false, 0},
		{status.Error(codes.InvalidArgument, ""), false, 0},
		{status.Error(codes.Unauthenticated, ""), false, 0},
		{status.Error(codes.PermissionDenied, ""), false, 0},
		{status.Error(codes.Unimplemented, ""), false, 0},
		{status.Error(codes.Internal, ""), false, 0},
		{status.Error(codes.Unknown, ""), false, 0},
	}
	for _, tt := range tests {
		got := classifyGRPC(tt.err)
		var re *retryableError
		isRe := errors.As(got, &re)
		if isRe != tt.retryable || (isRe && re.throttle != tt.throttle) {
			t.Errorf("classifyGRPC(%v) = %#v, want retryable %v with throttle %v", tt.err, got, tt.retryable, tt.throttle)
		}
		if status.Code(got) != status.Code(tt.err) {
			t.Errorf("classifyGRPC(%v) lost the status code: %v", tt.err, status.Code(got))
		}
	}
}
