// Package exporter turns each bpf.Event into OpenTelemetry telemetry: one log
// record (an event named memlock.<syscall>), measurements of the memlock.*
// metrics, and one span (named after the syscall, linked from the log
// record by its trace and span IDs), with names from the semconv package. It
// also builds the OpenTelemetry SDK providers, the resource and the OTLP
// exporters (through autoexport, so the standard OTEL_* variables apply),
// and keeps a collector that is down from crashing, blocking or flooding
// the daemon: undelivered records and spans are counted and reported in
// rate-limited diagnostics.
package exporter
