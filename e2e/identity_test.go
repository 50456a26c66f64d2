//go:build linux

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
)

// identityKeys are the attributes that name a record's process.
var identityKeys = []string{
	"process.pid", "process.creation.time", "process.executable.name", "process.executable.path",
	"process.linux.cgroup", "container.id",
}

// containerCgroup makes a cgroup named as Docker's systemd driver names a
// container's, and returns it with the container's id.
func containerCgroup(t *testing.T) (*testutil.Cgroup, string) {
	t.Helper()
	var b [32]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	cg, ok := testutil.NewNamedCgroup(t, "docker-"+id+".scope")
	if !ok {
		t.Fatal("this test needs a writable cgroup2 file system")
	}
	return cg, id
}

// TestShortLivedProcessesAreNamed is the promise of naming every caller: a
// process that execs, calls mlock2 and exits half a millisecond later, in a
// container's cgroup that is removed as soon as it is gone (as a container
// runtime does), reaches the collector with the same identity as a
// long-lived one: executable path, cgroups, container id, creation time.
// Nothing of it can be read from /proc by the time the daemon reads its
// record; the kernel read it at the call.
func TestShortLivedProcessesAreNamed(t *testing.T) {
	testutil.RequireRoot(t)
	col := startCollector(t)
	bin := buildDaemon(t)
	workload := testutil.BuildWorkload(t)
	exe, err := filepath.EvalSymlinks(workload)
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, bin,
		"OTEL_EXPORTER_OTLP_ENDPOINT="+col.Endpoint(),
		"OTEL_BLRP_SCHEDULE_DELAY=100", "OTEL_METRICS_EXPORTER=none", "OTEL_TRACES_EXPORTER=none",
		"MEMLOCK_EXPORTER_FLUSH_INTERVAL=50ms",
	)

	longCg, longID := containerCgroup(t)
	long := longCg.StartWorkload(t, workload, "--once", "600000")
	var longCalls []testutil.WorkloadCall
	for range 2 { // its mlock2 and munlock, reported before it idles
		c, ok := long.Next(t)
		if !ok {
			t.Fatal("the long-lived workload reported fewer than 2 calls")
		}
		longCalls = append(longCalls, c)
	}
	longCall := longCalls[0]

	shortCg, shortID := containerCgroup(t)
	start := time.Now()
	short := shortCg.RunWorkload(t, workload, "--once", "0")
	exited := time.Now()
	lived := exited.Sub(start)
	shortCg.Remove(t) // at once, as a container runtime does
	t.Logf("the short-lived process (pid %d) ran for %v, start to exit as its parent saw it, and its cgroup is gone", short[0].PID, lived)

	both := func(attrs pcommon.Map) bool {
		pid, _ := intAttr(attrs, "process.pid")
		return pid == int64(short[0].PID) || pid == int64(longCall.PID)
	}
	col.WaitForLogs(t, 20*time.Second, func(l plog.Logs) bool { return len(recordsOf(l, both)) >= len(short)+len(longCalls) })
	d.stop(t)
	col.Stop(t)
	logs := col.Logs(t)

	for _, tc := range []struct {
		name        string
		pid         int
		cg          *testutil.Cgroup
		containerID string
		calls       int
	}{
		{"short-lived", int(short[0].PID), shortCg, shortID, len(short)},
		{"long-lived", int(longCall.PID), longCg, longID, len(longCalls)},
	} {
		recs := recordsOf(logs, ofPID(tc.pid))
		if len(recs) != tc.calls {
			t.Errorf("%s: %d records, want %d", tc.name, len(recs), tc.calls)
		}
		for _, r := range recs {
			attrs := r.attrs
			for _, k := range identityKeys {
				if _, ok := attrs.Get(k); !ok {
					t.Errorf("%s: record lacks %s", tc.name, k)
				}
			}
			want := map[string]string{
				"process.executable.path": exe,
				"process.linux.cgroup":    cgroupFileOf(t, tc.cg.HierarchyPath),
				"container.id":            tc.containerID,
			}
			for k, w := range want {
				if v, _ := attrs.Get(k); v.Str() != w {
					t.Errorf("%s: %s = %q, want %q", tc.name, k, v.Str(), w)
				}
			}
			created, err := time.Parse(time.RFC3339Nano, str(attrs, "process.creation.time"))
			if err != nil || created.Before(start.Add(-time.Minute)) || created.After(r.record.Timestamp().AsTime()) {
				t.Errorf("%s: process.creation.time %q (%v), want before its call", tc.name, str(attrs, "process.creation.time"), err)
			}
			if tc.name == "short-lived" {
				if created.Before(start.Add(-time.Second)) {
					t.Errorf("short-lived: created at %v, before the test started it at %v", created, start)
				}
				// The workload's own life, as the kernel timed it, and when
				// the daemon read the record: after the process was gone,
				// unless a read happened to fall in the half millisecond
				// between its call and its exit (logged, not asserted).
				t.Logf("short-lived: %s %v after the process was created; read %v after its parent saw it exit",
					r.record.EventName(), r.record.Timestamp().AsTime().Sub(created), r.record.ObservedTimestamp().AsTime().Sub(exited))
			}
		}
	}
	// Both records name their process with the same attributes.
	shortKeys, longKeys := keysOf(recordsOf(logs, ofPID(int(short[0].PID)))), keysOf(recordsOf(logs, ofPID(int(longCall.PID))))
	if !slices.Equal(shortKeys, longKeys) {
		t.Errorf("the short-lived process's records carry %v, the long-lived one's %v", shortKeys, longKeys)
	}
	if len(recordsOf(logs, ofPID(int(short[0].PID)))) > 0 {
		t.Logf("a record of the short-lived process, as the collector received it: %s", recordString(recordsOf(logs, ofPID(int(short[0].PID)))[0]))
	}
}

func str(m pcommon.Map, key string) string {
	v, _ := m.Get(key)
	return v.Str()
}

// keysOf lists the attribute keys of the first of recs, sorted.
func keysOf(recs []received) []string {
	if len(recs) == 0 {
		return nil
	}
	var keys []string
	for k := range recs[0].attrs.All() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// recordString renders a record's resource, then its event name, body and
// attributes.
func recordString(r received) string {
	var b strings.Builder
	b.WriteString("resource:")
	for k, v := range r.res.Attributes().All() {
		b.WriteString("\n    " + k + ": " + v.AsString())
	}
	b.WriteString("\nrecord: " + r.record.EventName() + " " + r.record.Body().Str())
	for k, v := range r.record.Attributes().All() {
		b.WriteString("\n    " + k + ": " + v.AsString())
	}
	return b.String()
}
