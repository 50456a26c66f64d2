// Package otlpwire encodes OTLP log records, spans and their export requests
// as protobuf by appending straight into caller-owned byte slices.
//
// It exists because building the OpenTelemetry SDK's (or pdata's) message
// structs costs microseconds and dozens of allocations per record, far too
// much at our syscall rates, while appending into reused buffers costs no
// allocation at all; the bytes decode to the same messages the Go SDK's OTLP
// exporters would have sent, byte for byte (TestMatchesSDK).
//
// Attributes are encoded once into an attribute list (attr.go), which a log
// record and a span then both carry: an event is encoded once, whichever
// signals it goes to. A request is a concatenation of groups, one per
// resource (AppendLogsGroup), whose resource is made of attribute lists
// too: the host's, encoded once, then a process's, encoded once per
// process.
package otlpwire
