// Package jaeger exists only to pin and build Jaeger v2 for the end-to-end
// tests in package e2e: its go.mod names github.com/jaegertracing/jaeger's
// cmd/jaeger as a tool at v1.75.0, and e2e/jaeger_test.go builds that command
// from this module (cached between runs) and sends it the daemon's spans.
//
// It is a module of its own so that Jaeger's large dependency tree never
// enters the exporter's go.mod, nor the test collector's in e2e/otelcol. It
// holds no code, is not a product and is not shipped.
package jaeger
