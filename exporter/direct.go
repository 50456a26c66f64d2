package exporter

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpsend"
	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpwire"
	"github.com/memlock-exporter/memlock-exporter/procfs"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// The direct pipeline: log records and spans encoded to OTLP protobuf by
// internal/otlpwire, straight from the attributes Handle builds, batched
// here and sent by internal/otlpsend. It replaces the OpenTelemetry Go
// SDK's log and trace pipelines, which cost about 7 µs per record and as
// much per span on a 2-vCPU machine (attribute copies into SDK records,
// then into protobuf structs, then the garbage of both), more than the
// whole budget of an event. Metrics stay on the SDK: they aggregate, so
// their cost per event is small.

// OTLPTarget is where and how a direct stream sends: the standard
// OTEL_EXPORTER_OTLP_* settings of one signal, resolved (otlpsend.Config).
type OTLPTarget = otlpsend.Config

// BatchOptions are a direct stream's batching settings (OTEL_BLRP_* for
// log records, OTEL_BSP_* for spans).
type BatchOptions struct {
	ScheduleDelay  time.Duration // the longest a record waits before it is sent
	ExportTimeout  time.Duration // bounds one export, retries included
	MaxQueueSize   int           // the most records waiting; beyond, whole batches are dropped and counted
	MaxExportBatch int           // records per export
	// MaxBatchBytes ends a batch early once its encoded items reach this
	// size, so that a request stays within what a collector accepts (the
	// OpenTelemetry Collector's gRPC receiver refuses messages over 4 MiB
	// by default; records with long command lines can be 16 KiB each).
	// 0 means DefaultMaxBatchBytes.
	MaxBatchBytes int
}

// DefaultMaxBatchBytes is BatchOptions.MaxBatchBytes when left zero: half
// the collector's default limit, leaving room for the request's headers.
const DefaultMaxBatchBytes = 2 << 20

// DirectStream configures the direct export of one signal.
type DirectStream struct {
	Target OTLPTarget
	Batch  BatchOptions
}

// DirectOptions select the direct pipeline per signal. A nil stream leaves
// that signal to the SDK (OTEL_LOGS_EXPORTER / OTEL_TRACES_EXPORTER decide
// whether and where it goes).
type DirectOptions struct {
	Logs  *DirectStream
	Spans *DirectStream
	// Sampler and SamplerRatio are OTEL_TRACES_SAMPLER(_ARG), for direct
	// spans: every span is a root, so the parentbased_ samplers are their
	// root samplers. Empty means parentbased_always_on.
	Sampler      string
	SamplerRatio float64
}

// sender sends one encoded export request: *otlpsend.Client, or a fake in
// tests. Send returns how many items the collector rejected in a partial
// success.
type sender interface {
	Send(ctx context.Context, body []byte) (int64, error)
	Close() error
}

// batch is encoded items (log_records or spans entries) waiting to be sent.
type batch struct {
	buf []byte
	n   int
}

// streamCounters are what a stream tells the diagnostics.
type streamCounters struct {
	failed    func(n int, err error) // an export of n items failed (or they were rejected)
	succeeded func()                 // an export delivered its items
	dropped   func(n int)            // n items were dropped: the queue was full
}

// stream batches the encoded items of one signal and sends each full batch,
// or what is there every ScheduleDelay, from its own goroutine. Appending
// never blocks on the network: when the queue is full, the batch is
// dropped and counted.
type stream struct {
	scope otlpwire.Scope
	// frame turns a batch's buffer into the export request, in place:
	// the items follow headroom bytes of room for the request's head, so
	// a batch of megabytes is never copied.
	frame    func(buf []byte, headroom int, sc *otlpwire.Scope) []byte
	headroom int
	send     sender
	opts     BatchOptions
	count    streamCounters

	mu     sync.Mutex // guards cur and closed
	cur    *batch
	closed bool

	queue  chan *batch // full batches for the sender
	free   chan *batch // spent batches, for reuse
	stop   chan struct{}
	done   chan struct{}
	ctx    context.Context // canceled when Shutdown runs out of time
	cancel context.CancelFunc
	// unsent is a batch the sender took from the queue after shutdown
	// began; shutdown sends it (or counts it) with the rest. Written by
	// run before it closes done.
	unsent *batch
}

// Defaults of BatchOptions fields left zero (the OpenTelemetry spec's
// batch log record processor defaults).
const (
	defaultScheduleDelay  = time.Second
	defaultExportTimeout  = 30 * time.Second
	defaultMaxQueueSize   = 2048
	defaultMaxExportBatch = 512
)

func newStream(sc otlpwire.Scope, frame func([]byte, int, *otlpwire.Scope) []byte, s sender, opts BatchOptions, count streamCounters) *stream {
	if opts.ScheduleDelay <= 0 {
		opts.ScheduleDelay = defaultScheduleDelay
	}
	if opts.ExportTimeout <= 0 {
		opts.ExportTimeout = defaultExportTimeout
	}
	if opts.MaxQueueSize <= 0 {
		opts.MaxQueueSize = defaultMaxQueueSize
	}
	if opts.MaxExportBatch <= 0 {
		opts.MaxExportBatch = min(defaultMaxExportBatch, opts.MaxQueueSize)
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = DefaultMaxBatchBytes
	}
	// The batch being filled counts towards the queue size.
	queued := max(1, opts.MaxQueueSize/opts.MaxExportBatch-1)
	ctx, cancel := context.WithCancel(context.Background())
	st := &stream{
		scope:    sc,
		frame:    frame,
		headroom: otlpwire.RequestHeadroom(&sc),
		send:     s,
		opts:     opts,
		count:    count,
		queue:    make(chan *batch, queued),
		free:     make(chan *batch, queued+2),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
	}
	go st.run()
	return st
}

// appendLog adds one log record.
func (s *stream) appendLog(r *otlpwire.LogRecord) {
	s.mu.Lock()
	if b := s.current(); b != nil {
		b.buf = otlpwire.AppendLogRecord(b.buf, r)
		s.added(b)
	}
	s.mu.Unlock()
}

// appendSpan adds one span.
func (s *stream) appendSpan(sp *otlpwire.Span) {
	s.mu.Lock()
	if b := s.current(); b != nil {
		b.buf = otlpwire.AppendSpan(b.buf, sp)
		s.added(b)
	}
	s.mu.Unlock()
}

// current returns the batch being filled, nil after Shutdown. s.mu is held.
func (s *stream) current() *batch {
	if s.closed {
		return nil
	}
	if s.cur == nil {
		s.cur = s.getBatch()
	}
	return s.cur
}

// added counts an item appended to b, the current batch, and hands b to
// the sender when it is full. s.mu is held.
func (s *stream) added(b *batch) {
	b.n++
	if b.n < s.opts.MaxExportBatch && len(b.buf)-s.headroom < s.opts.MaxBatchBytes {
		return
	}
	s.cur = nil
	select {
	case s.queue <- b:
	default:
		s.count.dropped(b.n)
		s.putBatch(b)
	}
}

func (s *stream) getBatch() *batch {
	select {
	case b := <-s.free:
		return b
	default:
		return &batch{buf: make([]byte, s.headroom)}
	}
}

func (s *stream) putBatch(b *batch) {
	b.buf, b.n = b.buf[:s.headroom], 0
	select {
	case s.free <- b:
	default:
	}
}

// take removes the batch being filled, if it holds anything.
func (s *stream) take() *batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.cur
	if b == nil || b.n == 0 {
		return nil
	}
	s.cur = nil
	return b
}

func (s *stream) run() {
	defer close(s.done)
	tick := time.NewTicker(s.opts.ScheduleDelay)
	defer tick.Stop()
	for {
		select {
		case b := <-s.queue:
			// When shutdown has begun, select picks among ready cases at
			// random; leave the rest to shutdown, which knows its deadline.
			select {
			case <-s.stop:
				s.unsent = b
				return
			default:
			}
			s.export(s.ctx, b)
		case <-tick.C:
			if b := s.take(); b != nil {
				s.export(s.ctx, b)
			}
		case <-s.stop:
			return
		}
	}
}

// export sends b, bounded by ExportTimeout within ctx, counts the outcome
// and recycles b.
func (s *stream) export(ctx context.Context, b *batch) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ExportTimeout)
	defer cancel()
	rejected, err := s.send.Send(ctx, s.frame(b.buf, s.headroom, &s.scope))
	var refusal error
	var partial *otlpsend.PartialSuccessError
	if errors.As(err, &partial) {
		// Delivered, but the collector kept only part of it (or just
		// had something to say): only what it refused is lost.
		rejected, err, refusal = partial.Rejected, nil, partial
	}
	switch {
	case err != nil:
		s.count.failed(b.n, err)
	case rejected > 0:
		if refusal == nil {
			refusal = fmt.Errorf("the collector rejected %d of %d items", rejected, b.n)
		}
		s.count.failed(int(min(rejected, int64(b.n))), refusal)
	default:
		s.count.succeeded()
	}
	s.putBatch(b)
}

// shutdown stops taking items and sends what is pending, giving up when ctx
// is done: what is left then is counted as failed. It closes the sender.
func (s *stream) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	last := s.cur
	s.cur = nil
	s.mu.Unlock()

	close(s.stop)
	var err error
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancel() // cut the export in flight short
		<-s.done
		err = fmt.Errorf("shutdown deadline: %w", ctx.Err())
	}
	pending := make([]*batch, 0, len(s.queue)+2)
	if s.unsent != nil {
		pending = append(pending, s.unsent)
		s.unsent = nil
	}
	for len(s.queue) > 0 {
		pending = append(pending, <-s.queue)
	}
	if last != nil && last.n > 0 {
		pending = append(pending, last)
	}
	for _, b := range pending {
		if cerr := ctx.Err(); cerr != nil {
			err = fmt.Errorf("shutdown deadline: %w", cerr)
			s.count.failed(b.n, err)
			continue
		}
		s.export(ctx, b)
	}
	s.cancel()
	if cerr := s.send.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// Span flags as the SDK's OTLP exporter sets them on a local root span:
// the W3C trace flags, and "we know the parent is not remote".
const (
	traceFlagSampled    = 0x01
	spanFlagHasIsRemote = 0x100
	spanKindInternal    = 1
	statusCodeError     = 2
	severityInfo        = 9
	severityWarn        = 13
)

// spanIDs are one call's trace and span IDs and whether its span is sampled.
type spanIDs struct {
	trace   [16]byte
	span    [8]byte
	sampled bool
}

func (s *spanIDs) valid() bool { return s.trace != [16]byte{} }

// idGenerator makes random trace and span IDs. It is not safe for
// concurrent use (Handle holds e.mu).
type idGenerator struct{ rng *mrand.ChaCha8 }

func newIDGenerator() *idGenerator {
	var seed [32]byte
	_, _ = rand.Read(seed[:]) // never fails on Linux
	return &idGenerator{rng: mrand.NewChaCha8(seed)}
}

func (g *idGenerator) next() (ids spanIDs) {
	for ids.trace == [16]byte{} {
		binary.BigEndian.PutUint64(ids.trace[:8], g.rng.Uint64())
		binary.BigEndian.PutUint64(ids.trace[8:], g.rng.Uint64())
	}
	for ids.span == [8]byte{} {
		binary.BigEndian.PutUint64(ids.span[:], g.rng.Uint64())
	}
	return ids
}

// sampler decides on a root span from its trace ID.
type sampler func(traceID [16]byte) bool

// newSampler returns the OTEL_TRACES_SAMPLER name's decision for root spans,
// the same as the SDK's: traceidratio compares the trace ID's low 63 bits
// with ratio·2⁶³.
func newSampler(name string, ratio float64) (sampler, error) {
	switch name {
	case "", "always_on", "parentbased_always_on":
		return func([16]byte) bool { return true }, nil
	case "always_off", "parentbased_always_off":
		return func([16]byte) bool { return false }, nil
	case "traceidratio", "parentbased_traceidratio":
		if ratio >= 1 {
			return func([16]byte) bool { return true }, nil
		}
		bound := uint64(max(ratio, 0) * (1 << 63))
		return func(id [16]byte) bool { return binary.BigEndian.Uint64(id[8:])>>1 < bound }, nil
	}
	return nil, fmt.Errorf("unknown sampler %q (want always_on, always_off, traceidratio or their parentbased_ forms)", name)
}

// direct is the direct pipeline of an Exporter: either stream may be nil.
type direct struct {
	logs, spans *stream
	threads     threadCache
	ids         *idGenerator
	sample      sampler
	span        otlpwire.Span      // reused: Handle holds e.mu
	rec         otlpwire.LogRecord // reused: Handle holds e.mu
}

// shutdown flushes and closes both streams, concurrently.
func (d *direct) shutdown(ctx context.Context) error {
	var fns []func(context.Context) error
	for _, s := range []*stream{d.logs, d.spans} {
		if s != nil {
			fns = append(fns, s.shutdown)
		}
	}
	return errors.Join(runConcurrently(ctx, fns)...)
}

func (s *spanIDs) spanContext() trace.SpanContext {
	var flags trace.TraceFlags
	if s.sampled {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: s.trace, SpanID: s.span, TraceFlags: flags})
}

func spanIDsOf(sc trace.SpanContext) spanIDs {
	return spanIDs{trace: sc.TraceID(), span: sc.SpanID(), sampled: sc.IsSampled()}
}

// sdkLogs reports whether log records go through the SDK's logger.
func (e *Exporter) sdkLogs() bool {
	return e.logsOn && (e.direct == nil || e.direct.logs == nil)
}

// encodedAttrs are a call's attributes already encoded, for the direct
// pipeline: the call's own, as log record attributes, and the thread's for
// each signal. All nil when the attributes come as KeyValues instead.
type encodedAttrs struct {
	call                  []byte
	threadLog, threadSpan []byte
}

// directSpan makes the IDs of one call's span and, if the sampler keeps it,
// appends the span: a root named after the syscall, of kind internal, from
// the call's entry to its exit, with attrs (or enc) and, on failure, an
// error status described by errName, as the SDK would make it. e.mu is
// held.
func (e *Exporter) directSpan(ev *bpf.Event, attrs []attribute.KeyValue, enc *encodedAttrs, errName string) spanIDs {
	d := e.direct
	ids := d.ids.next()
	ids.sampled = d.sample(ids.trace)
	if !ids.sampled {
		return ids
	}
	sp := &d.span
	*sp = otlpwire.Span{
		TraceID:               ids.trace,
		SpanID:                ids.span,
		Flags:                 traceFlagSampled | spanFlagHasIsRemote,
		Name:                  syscalls[ev.Syscall].name,
		Kind:                  spanKindInternal,
		Start:                 ev.Time.UnixNano(),
		End:                   ev.Time.Add(ev.Duration).UnixNano(),
		Attributes:            attrs,
		MoreEncodedAttributes: enc.threadSpan,
	}
	if enc.call != nil {
		// The call's attributes, encoded once for the log record and
		// rekeyed here, which costs a copy.
		e.rb.spanAttrs = otlpwire.SpanAttributes.Rekey(e.rb.spanAttrs[:0], enc.call)
		sp.EncodedAttributes = e.rb.spanAttrs
	}
	if ev.Ret < 0 {
		sp.StatusCode, sp.StatusMessage = statusCodeError, errName
	}
	d.spans.appendSpan(sp)
	return ids
}

// directLog appends the log record of one call: what recordBuilder.record
// makes for the SDK, plus the IDs of the call's span when there is one.
// e.mu is held.
func (e *Exporter) directLog(ev *bpf.Event, attrs []attribute.KeyValue, enc *encodedAttrs, observed time.Time, ids *spanIDs) {
	d := e.direct
	e.rb.body = ev.AppendCall(e.rb.body[:0])
	r := &d.rec
	*r = otlpwire.LogRecord{
		Time:         ev.Time.UnixNano(),
		ObservedTime: observed.UnixNano(),
		Severity:     severityInfo,
		EventName:    syscalls[ev.Syscall].eventName,
		// The record is encoded before the buffer is reused: no copy.
		Body:                  unsafe.String(unsafe.SliceData(e.rb.body), len(e.rb.body)),
		Attributes:            attrs,
		EncodedAttributes:     enc.call,
		MoreEncodedAttributes: enc.threadLog,
	}
	if ev.Ret < 0 {
		r.Severity = severityWarn
	}
	if ids.valid() {
		r.TraceID, r.SpanID = ids.trace, ids.span
		if ids.sampled {
			r.TraceFlags = traceFlagSampled
		}
	}
	d.logs.appendLog(r)
}

// newDirect builds the direct streams opts asks for, sharing res and the
// scope. It returns nil when there are none.
func newDirect(opts *DirectOptions, res *resource.Resource, serviceVersion string, diag *diagnostics) (*direct, error) {
	if opts == nil || (opts.Logs == nil && opts.Spans == nil) {
		return nil, nil
	}
	sample, err := newSampler(opts.Sampler, opts.SamplerRatio)
	if err != nil {
		return nil, err
	}
	sc := otlpwire.Scope{
		Name:      semconv.ScopeName,
		Version:   serviceVersion,
		SchemaURL: semconv.SchemaURL,
	}
	if res != nil {
		sc.Resource, sc.ResourceSchemaURL = res.Attributes(), res.SchemaURL()
	}
	d := &direct{ids: newIDGenerator(), sample: sample}
	if s := opts.Logs; s != nil {
		c, err := otlpsend.New(otlpsend.Logs, s.Target)
		if err != nil {
			return nil, fmt.Errorf("create log record client: %w", err)
		}
		d.logs = newStream(sc, otlpwire.FrameLogsRequest, c, s.Batch, streamCounters{
			failed:    diag.exportFailed,
			succeeded: diag.exportSucceeded,
			dropped:   func(n int) { diag.queueDropped(uint64(n)) },
		})
	}
	if s := opts.Spans; s != nil {
		c, err := otlpsend.New(otlpsend.Traces, s.Target)
		if err != nil {
			if d.logs != nil {
				_ = d.logs.shutdown(context.Background())
			}
			return nil, fmt.Errorf("create span client: %w", err)
		}
		d.spans = newStream(sc, otlpwire.FrameTracesRequest, c, s.Batch, streamCounters{
			failed:    diag.spanExportFailed,
			succeeded: diag.spanExportSucceeded,
			dropped:   func(n int) { diag.spansUndelivered.Add(uint64(n)) },
		})
	}
	return d, nil
}

// The attributes of the calling thread and its process (pid through the
// procfs context, about half of a record's bytes) repeat from one call of
// a thread to the next; threadCache keeps them encoded, per thread, for
// log records and for spans, and encodes them again only when one of the
// values they are made of changes.
type threadCache struct {
	m       map[uint32]*threadEncoding
	scratch []attribute.KeyValue
}

// maxThreadCache bounds threadCache; a full cache is emptied and refilled.
const maxThreadCache = 4096

type threadEncoding struct {
	key       threadKey
	log, span []byte // LogRecord.attributes and Span.attributes fields
}

// threadKey is everything appendThreadAttributes reads.
type threadKey struct {
	pid, ppid, tid, euid, uid, egid, gid uint32
	cgroupID                             uint64
	comm, exe                            string
	info                                 bool
	exePath, cgroupPath, container, pod  string
	args                                 *string // the argument vector's backing array, shared by the procfs cache
	nargs                                int
	vpid                                 uint32
	inPIDNamespace                       bool
}

func newThreadKey(ev *bpf.Event, info *procfs.Info) threadKey {
	k := threadKey{
		pid: ev.PID, ppid: ev.PPID, tid: ev.TID,
		euid: ev.EUID, uid: ev.UID, egid: ev.EGID, gid: ev.GID,
		cgroupID: ev.CgroupID, comm: ev.Comm, exe: ev.ExeName,
	}
	if info != nil {
		k.info = true
		k.exePath, k.cgroupPath, k.container, k.pod = info.ExePath, info.CgroupPath, info.ContainerID, info.PodUID
		k.args, k.nargs = unsafe.SliceData(info.CommandArgs), len(info.CommandArgs)
		k.vpid, k.inPIDNamespace = info.VPID, info.InPIDNamespace
	}
	return k
}

// get returns the encoded thread attributes of ev's thread, encoding them
// (with b) for log records if logs and for spans if spans. e.mu is held.
func (c *threadCache) get(b *recordBuilder, ev *bpf.Event, info *procfs.Info, logs, spans bool) *threadEncoding {
	k := newThreadKey(ev, info)
	te := c.m[ev.TID]
	if te != nil && te.key == k {
		return te
	}
	if te == nil {
		if c.m == nil || len(c.m) >= maxThreadCache {
			c.m = make(map[uint32]*threadEncoding)
		}
		te = &threadEncoding{}
		c.m[ev.TID] = te
	}
	attrs := b.appendThreadAttributes(c.scratch[:0], ev, info)
	c.scratch = attrs[:0]
	te.key, te.log, te.span = k, te.log[:0], te.span[:0]
	if logs {
		te.log = otlpwire.LogAttributes.AppendAll(te.log, attrs)
	}
	if spans {
		te.span = otlpwire.SpanAttributes.AppendAll(te.span, attrs)
	}
	return te
}

// directOnly reports whether every log record and span goes through the
// direct pipeline (or nowhere): then no SDK call needs the attributes whole.
func (e *Exporter) directOnly() bool {
	d := e.direct
	if d == nil {
		return false
	}
	sdkSpans := e.tracer != nil
	return !sdkSpans && !e.sdkLogs()
}
