// Package exporter turns each bpf.Event into OpenTelemetry telemetry: one log
// record (an event named memlock.<syscall>), measurements of the memlock.*
// metrics, and one span (named after the syscall, linked from the log
// record by its trace and span IDs), with names from the semconv package.
//
// Metrics go through the OpenTelemetry SDK (autoexport, so the standard
// OTEL_* variables apply), but for OTLP the two histograms are aggregated
// by Handle itself and handed to the SDK's reader by a HistogramProducer
// (histogram.go): the SDK's synchronous instruments cost several times
// more per call. Log records and spans sent over OTLP take the
// direct pipeline by default (direct.go): encoded to OTLP protobuf by
// internal/otlpwire straight from the event, batched, and sent by
// internal/otlpsend, because the SDK's log and trace pipelines cost several
// times an event's budget; the output is the same as the SDK's, field for
// field (TestDirectMatchesSDK). The SDK's pipelines remain for console
// output and on request (DirectOptions nil).
//
// A collector that is down never crashes, blocks or floods the daemon:
// undelivered records and spans are counted and reported in rate-limited
// diagnostics.
package exporter
