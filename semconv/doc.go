// Package semconv is memlock-exporter's telemetry schema in one place: the
// attribute keys, event names, metric names, units, descriptions and histogram
// buckets that every signal we emit uses, and the attributes of the
// per-process resource its records and spans are grouped under.
//
// Standard OpenTelemetry semantic-convention keys are re-exported from
// go.opentelemetry.io/otel/semconv/v1.43.0; our own live in the "memlock."
// namespace. The registry file registry/memlock.yaml (weaver's registry
// format) documents every name, and a test keeps it and this package in
// agreement. The package imports no other package of this project.
package semconv
