package semconv_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/memlock-exporter/memlock-exporter/semconv/internal/telemetrydoc"
)

const telemetryDoc = "../docs/telemetry.md"

// TestTelemetryDocIsCurrent renders docs/telemetry.md in memory, with the
// code `go generate ./semconv` runs, and compares it with the committed
// file.
func TestTelemetryDocIsCurrent(t *testing.T) {
	want, err := telemetrydoc.Generate(".")
	if err != nil {
		t.Fatalf("render docs/telemetry.md: %v", err)
	}
	got, err := os.ReadFile(telemetryDoc)
	if err != nil {
		t.Fatalf("docs/telemetry.md is stale: run go generate ./semconv (%v)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := 0; i < max(len(gl), len(wl)); i++ {
		var g, w []byte
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if !bytes.Equal(g, w) {
			t.Fatalf("docs/telemetry.md is stale: run go generate ./semconv\nfirst difference at line %d:\n committed: %q\n generated: %q", i+1, g, w)
		}
	}
	t.Fatal("docs/telemetry.md is stale: run go generate ./semconv")
}
