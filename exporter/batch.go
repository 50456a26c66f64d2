package exporter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memlock-exporter/memlock-exporter/exporter/internal/diskqueue"
	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpsend"
	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpwire"
)

// BatchOptions are a signal's batching settings (OTEL_BLRP_* for log
// records, OTEL_BSP_* for spans). Zero fields take the OpenTelemetry
// specification's defaults.
type BatchOptions struct {
	ScheduleDelay time.Duration // the longest an item waits before it is sent
	// ExportTimeout bounds one export, retries included, for senders that
	// give up (tests); an OTLP client holds a batch until the collector
	// takes it (otlpsend.RetryForever), each attempt bounded by the OTLP
	// timeout, so that an outage costs nothing while the queue has room.
	ExportTimeout time.Duration
	// MaxQueueSize is the most items waiting, those of the batch being
	// filled and of the one being sent included; beyond, the newest items
	// are dropped and counted: the oldest are kept because they are the
	// start of an outage, which whoever looks at it later needs most.
	MaxQueueSize   int
	MaxExportBatch int // items per export
	// MaxBatchBytes ends a batch early once its encoded items reach this
	// size, so that a request stays within what a collector accepts (the
	// OpenTelemetry Collector's gRPC receiver refuses messages over 4 MiB
	// by default; records with long command lines can be 16 KiB each).
	// 0 means DefaultMaxBatchBytes.
	MaxBatchBytes int

	// holdUntilDelivered: the sender retries a batch until it is
	// delivered, refused for good, or shutdown cuts it short, so no
	// ExportTimeout applies (set for OTLP clients made with
	// otlpsend.RetryForever).
	holdUntilDelivered bool
	// disk, if set, is the persistent queue the batches go through
	// (spool.go); the stream closes it.
	disk *diskqueue.Queue
}

// DefaultMaxBatchBytes is BatchOptions.MaxBatchBytes when left zero: half
// the collector's default limit, leaving room for the request's headers.
const DefaultMaxBatchBytes = 2 << 20

// Defaults of BatchOptions fields left zero (the OpenTelemetry
// specification's batch log record processor).
const (
	defaultScheduleDelay  = time.Second
	defaultExportTimeout  = 30 * time.Second
	defaultMaxQueueSize   = 2048
	defaultMaxExportBatch = 512
)

// sender delivers one encoded export request: an OTLP client, or the
// console. Send returns how many items the collector rejected in a partial
// success; it must not retain body.
type sender interface {
	Send(ctx context.Context, body []byte) (rejected int64, err error)
	Close() error
}

// batch is encoded items (log_records or spans entries) waiting to be sent,
// grouped by the process they are of: each group is sent under its
// process's resource. The items lie in one buffer in the order they came,
// after batchHeadroom bytes of room, and each group chains its own. A
// batch of one process is framed as a request where it lies (its head
// written into the room); others are copied into the request group by
// group. A spent batch keeps its buffers for the next.
type batch struct {
	items  []byte                   // batchHeadroom bytes of room, then the items
	refs   []itemRef                // one per item
	groups []group                  // in the order of their first item
	index  map[*processResource]int // into groups
	last   int                      // the group of the newest item: a process's items tend to come in runs
}

// itemRef is where one item lies in batch.items, and the next item of its
// group (-1: none).
type itemRef struct {
	start, end int
	next       int
}

type group struct {
	resource    *processResource
	first, last int // into batch.refs
	size        int // bytes of its items
}

// batchHeadroom is the room before a batch's items for the head of a
// request of one group: the host's and the process's resource attributes
// (a few hundred bytes; a long command line or many cgroup v1 hierarchies
// make more). A longer head is copied like a request of several groups.
const batchHeadroom = 4096

// n is the number of items.
func (b *batch) n() int { return len(b.refs) }

// size is the number of bytes of the items.
func (b *batch) size() int { return len(b.items) - batchHeadroom }

// streamCounters are what a stream tells the diagnostics.
type streamCounters struct {
	failed    func(n int, err error) // an export of n items failed (or they were rejected)
	succeeded func()                 // an export delivered its items
	dropped   func(n int)            // n items were dropped: the queue was full
	// kept: at shutdown, n items were left in the persistent queue at
	// path, for the next start. May be nil.
	kept func(n int64, path string)
}

// stream batches the encoded items of one signal and sends each full batch,
// or what is there every ScheduleDelay, from its own goroutine. Adding never
// blocks on the network: when the queue is full, the newest items are
// dropped and counted.
type stream struct {
	scope otlpwire.Scope
	// host is scope's resource, encoded once: every group's resource
	// starts with it.
	host []byte
	// groupHead appends the head of one group of a request
	// (otlpwire.AppendLogsGroupHead or AppendTracesGroupHead).
	groupHead func(dst []byte, sc *otlpwire.Scope, itemsLen int, resource ...[]byte) []byte
	send      sender
	opts      BatchOptions
	count     streamCounters
	// request and head are the request being sent (of several groups) and
	// the head of a request of one group, reused from export to export:
	// the sender does not keep them. Only the goroutine that exports uses
	// them.
	request, head []byte

	mu     sync.Mutex // guards cur and closed
	cur    *batch
	closed bool
	// held counts the items not yet sent, spooled or given up: in cur, in
	// queue and in flight. It is what MaxQueueSize bounds, item by item,
	// so that a small batch in flight (taken by the ticker before an
	// outage) leaves its room to others, and a full one costs no more
	// memory than the queue's size says. Only add raises it, under mu.
	held atomic.Int64

	queue  chan *batch // full batches for the sender
	free   chan *batch // spent batches, for reuse
	stop   chan struct{}
	done   chan struct{}
	ctx    context.Context // canceled when shutdown runs out of time
	cancel context.CancelFunc
	// unsent is a batch the sender took from the queue after shutdown
	// began; shutdown sends it (or counts it) with the rest. Written by
	// run before it closes done.
	unsent *batch

	// With a persistent queue (spool.go): disk is it, sent is closed when
	// its sender has returned, finishing when shutdown has put everything
	// on the disk.
	disk      *diskqueue.Queue
	sent      chan struct{}
	finishing chan struct{}
}

// newStream starts the stream of one signal, whose requests carry sc.
// groupHead writes the head of one resource's items in a request.
func newStream(sc otlpwire.Scope, groupHead func([]byte, *otlpwire.Scope, int, ...[]byte) []byte, s sender, opts BatchOptions, count streamCounters) *stream {
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
	// Enough slots for a queue of full batches; held bounds the items.
	queued := max(1, opts.MaxQueueSize/opts.MaxExportBatch)
	ctx, cancel := context.WithCancel(context.Background())
	st := &stream{
		scope:     sc,
		host:      otlpwire.AppendResourceAttrs(nil, sc.Resource),
		groupHead: groupHead,
		send:      s,
		opts:      opts,
		count:     count,
		queue:     make(chan *batch, queued),
		free:      make(chan *batch, queued+2),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		ctx:       ctx,
		cancel:    cancel,
	}
	if opts.disk != nil {
		st.disk, st.sent, st.finishing = opts.disk, make(chan struct{}), make(chan struct{})
		go st.runSpooled()
		return st
	}
	go st.run()
	return st
}

// add appends one item of the process whose resource is res (nil: of no
// process), which appendItem encodes onto the group's buffer and returns.
// After shutdown it does nothing.
func (s *stream) add(res *processResource, appendItem func(dst []byte) []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.held.Load() >= int64(s.opts.MaxQueueSize) {
		s.count.dropped(1)
		return
	}
	s.held.Add(1)
	b := s.cur
	if b == nil {
		b = s.getBatch()
		s.cur = b
	}
	start := len(b.items)
	b.items = appendItem(b.items)
	b.addRef(res, start, len(b.items))
	if b.n() < s.opts.MaxExportBatch && b.size() < s.opts.MaxBatchBytes {
		return
	}
	s.cur = nil
	select {
	case s.queue <- b:
	default:
		// Every slot taken by batches ended early by MaxBatchBytes.
		s.count.dropped(b.n())
		s.putBatch(b)
	}
}

func (s *stream) getBatch() *batch {
	select {
	case b := <-s.free:
		return b
	default:
		return &batch{items: make([]byte, batchHeadroom), index: make(map[*processResource]int)}
	}
}

// addRef notes the item at items[start:end], of res's process, at the end
// of its group's chain.
func (b *batch) addRef(res *processResource, start, end int) {
	i := len(b.refs)
	b.refs = append(b.refs, itemRef{start: start, end: end, next: -1})
	g := b.groupOf(res)
	if g.last >= 0 {
		b.refs[g.last].next = i
	} else {
		g.first = i
	}
	g.last = i
	g.size += end - start
}

// groupOf returns res's group, new (empty) if need be.
func (b *batch) groupOf(res *processResource) *group {
	if len(b.groups) > 0 && b.groups[b.last].resource == res {
		return &b.groups[b.last]
	}
	gi, ok := b.index[res]
	if !ok {
		gi = len(b.groups)
		b.groups = append(b.groups, group{resource: res, first: -1, last: -1})
		b.index[res] = gi
	}
	b.last = gi
	return &b.groups[gi]
}

// putBatch is done with b: its items were sent, spooled or given up. It
// leaves their room in the queue to others and keeps b for reuse.
func (s *stream) putBatch(b *batch) {
	s.held.Add(-int64(b.n()))
	clear(b.groups) // let the processes go
	b.items, b.refs, b.groups, b.last = b.items[:batchHeadroom], b.refs[:0], b.groups[:0], 0
	clear(b.index)
	select {
	case s.free <- b:
	default:
	}
}

// request returns the export request of b's items: one group per
// process, under its resource. The items of one process are framed where
// they lie, nothing copied: the usual case, and copying them cost the
// encoder a third more per event (BenchmarkHandle). Those of several are
// copied into s.request. Either way b cannot take items any more.
func (b *batch) request(s *stream) []byte {
	if len(b.groups) == 1 {
		g := &b.groups[0]
		s.head = s.groupHead(s.head[:0], &s.scope, g.size, s.host, g.resource.attributes())
		if len(s.head) <= batchHeadroom {
			start := batchHeadroom - len(s.head)
			copy(b.items[start:], s.head)
			b.items = otlpwire.AppendGroupTail(b.items, &s.scope)
			return b.items[start:]
		}
	}
	dst := slices.Grow(s.request[:0], b.size()+len(b.groups)*(len(s.host)+256))
	for i := range b.groups {
		g := &b.groups[i]
		dst = s.groupHead(dst, &s.scope, g.size, s.host, g.resource.attributes())
		for r := g.first; r >= 0; r = b.refs[r].next {
			dst = append(dst, b.items[b.refs[r].start:b.refs[r].end]...)
		}
		dst = otlpwire.AppendGroupTail(dst, &s.scope)
	}
	s.request = dst
	return dst
}

// take removes the batch being filled, if it holds anything.
func (s *stream) take() *batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.cur
	if b == nil || b.n() == 0 {
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
			_ = s.export(s.ctx, b) // counted: the diagnostics report it
		case <-tick.C:
			if b := s.take(); b != nil {
				_ = s.export(s.ctx, b)
			}
		case <-s.stop:
			return
		}
	}
}

// export sends b, bounded by ExportTimeout within ctx, counts the outcome
// and recycles b. It returns why items were lost, if they were.
func (s *stream) export(ctx context.Context, b *batch) error {
	if !s.opts.holdUntilDelivered {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.ExportTimeout)
		defer cancel()
	}
	rejected, err := s.send.Send(ctx, b.request(s))
	err = s.account(b.n(), rejected, err)
	s.putBatch(b)
	return err
}

// account counts the outcome of sending a request of n items, and returns
// why items were lost, if they were.
func (s *stream) account(n int, rejected int64, err error) error {
	var refusal error
	var partial *otlpsend.PartialSuccessError
	if errors.As(err, &partial) {
		// Delivered, but the collector kept only part of it (or just
		// had something to say): only what it refused is lost.
		rejected, err, refusal = partial.Rejected, nil, partial
	}
	switch {
	case err != nil:
		s.count.failed(n, err)
	case rejected > 0:
		if refusal == nil {
			refusal = fmt.Errorf("the collector rejected %d of %d items", rejected, n)
		}
		s.count.failed(int(min(rejected, int64(n))), refusal)
		err = refusal
	default:
		s.count.succeeded()
	}
	return err
}

// shutdown stops taking items and sends what is pending, giving up when ctx
// is done: what is left then is counted as failed. It returns an error when
// anything pending was lost, and closes the sender.
func (s *stream) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	last := s.cur
	s.cur = nil
	s.mu.Unlock()

	if s.disk != nil {
		return s.shutdownSpooled(ctx, last)
	}
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
	if last != nil && last.n() > 0 {
		pending = append(pending, last)
	}
	for _, b := range pending {
		if cerr := ctx.Err(); cerr != nil {
			err = fmt.Errorf("shutdown deadline: %w", cerr)
			s.count.failed(b.n(), err)
			continue
		}
		if xerr := s.export(ctx, b); xerr != nil && err == nil {
			err = fmt.Errorf("final export: %w", xerr)
		}
	}
	s.cancel()
	if cerr := s.send.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}
