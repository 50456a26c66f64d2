package exporter

import (
	"context"
	"fmt"
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
