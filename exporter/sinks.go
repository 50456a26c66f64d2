package exporter

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/memlock-exporter/memlock-exporter/exporter/internal/diskqueue"
	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpsend"
	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpwire"
)

// Destination says where one signal (log records, or spans) goes.
type Destination struct {
	Kind DestinationKind
	// OTLP is the collector to send to, for ToOTLP.
	OTLP OTLPTarget
	// Batch is the signal's batching (for the console too: one line per
	// batch).
	Batch BatchOptions

	// send, if set, replaces the sender Kind would make (tests).
	send sender
}

// DestinationKind is where a signal goes: OTEL_LOGS_EXPORTER and
// OTEL_TRACES_EXPORTER.
type DestinationKind uint8

const (
	// ToNone drops the signal: no log records, or no spans at all (not
	// even their IDs on the log records).
	ToNone DestinationKind = iota
	// ToOTLP sends it to an OpenTelemetry Collector.
	ToOTLP
	// ToConsole writes each batch as one OTLP/JSON export request per
	// line, for people debugging a set-up.
	ToConsole
)

// OTLPTarget is where and how a signal is sent over OTLP: the standard
// OTEL_EXPORTER_OTLP_* settings of one signal, resolved.
type OTLPTarget = otlpsend.Config

// A sink turns events into one signal's items and hands them to its
// stream. emit is safe for concurrent use and never blocks on the network.
type sink interface {
	emit(ev *event)
	shutdown(ctx context.Context) error
}

// logSink makes each event a log record, which carries its span's IDs when
// it has a span.
type logSink struct{ stream *stream }

func (s *logSink) emit(ev *event) {
	r := otlpwire.LogRecord{
		Time:           ev.start,
		ObservedTime:   ev.observed,
		Severity:       ev.severity,
		EventName:      ev.name,
		Body:           ev.body,
		Attributes:     ev.attrs,
		MoreAttributes: ev.thread,
	}
	if tc := &ev.trace; tc.valid() {
		r.TraceID, r.SpanID = tc.traceID, tc.spanID
		if tc.sampled {
			r.TraceFlags = traceFlagSampled
		}
	}
	s.stream.add(ev.resource, func(dst []byte) []byte { return otlpwire.AppendLogRecord(dst, &r) })
}

func (s *logSink) shutdown(ctx context.Context) error { return s.stream.shutdown(ctx) }

// Span fields as the SDK's OTLP exporter sets them on a local root span:
// the W3C trace flags, and "we know the parent is not remote".
const (
	traceFlagSampled    = 0x01
	spanFlagHasIsRemote = 0x100
	spanKindInternal    = 1
	statusCodeError     = 2
)

// spanSink makes each sampled call a span: a root named after the syscall,
// of kind internal, from the call's entry to its exit, with the record's
// attributes and, on failure, an error status described by the errno's
// name, as the SDK would make it.
type spanSink struct{ stream *stream }

func (s *spanSink) emit(ev *event) {
	tc := &ev.trace
	if !tc.sampled {
		return
	}
	sp := otlpwire.Span{
		TraceID:        tc.traceID,
		SpanID:         tc.spanID,
		Flags:          traceFlagSampled | spanFlagHasIsRemote,
		Name:           tc.name,
		Kind:           spanKindInternal,
		Start:          ev.start,
		End:            ev.end,
		Attributes:     ev.attrs,
		MoreAttributes: ev.thread,
	}
	if tc.status != "" {
		sp.StatusCode, sp.StatusMessage = statusCodeError, tc.status
	}
	s.stream.add(ev.resource, func(dst []byte) []byte { return otlpwire.AppendSpan(dst, &sp) })
}

func (s *spanSink) shutdown(ctx context.Context) error { return s.stream.shutdown(ctx) }

// QueueOptions configure the persistent export queue.
type QueueOptions struct {
	// Dir, if set, holds one file per signal sent over OTLP (logs.db,
	// spans.db), through which its requests go (spool.go); empty keeps
	// them in memory only.
	Dir string
	// MaxBytes bounds each file's requests; 0 means DefaultQueueMaxBytes.
	MaxBytes int64
}

// DefaultQueueMaxBytes is QueueOptions.MaxBytes when left zero.
const DefaultQueueMaxBytes = 256 << 20

// newSinks makes the sinks of the log and span destinations, in that
// order; a signal going nowhere has none. Their requests carry sc.
func newSinks(logs, spans Destination, q QueueOptions, sc otlpwire.Scope, console io.Writer, diag *diagnostics) ([]sink, error) {
	var sinks []sink
	fail := func(err error) ([]sink, error) {
		for _, s := range sinks {
			_ = s.shutdown(context.Background())
		}
		return nil, err
	}
	if logs.Kind != ToNone {
		send, err := newSender(otlpsend.Logs, &logs, console, diag.exportRetrying)
		if err != nil {
			return fail(fmt.Errorf("create log record client: %w", err))
		}
		if logs.Batch.disk, err = openQueue(&logs, q, "logs.db"); err != nil {
			_ = send.Close()
			return fail(err)
		}
		sinks = append(sinks, &logSink{newStream(sc, otlpwire.AppendLogsGroupHead, send, logs.Batch, streamCounters{
			failed:    diag.exportFailed,
			succeeded: diag.exportSucceeded,
			dropped:   diag.queueDropped,
			kept:      diag.keptRecords,
		})})
	}
	if spans.Kind != ToNone {
		send, err := newSender(otlpsend.Traces, &spans, console, diag.spanExportRetrying)
		if err != nil {
			return fail(fmt.Errorf("create span client: %w", err))
		}
		if spans.Batch.disk, err = openQueue(&spans, q, "spans.db"); err != nil {
			_ = send.Close()
			return fail(err)
		}
		sinks = append(sinks, &spanSink{newStream(sc, otlpwire.AppendTracesGroupHead, send, spans.Batch, streamCounters{
			failed:    diag.spanExportFailed,
			succeeded: diag.spanExportSucceeded,
			dropped:   diag.spanQueueDropped,
			kept:      diag.keptSpans,
		})})
	}
	return sinks, nil
}

// openQueue opens the persistent queue of d in q.Dir, if d sends over OTLP
// and q asks for one; nil otherwise.
func openQueue(d *Destination, q QueueOptions, name string) (*diskqueue.Queue, error) {
	if q.Dir == "" || d.Kind != ToOTLP {
		return nil, nil
	}
	if q.MaxBytes <= 0 {
		q.MaxBytes = DefaultQueueMaxBytes
	}
	dq, err := diskqueue.Open(filepath.Join(q.Dir, name), q.MaxBytes)
	if err != nil {
		return nil, fmt.Errorf("open the persistent queue (MEMLOCK_EXPORTER_QUEUE_DIR): %w", err)
	}
	return dq, nil
}

// newSender returns what delivers d's requests of signal sig. An OTLP
// client holds each request until the collector takes it, telling
// retrying of each failed attempt; d's batching is set to match.
func newSender(sig otlpsend.Signal, d *Destination, console io.Writer, retrying func(error, time.Duration)) (sender, error) {
	switch {
	case d.send != nil:
		return d.send, nil
	case d.Kind == ToConsole:
		return &consoleSender{sig: sig, w: console}, nil
	}
	cfg := d.OTLP
	cfg.RetryMaxElapsed, cfg.OnRetry = otlpsend.RetryForever, retrying
	d.Batch.holdUntilDelivered = true
	return otlpsend.New(sig, cfg)
}
