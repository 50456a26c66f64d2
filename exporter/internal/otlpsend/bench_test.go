package otlpsend

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/grpc"
)

// benchBody encodes realistic log records to about 512 KiB, our batch size.
func benchBody(b *testing.B) []byte {
	b.Helper()
	const target = 512 << 10
	perRecord := len(encodeLogs(b, testLogs(1000))) / 1000
	return encodeLogs(b, testLogs(target/perRecord))
}

// BenchmarkSendGRPC shows the client's cost per batch; the in-process server
// discards requests undecoded so that its own cost stays small, though the
// standard codec still copies each into one buffer first.
func BenchmarkSendGRPC(b *testing.B) {
	for _, comp := range []string{"none", "gzip"} {
		b.Run(comp, func(b *testing.B) {
			addr, _ := startGRPC(b, func(*grpc.Server) {}, rawServer(acceptAll)...)
			c := newClient(b, Logs, Config{Protocol: ProtocolGRPC, Endpoint: addr, Insecure: true, Compression: comp})
			benchSend(b, c)
		})
	}
}

func BenchmarkSendHTTP(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	for _, comp := range []string{"none", "gzip"} {
		b.Run(comp, func(b *testing.B) {
			c := newClient(b, Logs, Config{Protocol: ProtocolHTTPProtobuf, Endpoint: srv.URL + "/v1/logs", Compression: comp})
			benchSend(b, c)
		})
	}
}

func benchSend(b *testing.B, c *Client) {
	body := benchBody(b)
	ctx := context.Background()
	// Connect outside the measurement.
	if _, err := c.Send(ctx, body); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Send(ctx, body); err != nil {
			b.Fatal(err)
		}
	}
}
