package exporter

import (
	"context"
	"fmt"
	"io"
	"sync"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpsend"
)

// consoleSender writes each export request to the console as one line of
// OTLP/JSON, the format of the OpenTelemetry Collector's file exporter, so
// that the console shows exactly what a collector would receive.
type consoleSender struct {
	sig otlpsend.Signal
	w   io.Writer // a *lockedWriter shared by every signal
}

// lockedWriter serialises the writes of the signals sharing the console:
// each writes a line, or a metric export, at once.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Write writes p whole, alone.
func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (c *consoleSender) Send(_ context.Context, body []byte) (int64, error) {
	var req proto.Message = new(collogspb.ExportLogsServiceRequest)
	if c.sig == otlpsend.Traces {
		req = new(coltracepb.ExportTraceServiceRequest)
	}
	if err := proto.Unmarshal(body, req); err != nil {
		return 0, fmt.Errorf("decode %s request for the console: %w", c.sig, err)
	}
	line, err := protojson.Marshal(req)
	if err != nil {
		return 0, fmt.Errorf("render %s request for the console: %w", c.sig, err)
	}
	if _, err := c.w.Write(append(line, '\n')); err != nil {
		return 0, fmt.Errorf("write %s to the console: %w", c.sig, err)
	}
	return 0, nil
}

func (c *consoleSender) Close() error { return nil }
