package exporter

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// TestProcessCache: a process's calls share one resource, the one encoding
// its identity afresh gives; whatever the identity is made of changes, the
// resource follows.
func TestProcessCache(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(ev *bpf.Event)
		same   bool // the same resource as before the change
	}{
		{"nothing", func(ev *bpf.Event) {}, true},
		{"another thread", func(ev *bpf.Event) { ev.TID, ev.Comm = 4250, "worker" }, true},
		{"credentials", func(ev *bpf.Event) { ev.EUID = 0 }, true},
		{"executable name", func(ev *bpf.Event) { ev.ExeName = "b" }, false},
		{"pid reused", func(ev *bpf.Event) { ev.StartNs++ }, false},
		{"another pid", func(ev *bpf.Event) { ev.PID++ }, false},
		{"identity lost", func(ev *bpf.Event) { ev.Process = nil }, false},
		{"new identity (an exec)", func(ev *bpf.Event) {
			p := *ev.Process
			p.ExePath = "/usr/bin/b"
			ev.Process = &p
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c processCache
			ev := sampleEvent()
			ev.Process = containerProcess()
			first := c.get(&ev)
			if string(first.attrs) != string(appendProcessAttrs(nil, ev.PID, ev.ExeName, ev.Process)) {
				t.Fatal("the first resource is not the process's identity")
			}
			tc.change(&ev)
			got := c.get(&ev)
			if (got == first) != tc.same {
				t.Errorf("same resource: %v, want %v", got == first, tc.same)
			}
			if want := appendProcessAttrs(nil, ev.PID, ev.ExeName, ev.Process); string(got.attrs) != string(want) {
				t.Error("the resource is not the process's identity")
			}
		})
	}
}

// TestProcessCacheIsBounded: a full cache starts afresh and still answers
// right.
func TestProcessCacheIsBounded(t *testing.T) {
	var c processCache
	ev := sampleEvent()
	for pid := range uint32(3 * maxProcessCache) {
		ev.PID = pid
		if got, want := c.get(&ev).attrs, appendProcessAttrs(nil, ev.PID, ev.ExeName, nil); string(got) != string(want) {
			t.Fatalf("pid %d: wrong attributes", pid)
		}
	}
	if len(c.m) > maxProcessCache {
		t.Errorf("%d processes cached, bound %d", len(c.m), maxProcessCache)
	}
}

// TestGroupedByProcess: the records and spans of one batch are sent under
// one resource per process, in the order each process first called, each
// process's own in the order of its calls; every resource holds the host's
// attributes, except those that would misname the process (a container.id
// of the exporter's own): the metrics keep them.
func TestGroupedByProcess(t *testing.T) {
	rig := newRig(t, on(Options{Resource: []attribute.KeyValue{
		semconv.ContainerIDKey.String("the-exporters-own"),
		attribute.String("k8s.node.name", "node-1"),
	}}))
	pids := []uint32{10, 20, 10, 30, 20, 10}
	for i, pid := range pids {
		ev := sampleEvent()
		ev.PID, ev.TID, ev.ExeName = pid, pid, fmt.Sprint("p", pid)
		ev.Addr = uint64(i+1) << 12
		rig.exp.Handle(&ev)
	}
	rig.flush()
	logReqs, traceReqs := rig.logs.logRequests(t), rig.spans.traceRequests(t)
	if len(logReqs) != 1 || len(traceReqs) != 1 {
		t.Fatalf("%d log and %d trace requests, want 1 each", len(logReqs), len(traceReqs))
	}
	type group struct {
		res   attrs
		addrs []int64
	}
	var logs, spans []group
	for _, rl := range logReqs[0].GetResourceLogs() {
		g := group{res: attrsOf(t, rl.GetResource().GetAttributes())}
		for _, sl := range rl.GetScopeLogs() {
			for _, r := range sl.GetLogRecords() {
				g.addrs = append(g.addrs, attrsOf(t, r.GetAttributes())[semconv.AddrKey].AsInt64())
			}
		}
		logs = append(logs, g)
	}
	for _, rs := range traceReqs[0].GetResourceSpans() {
		g := group{res: attrsOf(t, rs.GetResource().GetAttributes())}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				g.addrs = append(g.addrs, attrsOf(t, s.GetAttributes())[semconv.AddrKey].AsInt64())
			}
		}
		spans = append(spans, g)
	}
	want := []struct {
		pid   int64
		addrs []int64
	}{{10, []int64{1 << 12, 3 << 12, 6 << 12}}, {20, []int64{2 << 12, 5 << 12}}, {30, []int64{4 << 12}}}
	for signal, groups := range map[string][]group{"logs": logs, "spans": spans} {
		if len(groups) != len(want) {
			t.Fatalf("%s: %d resources, want %d", signal, len(groups), len(want))
		}
		for i, w := range want {
			g := groups[i]
			if pid := g.res[semconv.ProcessPIDKey].AsInt64(); pid != w.pid {
				t.Errorf("%s: resource %d is pid %d's, want %d's", signal, i, pid, w.pid)
			}
			if name := g.res[semconv.ProcessExecutableNameKey].AsString(); name != fmt.Sprint("p", w.pid) {
				t.Errorf("%s: pid %d's resource names it %q", signal, w.pid, name)
			}
			if fmt.Sprint(g.addrs) != fmt.Sprint(w.addrs) {
				t.Errorf("%s: pid %d's items are the calls at %v, want %v", signal, w.pid, g.addrs, w.addrs)
			}
			if _, ok := g.res[semconv.ContainerIDKey]; ok {
				t.Errorf("%s: pid %d's resource carries the exporter's own container.id", signal, w.pid)
			}
			if g.res["k8s.node.name"].AsString() != "node-1" {
				t.Errorf("%s: pid %d's resource lacks the host's k8s.node.name", signal, w.pid)
			}
			checkOurResource(t, g.res, "")
		}
	}
	var rm metricdata.ResourceMetrics
	if err := rig.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if v, ok := rm.Resource.Set().Value(semconv.ContainerIDKey); !ok || v.AsString() != "the-exporters-own" {
		t.Errorf("the metrics' resource lost the exporter's own container.id (%v)", v)
	}
}

// TestRequestFraming: a batch of one process is framed where it lies, one
// of several is copied, and a head too long for the batch's room is copied
// too: all three give the same records under the same resources.
func TestRequestFraming(t *testing.T) {
	longArgs := []string{"postgres", strings.Repeat("-c shared_buffers=1GB ", 300)} // a head beyond batchHeadroom
	for _, tc := range []struct {
		name   string
		pids   []uint32
		args   []string
		copied bool
	}{
		{"one process, in place", []uint32{10, 10, 10}, nil, false},
		{"two processes, copied", []uint32{10, 20, 10}, nil, true},
		{"one process, head too long, copied", []uint32{10, 10}, longArgs, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rig := newRig(t, on(Options{}))
			procs := map[uint32]*bpf.Process{} // the reader shares one per process
			for i, pid := range tc.pids {
				if procs[pid] == nil {
					procs[pid] = &bpf.Process{PID: pid, ExePath: "/usr/bin/p", Args: tc.args}
				}
				ev := sampleEvent()
				ev.PID, ev.Addr, ev.Process = pid, uint64(i+1)<<12, procs[pid]
				rig.exp.Handle(&ev)
			}
			recs := rig.records(t)
			if len(recs) != len(tc.pids) {
				t.Fatalf("%d records, want %d", len(recs), len(tc.pids))
			}
			got := map[int64][]int64{}
			for _, r := range recs {
				res := attrsOf(t, r.resource.GetAttributes())
				pid := res[semconv.ProcessPIDKey].AsInt64()
				got[pid] = append(got[pid], attrsOf(t, r.record.GetAttributes())[semconv.AddrKey].AsInt64())
				if tc.args != nil && fmt.Sprint(res[semconv.ProcessCommandArgsKey].AsStringSlice()) != fmt.Sprint(tc.args) {
					t.Errorf("pid %d: the resource's arguments are not the process's", pid)
				}
				checkOurResource(t, res, "")
			}
			want := map[int64][]int64{}
			for i, pid := range tc.pids {
				want[int64(pid)] = append(want[int64(pid)], int64(i+1)<<12)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("records by pid %v, want %v", got, want)
			}
			if copied := len(rig.exp.sinks[0].(*logSink).stream.request) > 0; copied != tc.copied {
				t.Errorf("the records were copied: %v, want %v", copied, tc.copied)
			}
			if n := len(rig.spans.traceRequests(t)[0].GetResourceSpans()); n != len(want) {
				t.Errorf("the spans came under %d resources, want %d", n, len(want))
			}
		})
	}
}
