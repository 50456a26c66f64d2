// Package exporter turns each bpf.Event into OpenTelemetry telemetry: one
// log record (an event named memlock.<syscall>), one span (named after the
// syscall, linked from the log record by its trace and span IDs) and the
// measurements of the memlock.* metrics, with names from the semconv
// package.
//
// One event takes one way through the package; read the files in this
// order:
//
//   - exporter.go: Handle, the only entry, with New and Shutdown.
//   - stats.go: the call metrics, aggregated in Handle and read by the
//     SDK's metric reader at each collection.
//   - locked.go: the processes seen calling, for the locked-memory gauges
//     and the memlock.limit_near warnings.
//   - fold.go: a thread's flood of one repeated call, folded into one
//     record and span past a threshold (the metrics count every call).
//   - encode.go: the event encoded once, its attributes as OTLP bytes
//     (threads.go: the thread's part, kept per thread; process.go: the
//     process's identity, its resource, kept per process; ids.go: the
//     span's IDs and the sampler's decision).
//   - sinks.go: each signal takes what it needs from the encoded event:
//     a log record, a span.
//   - batch.go: each signal's batches, grouped by process (one resource
//     per process in each request), queue and sending goroutine; a batch
//     the collector cannot take is held and retried until it can, and
//     only a full queue drops (the newest). spool.go: the same through
//     a persistent queue on disk, when MEMLOCK_EXPORTER_QUEUE_DIR is set.
//   - console.go, or internal/otlpsend: where the batches go.
//
// Log records and spans are encoded to OTLP protobuf by internal/otlpwire
// rather than through the OpenTelemetry Go SDK's log and trace pipelines,
// which cost about ten times as much per event; the bytes are the SDK's,
// field for field (otlpwire's TestMatchesSDK). Metrics go through the SDK's
// meter provider (metrics.go), built from explicit settings: nothing here
// reads the environment. A collector that is down never crashes, blocks or
// floods the daemon: records and spans wait for it while their queue has
// room, and what is dropped is counted and reported in rate-limited
// diagnostics (diagnostics.go).
package exporter
