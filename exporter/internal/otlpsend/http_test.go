package otlpsend

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// httpCall is what a test HTTP server saw of one request.
type httpCall struct {
	at     time.Time
	method string
	path   string
	header http.Header
	body   []byte // decompressed
}

// httpCollector records requests and answers the n-th (from 1) with reply.
type httpCollector struct {
	mu    sync.Mutex
	calls []httpCall
	reply func(n int, w http.ResponseWriter)
}

func (h *httpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.calls = append(h.calls, httpCall{at: time.Now(), method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
	n, reply := len(h.calls), h.reply
	h.mu.Unlock()
	if reply != nil {
		reply(n, w)
	}
}

func (h *httpCollector) snapshot() []httpCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]httpCall(nil), h.calls...)
}

func logsPartialSuccess(t *testing.T, rejected int64, msg string) []byte {
	t.Helper()
	resp := plogotlp.NewExportResponse()
	resp.PartialSuccess().SetRejectedLogRecords(rejected)
	resp.PartialSuccess().SetErrorMessage(msg)
	b, err := resp.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSendHTTP(t *testing.T) {
	// The retry rules are in contract_test.go.
	type reply = func(n int, w http.ResponseWriter)
	always := func(code int, body string) reply {
		return func(_ int, w http.ResponseWriter) { http.Error(w, body, code) }
	}

	tests := []struct {
		name      string
		cfg       Config
		reply     func(t *testing.T) reply
		wantErr   []string // substrings; nil: no error
		wantCalls int
		check     func(t *testing.T, calls []httpCall)
	}{
		{
			name:      "protobuf POST to the given URL with headers",
			cfg:       Config{Headers: map[string]string{"Authorization": "Bearer t0k", "X-Scope-OrgID": "blue"}},
			wantCalls: 1,
			check: func(t *testing.T, calls []httpCall) {
				c := calls[0]
				if c.method != http.MethodPost || c.path != "/v1/logs" {
					t.Errorf("got %s %s, want POST /v1/logs", c.method, c.path)
				}
				for k, want := range map[string]string{
					"Content-Type":     "application/x-protobuf",
					"Content-Encoding": "",
					"Authorization":    "Bearer t0k",
					"X-Scope-OrgID":    "blue",
				} {
					if got := c.header.Get(k); got != want {
						t.Errorf("header %s = %q, want %q", k, got, want)
					}
				}
			},
		},
		{
			name:      "gzip body",
			cfg:       Config{Compression: "gzip"},
			wantCalls: 1,
			check: func(t *testing.T, calls []httpCall) {
				if got := calls[0].header.Get("Content-Encoding"); got != "gzip" {
					t.Errorf("Content-Encoding = %q, want gzip", got)
				}
			},
		},
		{
			name: "400 is not retried and quotes the body",
			reply: func(*testing.T) reply {
				return always(http.StatusBadRequest, "proto: cannot parse invalid wire-format data\n")
			},
			wantErr:   []string{"400 Bad Request", `"proto: cannot parse invalid wire-format data"`},
			wantCalls: 1,
		},
		{
			name:      "404 says to check the path",
			reply:     func(*testing.T) reply { return always(http.StatusNotFound, "404 page not found") },
			wantErr:   []string{"404 Not Found", "check the endpoint URL"},
			wantCalls: 1,
		},
		{
			name: "redirect is reported, not followed",
			reply: func(*testing.T) reply {
				return func(_ int, w http.ResponseWriter) {
					w.Header().Set("Location", "https://collector.example/v1/logs")
					w.WriteHeader(http.StatusPermanentRedirect)
				}
			},
			wantErr:   []string{"308", "https://collector.example/v1/logs"},
			wantCalls: 1,
		},
		{
			name: "non-protobuf 2xx body is ignored",
			reply: func(*testing.T) reply {
				return func(_ int, w http.ResponseWriter) {
					w.Header().Set("Content-Type", "text/html")
					_, _ = io.WriteString(w, "<html>ok</html>")
				}
			},
			wantCalls: 1,
		},
		{
			name: "undecodable protobuf 2xx body is an error",
			reply: func(*testing.T) reply {
				return func(_ int, w http.ResponseWriter) {
					w.Header().Set("Content-Type", "application/x-protobuf")
					_, _ = w.Write([]byte{0x0a, 0x05, 0x08})
				}
			},
			wantErr:   []string{"decode export response", "is it a collector?"},
			wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &httpCollector{}
			if tt.reply != nil {
				h.reply = tt.reply(t)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			cfg := tt.cfg
			cfg.Protocol = ProtocolHTTPProtobuf
			cfg.Endpoint = srv.URL + "/v1/logs"
			c := newClient(t, Logs, cfg)

			body := encodeLogs(t, testLogs(500))
			rej, err := c.Send(context.Background(), body)

			if rej != 0 {
				t.Errorf("rejected = %d, want 0", rej)
			}
			switch {
			case tt.wantErr == nil:
				if err != nil {
					t.Errorf("err = %v, want nil", err)
				}
			default:
				if err == nil {
					t.Fatalf("err = nil, want one containing %q", tt.wantErr)
				}
				for _, want := range append(tt.wantErr, srv.URL) {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
			}

			calls := h.snapshot()
			if len(calls) != tt.wantCalls {
				t.Fatalf("server saw %d requests, want %d", len(calls), tt.wantCalls)
			}
			for i, c := range calls {
				if !bytes.Equal(c.body, body) {
					t.Errorf("request %d: server got %d bytes differing from the %d-byte body", i+1, len(c.body), len(body))
				}
			}
			if tt.check != nil {
				tt.check(t, calls)
			}
		})
	}
}

func TestSendHTTPTraces(t *testing.T) {
	resp := ptraceotlp.NewExportResponse()
	resp.PartialSuccess().SetRejectedSpans(2)
	rb, err := resp.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	h := &httpCollector{reply: func(_ int, w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(rb)
	}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := newClient(t, Traces, Config{Protocol: ProtocolHTTPProtobuf, Endpoint: srv.URL + "/v1/traces"})

	body, err := ptraceotlp.NewExportRequestFromTraces(testTraces(3)).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	if rej, err := c.Send(context.Background(), body); rej != 2 || err != nil {
		t.Fatalf("Send = %d, %v; want 2 rejected spans and no error", rej, err)
	}
	if calls := h.snapshot(); len(calls) != 1 || calls[0].path != "/v1/traces" || !bytes.Equal(calls[0].body, body) {
		t.Fatalf("server saw %+v, want the body once at /v1/traces", calls)
	}
}

func TestSendHTTPS(t *testing.T) {
	h := &httpCollector{}
	tlsSrv := httptest.NewUnstartedServer(h)
	conns := &countingListener{Listener: tlsSrv.Listener}
	tlsSrv.Listener = conns
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	plainSrv := httptest.NewServer(h)
	defer plainSrv.Close()

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	tlsURL := tlsSrv.URL + "/v1/logs"

	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "CA file", cfg: Config{Endpoint: tlsURL, CertificateFile: caFile}},
		{name: "unknown CA is not retried", cfg: Config{Endpoint: tlsURL}, wantErr: "CA certificate file"},
		{name: "https to a plaintext server", cfg: Config{Endpoint: strings.Replace(plainSrv.URL, "http:", "https:", 1) + "/v1/logs", CertificateFile: caFile}, wantErr: "does not speak TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Protocol = ProtocolHTTPProtobuf
			c := newClient(t, Logs, tt.cfg)
			before := conns.accepted()
			_, err := c.Send(context.Background(), encodeLogs(t, testLogs(1)))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Send: %v", err)
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Send error = %v, want one containing %q", err, tt.wantErr)
				}
				if n := conns.accepted() - before; n > 1 {
					t.Errorf("client connected %d times: a permanent failure was retried", n)
				}
			}
		})
	}
}

// TestSendHTTPBodyReusable overwrites the body as soon as Send returns to a
// server that answers before reading it; the race detector reports any read of
// the body (or of a pooled compressed copy) after Send returned.
func TestSendHTTPBodyReusable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not reading that", http.StatusBadRequest)
	}))
	defer srv.Close()
	for _, tt := range []struct {
		compression string
		sends       int
	}{{"none", 40}, {"gzip", 5}} {
		t.Run(tt.compression, func(t *testing.T) {
			c := newClient(t, Logs, Config{Protocol: ProtocolHTTPProtobuf, Endpoint: srv.URL + "/v1/logs", Compression: tt.compression})
			body := make([]byte, 2<<20)
			junk := bytes.Repeat([]byte{0xa5}, len(body))
			for range tt.sends {
				if _, err := c.Send(context.Background(), body); err == nil {
					t.Fatal("Send succeeded, want the server's 400")
				}
				// One bulk write: a loop over 2 MiB of bytes would overflow
				// the race detector's history, and it drops the report of
				// a race whose earlier access it can no longer show.
				copy(body, junk)
			}
		})
	}
}

func TestFencedReader(t *testing.T) {
	f := &fence{}
	r := f.reader([]byte("abcdef"))
	p := make([]byte, 4)
	if n, err := r.Read(p); n != 4 || err != nil || string(p[:n]) != "abcd" {
		t.Fatalf("Read = %d, %v, %q", n, err, p[:n])
	}
	f.close()
	if n, err := r.Read(p); n != 0 || !errors.Is(err, errWithdrawn) {
		t.Fatalf("Read after close = %d, %v; want 0, errWithdrawn", n, err)
	}
	if n, err := f.reader([]byte("x")).Read(p); n != 0 || !errors.Is(err, errWithdrawn) {
		t.Fatalf("new reader after close = %d, %v; want 0, errWithdrawn", n, err)
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 2 ", 2 * time.Second},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		// Too many seconds for a Duration: as long as can be, not a
		// wrapped product.
		{"10000000000", math.MaxInt64 / time.Second * time.Second},
		{"100000000000000000000", math.MaxInt64 / time.Second * time.Second},
		{"-100000000000000000000", 0},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.in); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	if got := retryAfter(future); got < 58*time.Minute || got > time.Hour {
		t.Errorf("retryAfter(%q) = %v, want about an hour", future, got)
	}
}

func TestReadSnippet(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "(empty body)"},
		{"  \n\t ", "(empty body)"},
		{"bad\nrequest\x00here", `"bad request here"`},
		{strings.Repeat("x", errorSnippetLen+10), `"` + strings.Repeat("x", errorSnippetLen) + `..."`},
		{"\xff\xfeok", `"ok"`},
	}
	for _, tt := range tests {
		if got := readSnippet(strings.NewReader(tt.in)); got != tt.want {
			t.Errorf("readSnippet(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
