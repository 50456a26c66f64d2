// Command otelcol is a test-only build of the OpenTelemetry Collector, used by
// the end-to-end tests in package e2e. It holds just what those tests need: the
// OTLP receiver, the debug exporter and the contrib file exporter (which writes
// what it receives as OTLP JSON lines for the tests to read back).
//
// It lives in its own Go module so that the collector's large dependency tree
// never enters the exporter's go.mod. It is not a product and is not shipped:
// its internal telemetry is reduced to a logger on stderr, so configurations
// must leave out service::telemetry.
package main
