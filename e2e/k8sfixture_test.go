//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// The pod and container of deploy/collector/enrich_test.go (its podUID and
// containerID, which TestK8sPodRecordMatchesCollectorFixture checks are
// still these), whose fake API server describes the pod.
const (
	k8sPodUID      = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
	k8sContainerID = "4f1e2d3c4b5a69788796a5b4c3d2e1f04f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

// Paths relative to this package's directory, where go test runs the test.
const (
	// k8sFixture is one mlock2 record of a pod's process as the daemon
	// sent it, which deploy/collector's k8s_attributes tests feed the
	// collector's processor.
	k8sFixture = "../deploy/collector/testdata/exporter-logs.json"
	// k8sEnrichTest declares the pod the fixture must name.
	k8sEnrichTest = "../deploy/collector/enrich_test.go"
)

// updateFixturesEnv, set to 1, makes the test write the record it captured
// to k8sFixture instead of comparing it with the file.
const updateFixturesEnv = "MEMLOCK_UPDATE_FIXTURES"

// k8sRefresh says how to regenerate the fixture.
const k8sRefresh = "if the change is intended, refresh the fixture from a real run with\n" +
	"\tsudo " + updateFixturesEnv + "=1 go test -count=1 -run TestK8sPodRecordMatchesCollectorFixture ./e2e/\n" +
	"then review its diff and run deploy/collector's tests (cd deploy/collector && go test ./...)"

// k8sPodCgroupPath is the cgroup v2 path, from the hierarchy's root, the
// kubelet's systemd cgroup driver gives a Burstable pod's container that
// containerd's CRI plugin runs: the pod's slice, with its UID's dashes
// turned into underscores, and the container's scope.
func k8sPodCgroupPath(podUID, containerID string) []string {
	return []string{
		"kubepods.slice",
		"kubepods-burstable.slice",
		"kubepods-burstable-pod" + strings.ReplaceAll(podUID, "-", "_") + ".slice",
		"cri-containerd-" + containerID + ".scope",
	}
}

// TestK8sPodRecordMatchesCollectorFixture keeps deploy/collector's
// k8s_attributes tests honest: they feed the collector's processor
// deploy/collector/testdata/exporter-logs.json, and this test proves that
// file is what the daemon really sends for a process in a pod. It runs the
// workload in a cgroup named as a pod's container (k8sPodCgroupPath), in a
// PID namespace of its own, under the real daemon exporting to the real
// collector, takes the daemon's memlock.mlock2 record of it, and checks
// that its resource names the pod (k8s.pod.uid) and the container
// (container.id), read from the cgroup path, and that the fixture has the
// same resource and record attribute keys (and their types), event name
// and scope name as the captured record, and names the same pod and
// container. Values that change from run to run (pids, times, addresses,
// host) are not compared. With MEMLOCK_UPDATE_FIXTURES=1 it writes the
// captured record to the fixture instead of comparing.
func TestK8sPodRecordMatchesCollectorFixture(t *testing.T) {
	testutil.RequireRoot(t)
	checkEnrichTestPod(t)
	cg := k8sPodCgroup(t, k8sPodUID, k8sContainerID)
	col := startCollector(t)
	bin := buildDaemon(t)
	workload := testutil.BuildWorkload(t)
	// The daemon's defaults (logs, metrics and spans over OTLP/gRPC), only
	// sooner: the record is as a default deployment sends it.
	d := startDaemon(t, bin,
		"OTEL_EXPORTER_OTLP_ENDPOINT="+col.Endpoint(),
		"OTEL_BLRP_SCHEDULE_DELAY=100",
		"MEMLOCK_EXPORTER_FLUSH_INTERVAL=50ms",
	)

	// One raw mlock2(buf, 4096, 0) and its munlock, then exit; in a PID
	// namespace of its own, as a container's processes are, where it is
	// pid 1 (process.vpid).
	cmd := cg.WorkloadCommand(workload, "--once", "0")
	cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWPID
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run workload %s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.Bytes())
	}
	calls, err := testutil.ParseWorkloadOutput(bytes.NewReader(out))
	if err != nil || len(calls) == 0 || calls[0].Syscall != "mlock2" {
		t.Fatalf("the workload's calls: %+v (%v), want an mlock2 first", calls, err)
	}
	ours := func(attrs pcommon.Map) bool {
		id, ok := intAttr(attrs, string(semconv.CgroupIDKey))
		return ok && id == int64(cg.ID)
	}
	col.WaitForLogs(t, 20*time.Second, func(l plog.Logs) bool {
		_, _, ok := firstRecord(l, semconv.EventMlock2, ours)
		return ok
	})
	d.stop(t)
	col.Stop(t)
	got, rec, ok := firstRecord(col.Logs(t), semconv.EventMlock2, ours)
	if !ok {
		t.Fatalf("no %s record of the workload (cgroup id %d) after the daemon stopped", semconv.EventMlock2, cg.ID)
	}
	t.Logf("the daemon's record of the workload in the pod's cgroup: %s", recordString(rec))

	// The daemon read the pod and the container from the cgroup path.
	res := got.ResourceLogs().At(0).Resource().Attributes()
	for k, want := range map[string]string{
		string(semconv.ContainerIDKey): k8sContainerID,
		string(semconv.K8SPodUIDKey):   k8sPodUID,
	} {
		if v, ok := res.Get(k); !ok || v.Type() != pcommon.ValueTypeStr || v.Str() != want {
			t.Errorf("resource %s = %v, want %q (read from the cgroup path /%s)", k, v.AsRaw(), want, filepath.Join(k8sPodCgroupPath(k8sPodUID, k8sContainerID)...))
		}
	}
	// Its pid in the container's PID namespace.
	if vpid, ok := intAttr(res, string(semconv.ProcessVpidKey)); !ok || vpid != 1 {
		t.Errorf("resource %s = %v, want 1: the workload is its PID namespace's first process", semconv.ProcessVpidKey, res.AsRaw()[string(semconv.ProcessVpidKey)])
	}
	if t.Failed() {
		t.FailNow() // not a record to write or compare
	}

	if os.Getenv(updateFixturesEnv) == "1" {
		writeFixture(t, k8sFixture, got)
		return
	}
	data, err := os.ReadFile(k8sFixture)
	if err != nil {
		t.Fatalf("read the fixture: %v\n(%s=1 writes it from this run)", err, updateFixturesEnv)
	}
	var u plog.JSONUnmarshaler
	want, err := u.UnmarshalLogs(data)
	if err != nil {
		t.Fatalf("parse the fixture %s: %v\n%s", k8sFixture, err, k8sRefresh)
	}
	if diffs := compareK8sFixture(got, want); len(diffs) > 0 {
		t.Errorf("the daemon's %s record of a pod's process no longer matches %s, which deploy/collector's k8s_attributes tests feed the collector:\n\t%s\n%s",
			semconv.EventMlock2, k8sFixture, strings.Join(diffs, "\n\t"), k8sRefresh)
	}
}

// checkEnrichTestPod fails the test unless deploy/collector/enrich_test.go
// still declares podUID and containerID as k8sPodUID and k8sContainerID:
// that module's fake API server describes the pod the fixture must name.
func checkEnrichTestPod(t *testing.T) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), k8sEnrichTest, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", k8sEnrichTest, err)
	}
	consts := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						consts[name.Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
		}
	}
	for name, want := range map[string]string{"podUID": k8sPodUID, "containerID": k8sContainerID} {
		if consts[name] != want {
			t.Fatalf("%s declares %s = %q, this test %q: make them the same, then refresh the fixture (%s=1)",
				k8sEnrichTest, name, consts[name], want, updateFixturesEnv)
		}
	}
}

// k8sPodCgroup creates the cgroup v2 of a pod's container
// (k8sPodCgroupPath) and its parents, after removing a stale one that an
// interrupted run left behind, and removes them when the test ends: the
// container's scope and the pod's slice, which name this test's pod alone,
// always; kubepods.slice and kubepods-burstable.slice only when this test
// created them (on a Kubernetes node they are the kubelet's).
func k8sPodCgroup(t *testing.T, podUID, containerID string) *testutil.Cgroup {
	t.Helper()
	path := k8sPodCgroupPath(podUID, containerID)
	mount := cgroup2Root(t)
	// A stale one: the container first, then the pod.
	for i := len(path); i >= 3; i-- {
		removeStaleCgroup(t, filepath.Join(append([]string{mount}, path[:i]...)...))
	}
	var created []string
	for i := 1; i < len(path); i++ {
		dir := filepath.Join(append([]string{mount}, path[:i]...)...)
		err := os.Mkdir(dir, 0o755)
		switch {
		case err == nil:
			created = append(created, dir)
		case errors.Is(err, os.ErrExist):
			t.Logf("cgroup %s exists already: left as it is", dir)
		default:
			t.Fatalf("create cgroup %s: %v", dir, err)
		}
	}
	// Registered before NewNamedCgroup's, so it runs after it.
	t.Cleanup(func() {
		for _, dir := range slices.Backward(created) {
			if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, syscall.ENOENT) {
				t.Errorf("remove cgroup %s: %v", dir, err)
			}
		}
	})
	cg, ok := testutil.NewNamedCgroup(t, filepath.Join(path...))
	if !ok {
		t.Fatal("this test needs a writable cgroup2 file system")
	}
	return cg
}

// cgroup2Root returns where the cgroup2 hierarchy is mounted.
func cgroup2Root(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		left, right, ok := strings.Cut(line, " - ")
		if f, l := strings.Fields(right), strings.Fields(left); ok && len(f) > 0 && f[0] == "cgroup2" && len(l) >= 5 {
			return l[4]
		}
	}
	t.Fatal("this test needs a cgroup2 file system: none is mounted")
	return ""
}

// removeStaleCgroup kills what runs in the cgroup dir, if it exists, and
// removes it.
func removeStaleCgroup(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return
	}
	t.Logf("removing the stale cgroup %s", dir)
	_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			t.Fatalf("remove the stale cgroup %s: %v", dir, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// firstRecord returns the first record of logs whose event is eventName
// and whose attributes, with its resource's process identity (callAttrs),
// keep accepts, as an export request of its own: one ResourceLogs, one
// ScopeLogs, one LogRecord, with the resource, scope and schema URLs it
// came with.
func firstRecord(logs plog.Logs, eventName string, keep func(pcommon.Map) bool) (plog.Logs, received, bool) {
	for _, rl := range logs.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				if lr.EventName() != eventName || !keep(callAttrs(rl.Resource(), lr.Attributes())) {
					continue
				}
				ld := plog.NewLogs()
				orl := ld.ResourceLogs().AppendEmpty()
				orl.SetSchemaUrl(rl.SchemaUrl())
				rl.Resource().CopyTo(orl.Resource())
				osl := orl.ScopeLogs().AppendEmpty()
				osl.SetSchemaUrl(sl.SchemaUrl())
				sl.Scope().CopyTo(osl.Scope())
				lr.CopyTo(osl.LogRecords().AppendEmpty())
				return ld, received{rl.Resource(), sl.Scope(), lr, callAttrs(rl.Resource(), lr.Attributes())}, true
			}
		}
	}
	return plog.Logs{}, received{}, false
}

// writeFixture writes ld to path as indented OTLP/JSON.
func writeFixture(t *testing.T, path string, ld plog.Logs) {
	t.Helper()
	var m plog.JSONMarshaler
	raw, err := m.MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	b.WriteByte('\n')
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s=1: wrote the captured record to %s; review its diff and run deploy/collector's tests", updateFixturesEnv, path)
}

// compareK8sFixture lists how got, the daemon's record, differs from want,
// the fixture, in what deploy/collector's tests rely on: the shape of the
// request, the resource's and the record's attribute keys and their types,
// the event and scope names, and the pod and container the resource names.
func compareK8sFixture(got, want plog.Logs) []string {
	if n, m, k := shapeOf(want); n != 1 || m != 1 || k != 1 {
		return []string{fmt.Sprintf("the fixture holds %d ResourceLogs, %d ScopeLogs, %d LogRecords: want one of each", n, m, k)}
	}
	var diffs []string
	grl, wrl := got.ResourceLogs().At(0), want.ResourceLogs().At(0)
	gsl, wsl := grl.ScopeLogs().At(0), wrl.ScopeLogs().At(0)
	glr, wlr := gsl.LogRecords().At(0), wsl.LogRecords().At(0)
	diffs = append(diffs, diffKeys("resource attributes", grl.Resource().Attributes(), wrl.Resource().Attributes())...)
	diffs = append(diffs, diffKeys("record attributes", glr.Attributes(), wlr.Attributes())...)
	if glr.EventName() != wlr.EventName() {
		diffs = append(diffs, fmt.Sprintf("event name: the daemon sends %q, the fixture has %q", glr.EventName(), wlr.EventName()))
	}
	if gsl.Scope().Name() != wsl.Scope().Name() {
		diffs = append(diffs, fmt.Sprintf("scope name: the daemon sends %q, the fixture has %q", gsl.Scope().Name(), wsl.Scope().Name()))
	}
	for _, k := range []string{string(semconv.ContainerIDKey), string(semconv.K8SPodUIDKey)} {
		g, _ := grl.Resource().Attributes().Get(k)
		w, _ := wrl.Resource().Attributes().Get(k)
		if g.AsString() != w.AsString() {
			diffs = append(diffs, fmt.Sprintf("resource %s: the daemon sends %q, the fixture has %q", k, g.AsString(), w.AsString()))
		}
	}
	return diffs
}

func shapeOf(ld plog.Logs) (resources, scopes, records int) {
	for _, rl := range ld.ResourceLogs().All() {
		resources++
		for _, sl := range rl.ScopeLogs().All() {
			scopes++
			records += sl.LogRecords().Len()
		}
	}
	return resources, scopes, records
}

// diffKeys lists the keys only one of got (the daemon's) and want (the
// fixture's) has, and those whose values' types differ.
func diffKeys(what string, got, want pcommon.Map) []string {
	var onlyGot, onlyWant, types []string
	for k, g := range got.All() {
		w, ok := want.Get(k)
		switch {
		case !ok:
			onlyGot = append(onlyGot, k)
		case g.Type() != w.Type():
			types = append(types, fmt.Sprintf("%s is %s, the fixture's %s", k, g.Type(), w.Type()))
		}
	}
	for k := range want.All() {
		if _, ok := got.Get(k); !ok {
			onlyWant = append(onlyWant, k)
		}
	}
	slices.Sort(onlyGot)
	slices.Sort(onlyWant)
	slices.Sort(types)
	var diffs []string
	if len(onlyGot) > 0 {
		diffs = append(diffs, fmt.Sprintf("%s: the daemon sends %q, which the fixture lacks", what, onlyGot))
	}
	if len(onlyWant) > 0 {
		diffs = append(diffs, fmt.Sprintf("%s: the fixture has %q, which the daemon no longer sends", what, onlyWant))
	}
	if len(types) > 0 {
		diffs = append(diffs, fmt.Sprintf("%s: types differ: %s", what, strings.Join(types, "; ")))
	}
	return diffs
}
