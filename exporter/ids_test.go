package exporter

import (
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TestSampler: the SDK's samplers decide on our spans as on its own roots;
// a ParentBased sampler decides as its root sampler.
func TestSampler(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sampler sdktrace.Sampler
		lo, hi  int // sampled out of 10000, bounds
	}{
		{"default", nil, 10000, 10000},
		{"always_on", sdktrace.AlwaysSample(), 10000, 10000},
		{"always_off", sdktrace.NeverSample(), 0, 0},
		{"parentbased_always_off", sdktrace.ParentBased(sdktrace.NeverSample()), 0, 0},
		{"traceidratio 0.25", sdktrace.TraceIDRatioBased(0.25), 2200, 2800},
		{"parentbased_traceidratio 0.5", sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.5)), 4600, 5400},
		{"traceidratio 0", sdktrace.TraceIDRatioBased(0), 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids := newIDSource(tc.sampler)
			n := 0
			for range 10000 {
				if ids.next("mlock2", "").sampled {
					n++
				}
			}
			if n < tc.lo || n > tc.hi {
				t.Errorf("sampled %d of 10000, want %d..%d", n, tc.lo, tc.hi)
			}
		})
	}
}

// TestKeepsEveryRoot: only the samplers that keep every root span skip
// being asked; one that keeps them all with other delegates for parents is
// still asked (and keeps them, as TestSampler would see).
func TestKeepsEveryRoot(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sampler sdktrace.Sampler
		want    bool
	}{
		{"default", nil, true},
		{"always_on", sdktrace.AlwaysSample(), true},
		{"parentbased_always_on", sdktrace.ParentBased(sdktrace.AlwaysSample()), true},
		{"always_off", sdktrace.NeverSample(), false},
		{"traceidratio 1", sdktrace.TraceIDRatioBased(1), false},
		{"parentbased_always_on, remote parents never", sdktrace.ParentBased(sdktrace.AlwaysSample(),
			sdktrace.WithRemoteParentSampled(sdktrace.NeverSample())), false},
	} {
		if got := newIDSource(tc.sampler).keepsAll; got != tc.want {
			t.Errorf("%s: keepsAll %t, want %t", tc.name, got, tc.want)
		}
	}
}

// BenchmarkNextIDs measures one span's IDs and sampling decision.
func BenchmarkNextIDs(b *testing.B) {
	for _, bc := range []struct {
		name    string
		sampler sdktrace.Sampler
		ask     bool // ask the sampler even when it keeps all
	}{
		{"default", nil, false},
		{"default-asked", nil, true},
		{"traceidratio", sdktrace.TraceIDRatioBased(0.5), false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ids := newIDSource(bc.sampler)
			ids.keepsAll = ids.keepsAll && !bc.ask
			for b.Loop() {
				_ = ids.next("mlock2", "")
			}
		})
	}
}

// TestTraceIDRatioDecidesOnTheTraceID: the decision is the SDK's function
// of the trace ID, so a collector's tail sampler keyed on it agrees.
func TestTraceIDRatioDecidesOnTheTraceID(t *testing.T) {
	ratio := sdktrace.TraceIDRatioBased(0.3)
	ids := newIDSource(ratio)
	for range 1000 {
		tc := ids.next("mlock", "ENOMEM")
		want := ratio.ShouldSample(sdktrace.SamplingParameters{TraceID: tc.traceID}).Decision == sdktrace.RecordAndSample
		if tc.sampled != want {
			t.Fatalf("trace %x: sampled %v, the SDK's sampler says %v", tc.traceID, tc.sampled, want)
		}
		if tc.name != "mlock" || tc.status != "ENOMEM" {
			t.Fatalf("name %q status %q", tc.name, tc.status)
		}
	}
}

func TestIDsAreUniqueAndValid(t *testing.T) {
	ids := newIDSource(nil)
	seen := map[[16]byte]bool{}
	spans := map[[8]byte]bool{}
	for range 10000 {
		tc := ids.next("mlock2", "")
		if !tc.valid() || tc.spanID == [8]byte{} || seen[tc.traceID] || spans[tc.spanID] {
			t.Fatalf("bad or repeated IDs %x %x", tc.traceID, tc.spanID)
		}
		seen[tc.traceID], spans[tc.spanID] = true, true
	}
}
