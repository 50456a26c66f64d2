package otlpsend

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestNew(t *testing.T) {
	p := newPKI(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	unreachable := closedAddr(t)

	tests := []struct {
		name    string
		sig     Signal
		cfg     Config
		wantErr string // "" means New must succeed
		wantEP  string
	}{
		{name: "grpc host:port TLS", cfg: Config{Protocol: "grpc", Endpoint: unreachable}, wantEP: unreachable + " (gRPC, TLS)"},
		{name: "grpc insecure", cfg: Config{Protocol: "grpc", Endpoint: unreachable, Insecure: true}, wantEP: unreachable + " (gRPC, plaintext)"},
		{name: "grpc http scheme", cfg: Config{Protocol: "grpc", Endpoint: "http://" + unreachable + "/x"}, wantEP: unreachable + " (gRPC, plaintext)"},
		{name: "grpc https scheme", sig: Traces, cfg: Config{Protocol: "grpc", Endpoint: "HTTPS://" + unreachable, Insecure: true}, wantEP: unreachable + " (gRPC, TLS)"},
		{name: "grpc mTLS files", cfg: Config{Protocol: "grpc", Endpoint: unreachable, CertificateFile: p.caFile, ClientCertificateFile: p.clientCert, ClientKeyFile: p.clientKey}, wantEP: unreachable + " (gRPC, TLS)"},
		{name: "grpc plaintext ignores TLS files", cfg: Config{Protocol: "grpc", Endpoint: unreachable, Insecure: true, CertificateFile: "/nonexistent"}, wantEP: unreachable + " (gRPC, plaintext)"},
		{name: "http url", cfg: Config{Protocol: "http/protobuf", Endpoint: "http://" + unreachable + "/v1/logs", Compression: "gzip"}, wantEP: "http://" + unreachable + "/v1/logs"},
		{name: "http password redacted", cfg: Config{Protocol: "http/protobuf", Endpoint: "https://u:secret@" + unreachable + "/v1/logs"}, wantEP: "https://u:xxxxx@" + unreachable + "/v1/logs"},

		{name: "unknown signal", sig: Signal(7), cfg: Config{Protocol: "grpc", Endpoint: unreachable}, wantErr: "unknown signal"},
		{name: "empty endpoint", cfg: Config{Protocol: "grpc"}, wantErr: "endpoint is empty"},
		{name: "unknown protocol", cfg: Config{Protocol: "thrift", Endpoint: unreachable}, wantErr: `use "grpc" or "http/protobuf"`},
		{name: "http/json", cfg: Config{Protocol: "http/json", Endpoint: unreachable}, wantErr: "not supported"},
		{name: "unknown compression", cfg: Config{Protocol: "grpc", Endpoint: unreachable, Compression: "zstd"}, wantErr: `use "gzip" or "none"`},
		{name: "negative timeout", cfg: Config{Protocol: "grpc", Endpoint: unreachable, Timeout: -time.Second}, wantErr: "negative timeout"},
		{name: "http without scheme", cfg: Config{Protocol: "http/protobuf", Endpoint: unreachable}, wantErr: "want a full URL"},
		{name: "grpc scheme without host", cfg: Config{Protocol: "grpc", Endpoint: "http:///v1"}, wantErr: "no host"},
		{name: "client cert without key", cfg: Config{Protocol: "grpc", Endpoint: unreachable, ClientCertificateFile: p.clientCert}, wantErr: "must be set together"},
		{name: "missing CA file", cfg: Config{Protocol: "grpc", Endpoint: unreachable, CertificateFile: "/nonexistent/ca.pem"}, wantErr: "read CA certificate file"},
		{name: "CA file without PEM", cfg: Config{Protocol: "http/protobuf", Endpoint: "https://" + unreachable, CertificateFile: notPEM}, wantErr: "no PEM certificate found"},
		{name: "bad client key pair", cfg: Config{Protocol: "grpc", Endpoint: unreachable, ClientCertificateFile: p.clientCert, ClientKeyFile: p.caFile}, wantErr: "load client certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.sig, tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer c.Close()
			if got := c.Endpoint(); got != tt.wantEP {
				t.Errorf("Endpoint() = %q, want %q", got, tt.wantEP)
			}
		})
	}
}

// unavailableServer answers 503 to every request and reports each on calls.
func unavailableServer(t *testing.T, retryAfter string) (url string, calls <-chan struct{}) {
	ch := make(chan struct{}, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ch <- struct{}{}
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1/logs", ch
}

func TestSendEndsEarly(t *testing.T) {
	tests := []struct {
		name string
		// end ends the Send in progress once the server has seen a request.
		end  func(c *Client, cancel context.CancelFunc)
		want error
	}{
		{name: "context canceled", end: func(_ *Client, cancel context.CancelFunc) { cancel() }, want: context.Canceled},
		{name: "client closed", end: func(c *Client, _ context.CancelFunc) { _ = c.Close() }, want: ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Retry-After far beyond the test's run time: Send would sit in
			// its backoff wait unless ended.
			url, calls := unavailableServer(t, "30")
			c := newClient(t, Logs, Config{Protocol: ProtocolHTTPProtobuf, Endpoint: url})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			done := make(chan error, 1)
			go func() {
				_, err := c.Send(ctx, []byte{})
				done <- err
			}()
			<-calls
			tt.end(c, cancel)
			select {
			case err := <-done:
				if !errors.Is(err, tt.want) {
					t.Fatalf("Send error = %v, want %v", err, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Send did not return after it was ended")
			}
		})
	}
}

func TestSendAfterClose(t *testing.T) {
	for _, proto := range []string{ProtocolGRPC, ProtocolHTTPProtobuf} {
		t.Run(proto, func(t *testing.T) {
			c, err := New(Logs, Config{Protocol: proto, Endpoint: "http://127.0.0.1:1/v1/logs"})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := c.Send(context.Background(), nil); !errors.Is(err, ErrClosed) {
				t.Fatalf("Send after Close = %v, want ErrClosed", err)
			}
		})
	}
}

func TestSendGivesUpAtRetryMaxElapsed(t *testing.T) {
	url, calls := unavailableServer(t, "")
	c := newClient(t, Logs, Config{Protocol: ProtocolHTTPProtobuf, Endpoint: url, RetryMaxElapsed: 700 * time.Millisecond})
	start := time.Now()
	_, err := c.Send(context.Background(), []byte{1})
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "give up after") {
		t.Fatalf("Send error = %v, want it to give up", err)
	}
	if took > 700*time.Millisecond+time.Second {
		t.Errorf("Send took %v with RetryMaxElapsed 700ms", took)
	}
	// 250ms ±50%, growing 1.5x: at least two attempts fit in 700ms.
	if n := len(calls); n < 2 {
		t.Errorf("server saw %d requests, want retries", n)
	}
}

func TestPartialSuccessUnmarshal(t *testing.T) {
	logsResp := func(rejected int64, msg string) []byte {
		r := plogotlp.NewExportResponse()
		r.PartialSuccess().SetRejectedLogRecords(rejected)
		r.PartialSuccess().SetErrorMessage(msg)
		b, err := r.MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tracesResp := func(rejected int64, msg string) []byte {
		r := ptraceotlp.NewExportResponse()
		r.PartialSuccess().SetRejectedSpans(rejected)
		r.PartialSuccess().SetErrorMessage(msg)
		b, err := r.MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var withUnknown []byte
	withUnknown = protowire.AppendTag(withUnknown, 9, protowire.VarintType)
	withUnknown = protowire.AppendVarint(withUnknown, 42)
	withUnknown = append(withUnknown, logsResp(7, "x")...)
	merged := append(logsResp(1, "first"), logsResp(0, "second")...)

	tests := []struct {
		name    string
		in      []byte
		want    partialSuccess
		wantErr bool
	}{
		{name: "empty", in: nil},
		{name: "logs rejected and message", in: logsResp(3, "too old"), want: partialSuccess{3, "too old"}},
		{name: "logs message only", in: logsResp(0, "warning"), want: partialSuccess{0, "warning"}},
		{name: "traces rejected only", in: tracesResp(9, ""), want: partialSuccess{9, ""}},
		{name: "unknown fields skipped", in: withUnknown, want: partialSuccess{7, "x"}},
		{name: "repeated field merges", in: merged, want: partialSuccess{1, "second"}},
		{name: "truncated", in: logsResp(3, "too old")[:4], wantErr: true},
		{name: "garbage", in: []byte("<html>"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got partialSuccess
			err := got.unmarshal(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("unmarshal error = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Fatalf("unmarshal = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPartialSuccessErrorMessage(t *testing.T) {
	tests := []struct {
		err  PartialSuccessError
		want string
	}{
		{PartialSuccessError{Signal: Logs, Rejected: 2, Message: "too old"}, "collector rejected 2 of the log records it was sent: too old"},
		{PartialSuccessError{Signal: Traces, Rejected: 1, Message: "bad"}, "collector rejected 1 of the spans it was sent: bad"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
