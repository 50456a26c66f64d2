package exporter

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/memlock-exporter/memlock-exporter/bpf"
)

// discardSender stands in for the OTLP client: it drops every request
// (after it was encoded), so that the benchmark measures our side only.
// It counts the bytes it was given.
type discardSender struct{ bytes *atomic.Int64 }

func (d discardSender) Send(_ context.Context, body []byte) (int64, error) {
	d.bytes.Add(int64(len(body)))
	return 0, nil
}
func (discardSender) Close() error { return nil }

// BenchmarkHandle measures Handle from the event to encoded export
// requests: the call metrics, the encoding of the log record and of the
// span into their batches, and the framing of each request, which a
// discarding sender then drops; metrics go to a manual reader (the SDK's
// meter provider costs nothing per call: we aggregate).
func BenchmarkHandle(b *testing.B) {
	for _, bc := range []struct {
		name        string
		logs, spans bool
		process     *bpf.Process
	}{
		{"logs", true, false, nil},
		{"logs+spans", true, true, nil},
		{"logs+spans+process", true, true, containerProcess()},
		{"logs+spans+64-processes", true, true, nil},
		{"spans", false, true, nil},
		{"metrics-only", false, false, nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var sent atomic.Int64
			opts := Options{}
			// The daemon's default batching (config).
			batch := BatchOptions{MaxQueueSize: 8192, MaxExportBatch: 2048}
			if bc.logs {
				opts.Logs = Destination{Kind: ToOTLP, send: discardSender{&sent}, Batch: batch}
			}
			if bc.spans {
				opts.Spans = Destination{Kind: ToOTLP, send: discardSender{&sent}, Batch: batch}
			}
			rig := newRig(b, opts)
			ev := sampleEvent()
			ev.Process = bc.process
			b.ReportAllocs()
			// Calls of 64 processes in turn: 64 resources in a batch.
			procs := uint32(1)
			if bc.name == "logs+spans+64-processes" {
				procs = 64
			}
			i := uint32(0)
			for b.Loop() {
				ev.PID = 1000 + i%procs
				ev.TID = ev.PID
				i++
				rig.exp.Handle(&ev)
			}
			b.StopTimer()
			_ = rig.exp.Shutdown(context.Background()) // sends the last batch
			b.ReportMetric(float64(sent.Load())/float64(b.N), "B/event")
			if n := rig.exp.ExportFailures() + rig.exp.SpanExportFailures(); n > 0 {
				b.Logf("%d items dropped from a full queue", n)
			}
		})
	}
	b.Run("disabled", func(b *testing.B) {
		e, err := New(context.Background(), Options{Disabled: true})
		if err != nil {
			b.Fatal(err)
		}
		ev := sampleEvent()
		b.ReportAllocs()
		for b.Loop() {
			e.Handle(&ev)
		}
	})
}

// BenchmarkEncode measures the encoding of one call alone.
func BenchmarkEncode(b *testing.B) {
	for _, bc := range []struct {
		name    string
		process *bpf.Process
		spans   bool
	}{
		{"call", nil, false},
		{"call+span-ids", nil, true},
		{"call+process", containerProcess(), false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var enc encoder
			if bc.spans {
				enc.ids = newIDSource(nil)
			}
			ev := sampleEvent()
			ev.Process = bc.process
			b.ReportAllocs()
			for b.Loop() {
				_ = enc.encode(&ev, "", observedAt)
			}
		})
	}
}
