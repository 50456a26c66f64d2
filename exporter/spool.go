package exporter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/memlock-exporter/memlock-exporter/exporter/internal/diskqueue"
)

// With a persistent queue (MEMLOCK_EXPORTER_QUEUE_DIR), a stream's full
// batches are framed as requests and written to a file of their own
// (internal/diskqueue) by the stream's goroutine, and a second goroutine
// sends them from there, oldest first, removing each once the collector
// took it or refused it for good. What is on disk when the daemon stops,
// or is killed, is sent at its next start. The memory queue in front stays
// as it is, so adding an item never waits on the disk.

// runSpooled is run for a stream with a persistent queue: it writes each
// batch to the disk, and sends from there on its own goroutine.
func (s *stream) runSpooled() {
	defer close(s.done)
	go func() {
		defer close(s.sent)
		s.sendSpooled()
	}()
	tick := time.NewTicker(s.opts.ScheduleDelay)
	defer tick.Stop()
	for {
		select {
		case b := <-s.queue:
			s.spool(b)
		case <-tick.C:
			if b := s.take(); b != nil {
				s.spool(b)
			}
		case <-s.stop:
			return
		}
	}
}

// spool writes b to the disk as one request and recycles it. A full
// queue drops it, counted as the memory queue counts its drops.
func (s *stream) spool(b *batch) {
	if err := s.disk.Push(b.request(s), b.n()); err != nil {
		if errors.Is(err, diskqueue.ErrFull) {
			s.count.dropped(b.n())
		} else {
			s.count.failed(b.n(), fmt.Errorf("write to the persistent queue: %w", err))
		}
	}
	s.putBatch(b)
}

// sendSpooled sends the requests on the disk, oldest first, until the
// stream is finishing and the disk is empty, or its context ends: what is
// left stays on the disk for the next start.
func (s *stream) sendSpooled() {
	for s.ctx.Err() == nil {
		id, body, n, ok, err := s.disk.Peek()
		if err != nil {
			// The file cannot be read: say so, and try again later
			// rather than spin.
			s.count.failed(0, fmt.Errorf("read the persistent queue: %w", err))
			select {
			case <-time.After(time.Second):
			case <-s.ctx.Done():
			}
			continue
		}
		if !ok {
			select {
			case <-s.disk.Ready():
			case <-s.finishing:
				// Pushes have ended: one last look, then stop.
				if s.disk.Requests() == 0 {
					return
				}
			case <-s.ctx.Done():
			}
			continue
		}
		rejected, err := s.send.Send(s.ctx, body)
		if err != nil && s.ctx.Err() != nil {
			return // cut short by shutdown: kept for the next start
		}
		_ = s.account(n, rejected, err)
		if err := s.disk.Remove(id); err != nil {
			s.count.failed(0, fmt.Errorf("remove a sent request from the persistent queue: %w", err))
		}
	}
}

// shutdownSpooled stops a stream with a persistent queue: what is in
// memory goes to the disk, and sending goes on until the disk is empty or
// ctx ends; what is left then is kept on the disk, not lost.
func (s *stream) shutdownSpooled(ctx context.Context, last *batch) error {
	close(s.stop)
	<-s.done // the spooler; it does not wait on the network
	for len(s.queue) > 0 {
		s.spool(<-s.queue)
	}
	if last != nil && last.n() > 0 {
		s.spool(last)
	}
	close(s.finishing)
	var err error
	select {
	case <-s.sent:
	case <-ctx.Done():
		s.cancel() // cut the export in flight short
		<-s.sent
	}
	s.cancel()
	if left := s.disk.Len(); left > 0 && s.count.kept != nil {
		s.count.kept(left, s.disk.Path())
	}
	if cerr := s.disk.Close(); cerr != nil {
		err = fmt.Errorf("close the persistent queue: %w", cerr)
	}
	if cerr := s.send.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}
