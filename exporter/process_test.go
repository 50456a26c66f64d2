package exporter

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/procfs"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// fakeProcesses answers Get from a map, like a warm procfs.Cache; a pid not
// in the map is a process that already exited.
type fakeProcesses struct {
	mu    sync.Mutex
	infos map[uint32]procfs.Info
	asked []uint32
}

func (f *fakeProcesses) Get(pid uint32) (procfs.Info, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, pid)
	info, ok := f.infos[pid]
	return info, ok
}

const (
	testContainerID = "4f1e2d3c4b5a69788796a5b4c3d2e1f04f1e2d3c4b5a69788796a5b4c3d2e1f0"
	testPodUID      = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
	testCgroupPath  = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_5e6f_4a7b_8c9d_0e1f2a3b4c5d.slice/cri-containerd-" + testContainerID + ".scope"
)

// containerInfo is gpg-agent (sampleEvent's pid 4242) in a Kubernetes pod,
// pid 7 in its own PID namespace.
func containerInfo() procfs.Info {
	return procfs.Info{
		ExePath:        "/usr/bin/gpg-agent",
		CommandArgs:    []string{"gpg-agent", "--daemon"},
		CgroupPath:     testCgroupPath,
		ContainerID:    testContainerID,
		PodUID:         testPodUID,
		VPID:           7,
		InPIDNamespace: true,
	}
}

// mlock2Attrs are the kernel's attributes of sampleEvent, process included.
func mlock2Attrs() attrs {
	return process().with(attrs{
		semconv.SyscallKey:     attribute.StringValue("mlock2"),
		semconv.AddrKey:        attribute.Int64Value(0x7f3a1c000000),
		semconv.LenKey:         attribute.Int64Value(8192),
		semconv.PagesKey:       attribute.Int64Value(2),
		semconv.FlagsKey:       attribute.Int64Value(1),
		semconv.FlagNamesKey:   attribute.StringSliceValue([]string{"MLOCK_ONFAULT"}),
		semconv.ReturnValueKey: attribute.Int64Value(0),
		semconv.DurationKey:    attribute.Float64Value(4.2e-6),
		semconv.ProbeKey:       attribute.StringValue("tracepoint"),
	})
}

func TestProcessContext(t *testing.T) {
	needPageSize4K(t)
	tests := []struct {
		name  string
		info  *procfs.Info // nil: the process is gone
		attrs attrs
	}{
		{
			name: "container in a pod, with arguments",
			info: func() *procfs.Info { i := containerInfo(); return &i }(),
			attrs: mlock2Attrs().with(attrs{
				semconv.ProcessExecutablePathKey: attribute.StringValue("/usr/bin/gpg-agent"),
				semconv.ProcessCommandArgsKey:    attribute.StringSliceValue([]string{"gpg-agent", "--daemon"}),
				semconv.ProcessLinuxCgroupKey:    attribute.StringValue("0::" + testCgroupPath),
				semconv.ContainerIDKey:           attribute.StringValue(testContainerID),
				semconv.K8SPodUIDKey:             attribute.StringValue(testPodUID),
				semconv.ProcessVpidKey:           attribute.Int64Value(7),
			}),
		},
		{
			name: "host process, arguments off",
			info: &procfs.Info{
				ExePath:    "/usr/bin/gpg-agent",
				CgroupPath: "/user.slice/user-1000.slice/user@1000.service/app.slice/gpg-agent.service",
				VPID:       4242,
			},
			attrs: mlock2Attrs().with(attrs{
				semconv.ProcessExecutablePathKey: attribute.StringValue("/usr/bin/gpg-agent"),
				semconv.ProcessLinuxCgroupKey:    attribute.StringValue("0::/user.slice/user-1000.slice/user@1000.service/app.slice/gpg-agent.service"),
			}),
		},
		{
			name:  "fields procfs could not read are left out",
			info:  &procfs.Info{VPID: 4242},
			attrs: mlock2Attrs(),
		},
		{
			name:  "process exited before it was looked at",
			info:  nil,
			attrs: mlock2Attrs(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			procs := &fakeProcesses{infos: map[uint32]procfs.Info{}}
			if tc.info != nil {
				procs.infos[4242] = *tc.info
			}
			rig := newRig(t, Options{Processes: procs})
			ev := sampleEvent()
			rig.exp.Handle(&ev)

			if !slices.Equal(procs.asked, []uint32{4242}) {
				t.Errorf("Processes.Get called for %v, want [4242]", procs.asked)
			}
			recs := rig.logs.Records()
			if len(recs) != 1 {
				t.Fatalf("got %d records, want 1", len(recs))
			}
			for _, d := range diffAttrs(recordAttrs(&recs[0]), tc.attrs) {
				t.Errorf("record: %s", d)
			}
			spans := rig.spans.Ended()
			if len(spans) != 1 {
				t.Fatalf("got %d spans, want 1", len(spans))
			}
			for _, d := range diffAttrs(spanAttrs(spans[0]), tc.attrs) {
				t.Errorf("span: %s", d)
			}
		})
	}
}

// TestProcessContextMatchesSchema: every event may carry the process
// context, within the attribute budget.
func TestProcessContextMatchesSchema(t *testing.T) {
	events := map[string]semconv.EventDef{}
	for _, d := range semconv.Events {
		events[d.Name] = d
	}
	procs := &fakeProcesses{infos: map[uint32]procfs.Info{4242: containerInfo()}}
	rig := newRig(t, Options{Processes: procs})
	for _, tc := range recordCases {
		ev := sampleEvent()
		if tc.mod != nil {
			tc.mod(&ev)
		}
		// The most attributes one record can carry: a failure with
		// every optional view.
		ev.Ret, ev.KernelDuration, ev.LibcFunc, ev.CallerAddr = -12, 1, bpf.LibcMlock, 1
		rig.exp.Handle(&ev)
	}
	for i, r := range rig.logs.Records() {
		def := events[r.EventName()]
		if r.AttributesLen() > maxRecordAttributes {
			t.Errorf("record %d: %d attributes, budget %d", i, r.AttributesLen(), maxRecordAttributes)
		}
		got := recordAttrs(&r)
		for k := range got {
			if !slices.Contains(def.Attributes, k) {
				t.Errorf("%s carries %s, which its EventDef does not list", def.Name, k)
			}
		}
		for _, k := range []attribute.Key{semconv.ProcessExecutablePathKey, semconv.ProcessCommandArgsKey,
			semconv.ProcessLinuxCgroupKey, semconv.ContainerIDKey, semconv.K8SPodUIDKey, semconv.ProcessVpidKey} {
			if _, ok := got[k]; !ok {
				t.Errorf("%s lacks %s", def.Name, k)
			}
		}
	}
}

// TestProcessContextAllocations: with the process cached, the context costs
// the record builder no allocation (the memos hold the cgroup line and the
// arguments); Handle allocates at most once more, when the SDK's attribute
// storage for the longer record moves to a larger size.
func TestProcessContextAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	handleAllocs := func(opts Options) float64 {
		lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(discardProcessor{}), sdklog.WithAllowKeyDuplication())
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		e, err := NewWithProviders(lp, mp, nil, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Shutdown(context.Background())
		ev := sampleEvent()
		e.Handle(&ev) // warm the caches
		return testing.AllocsPerRun(200, func() { e.Handle(&ev) })
	}
	without := handleAllocs(Options{})
	with := handleAllocs(Options{Processes: &staticProcesses{info: containerInfo()}})
	if with > without+1 {
		t.Errorf("Handle allocates %.1f times per event with the process context, %.1f without", with, without)
	}

	var b recordBuilder
	info := containerInfo()
	ev := sampleEvent()
	b.build(&ev, &info, "", observedAt)
	if got := testing.AllocsPerRun(100, func() { b.build(&ev, &info, "", observedAt) }); got > 2 {
		t.Errorf("%.0f allocations per record with the process context, want at most 2", got)
	}
}

// staticProcesses answers every pid with one Info, without locking or
// allocating: a cache hit.
type staticProcesses struct{ info procfs.Info }

func (s *staticProcesses) Get(uint32) (procfs.Info, bool) { return s.info, true }

func TestProcessMemosAreBounded(t *testing.T) {
	var p processAttrs
	for i := range 3 * maxProcessMemo {
		info := procfs.Info{
			CgroupPath:  fmt.Sprintf("/system.slice/s%d.service", i),
			CommandArgs: []string{"prog", fmt.Sprint(i)},
		}
		a := p.append(nil, &info)
		if len(a) != 2 {
			t.Fatalf("%d attributes, want 2", len(a))
		}
		if got, want := a[1].Value.AsString(), "0::"+info.CgroupPath; got != want {
			t.Fatalf("cgroup = %q, want %q", got, want)
		}
		if got := a[0].Value.AsStringSlice(); !slices.Equal(got, info.CommandArgs) {
			t.Fatalf("args = %q, want %q", got, info.CommandArgs)
		}
	}
	if len(p.cgroups) > maxProcessMemo || len(p.args) > maxProcessMemo {
		t.Errorf("memos hold %d cgroups and %d argument vectors, bound %d", len(p.cgroups), len(p.args), maxProcessMemo)
	}
	// Same backing array, shorter vector: not confused with the memo.
	args := []string{"a", "b", "c"}
	p.append(nil, &procfs.Info{CommandArgs: args})
	a := p.append(nil, &procfs.Info{CommandArgs: args[:2]})
	if got := a[0].Value.AsStringSlice(); !slices.Equal(got, args[:2]) {
		t.Errorf("args = %q, want %q", got, args[:2])
	}
}
