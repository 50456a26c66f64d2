// Package e2e holds end-to-end tests against a real OpenTelemetry Collector.
// The tests build the test-only collector in e2e/otelcol (its own Go module,
// cached between runs), start it on free loopback ports, send it telemetry and
// read back what its file exporters wrote as OTLP JSON. They are skipped with
// go test -short.
package e2e
