// Package otlpsend delivers OTLP export requests that the caller has already
// encoded as protobuf to an OpenTelemetry Collector, over OTLP/gRPC or
// OTLP/HTTP, without decoding or re-encoding them.
//
// It exists because the OpenTelemetry Go SDK builds its own request messages,
// which is too slow at our record rates, yet the wire behaviour of its OTLP
// exporters (TLS, headers, gzip, timeouts, retries, partial success) is what
// collectors and operators expect, so this package reproduces that behaviour.
package otlpsend
