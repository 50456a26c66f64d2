package exporter

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/memlock-exporter/memlock-exporter/bpf"
)

// spanOptions are the option slices of one span's Start and End, reused
// from call to call: passing a slice the SDK does not retain spares an
// allocation per call each.
type spanOptions struct {
	start [1]trace.SpanStartOption
	end   [1]trace.SpanEndOption
}

// startSpan starts the span of one call and returns it with a context that
// holds it. The span is named after the syscall ("mlock2"), starts at the
// call's entry and carries attrs, the attributes of the call's log record
// (the SDK copies them); a failed call's status is Error with the errno's
// name (errName) as its description. Its kind is internal: the SDK's
// default, which saves an option (and its allocation) per call. Each call is
// a trace of its own: e.ctx holds no span, so the span is a root and the
// sampler (ParentBased(AlwaysOn) unless OTEL_TRACES_SAMPLER says otherwise,
// which the SDK reads itself) decides on it alone. e.mu is held; the
// caller ends the span with endSpan.
func (e *Exporter) startSpan(ev *bpf.Event, attrs []attribute.KeyValue, errName string) (context.Context, trace.Span) {
	e.spanOpts.start[0] = trace.WithTimestamp(ev.Time)
	ctx, span := e.tracer.Start(e.ctx, syscalls[ev.Syscall].name, e.spanOpts.start[:]...)
	// Set after Start rather than given to it with trace.WithAttributes,
	// which would copy them once more; no sampler we can be configured with
	// looks at attributes, and a span that is not sampled skips this.
	span.SetAttributes(attrs...)
	if ev.Ret < 0 {
		span.SetStatus(codes.Error, errName)
	}
	return ctx, span
}

// endSpan ends span at the call's exit. e.mu is held.
func (e *Exporter) endSpan(ev *bpf.Event, span trace.Span) {
	e.spanOpts.end[0] = trace.WithTimestamp(ev.Time.Add(ev.Duration))
	span.End(e.spanOpts.end[:]...)
}
