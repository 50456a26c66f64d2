package exporter

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	mrand "math/rand/v2"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// traceContext is the span of one call: its IDs, whether the sampler kept
// it, and what the span carries besides the event's times and attributes.
// The log record carries the IDs whether or not the span is kept, as the
// SDK's would.
type traceContext struct {
	traceID [16]byte
	spanID  [8]byte
	sampled bool
	name    string // the syscall's
	status  string // the errno's name on failure, "" on success
}

func (tc *traceContext) valid() bool { return tc.traceID != [16]byte{} }

// idSource makes each call's span a root of its own trace: random IDs, and
// the configured sampler's decision (OTEL_TRACES_SAMPLER). Every span is a
// root, so a ParentBased sampler decides as its root sampler. The SDK's
// ID generator is not exported, so the IDs are ours; the decision is the
// SDK's sampler's. Not safe for concurrent use (Handle holds its lock).
type idSource struct {
	rng     *mrand.ChaCha8
	sampler sdktrace.Sampler
	// keepsAll says the sampler keeps every root span: AlwaysSample, or
	// the default ParentBased(AlwaysSample). Then it is not asked, which
	// cost about 74 ns a span (BenchmarkNextIDs: 99 against 25 ns).
	keepsAll bool
}

// rootContext is every span's parent context: none.
var rootContext = context.Background()

// newIDSource returns an idSource deciding with sampler; nil means
// ParentBased(AlwaysSample), the SDK's default.
func newIDSource(sampler sdktrace.Sampler) *idSource {
	if sampler == nil {
		sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
	var seed [32]byte
	_, _ = rand.Read(seed[:]) // never fails on Linux
	return &idSource{rng: mrand.NewChaCha8(seed), sampler: sampler, keepsAll: keepsEveryRoot(sampler)}
}

// keepsEveryRoot tells the samplers that sample every root span by their
// description, which the SDK's samplers make from their configuration: a
// ParentBased sampler with other delegates, or any other sampler, is asked.
func keepsEveryRoot(s sdktrace.Sampler) bool {
	d := s.Description()
	return d == sdktrace.AlwaysSample().Description() || d == sdktrace.ParentBased(sdktrace.AlwaysSample()).Description()
}

// next returns the trace context of a call of syscall name; errName is the
// errno's name when it failed, else "".
func (s *idSource) next(name, errName string) traceContext {
	tc := traceContext{name: name, status: errName}
	for tc.traceID == [16]byte{} {
		binary.BigEndian.PutUint64(tc.traceID[:8], s.rng.Uint64())
		binary.BigEndian.PutUint64(tc.traceID[8:], s.rng.Uint64())
	}
	for tc.spanID == [8]byte{} {
		binary.BigEndian.PutUint64(tc.spanID[:], s.rng.Uint64())
	}
	if s.keepsAll {
		tc.sampled = true
		return tc
	}
	res := s.sampler.ShouldSample(sdktrace.SamplingParameters{
		ParentContext: rootContext,
		TraceID:       tc.traceID,
		Name:          name,
		Kind:          trace.SpanKindInternal,
	})
	// RecordOnly spans are recorded but never exported by the SDK's
	// processors: as good as dropped here.
	tc.sampled = res.Decision == sdktrace.RecordAndSample
	return tc
}
