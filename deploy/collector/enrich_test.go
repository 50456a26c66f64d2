package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/k8sattributesprocessor"
)

// The pod whose process memlock-exporter traced: a Deployment's, on the
// agent's node, as the API server would describe it.
const (
	podUID      = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
	containerID = "4f1e2d3c4b5a69788796a5b4c3d2e1f04f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

func testPods() []corev1.Pod {
	start := metav1.NewTime(time.Date(2026, 12, 4, 15, 31, 0, 0, time.UTC))
	pod := func(name, ns, uid, node, rs, container, cid, image string) corev1.Pod {
		return corev1.Pod{
			TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: ns, UID: types.UID(uid), ResourceVersion: "7", CreationTimestamp: start,
				Labels: map[string]string{"app.kubernetes.io/name": "postgres", "pod-template-hash": strings.TrimPrefix(rs, "postgres-")},
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs,
					UID: "9f8e7d6c-5b4a-4321-8fed-cba987654321", Controller: new(true),
				}},
			},
			Spec: corev1.PodSpec{
				NodeName:   node,
				Containers: []corev1.Container{{Name: container, Image: image}},
			},
			Status: corev1.PodStatus{
				Phase: corev1.PodRunning, PodIP: "10.244.1.17", StartTime: &start,
				ContainerStatuses: []corev1.ContainerStatus{{Name: container, ContainerID: "containerd://" + cid, Ready: true}},
			},
		}
	}
	return []corev1.Pod{
		pod("postgres-7d9f8b6c5-x2k4q", "shop", podUID, testNodeName, "postgres-7d9f8b6c5", "postgres", containerID, "docker.io/library/postgres:17.2"),
		// Another pod on the node, which must not be taken for it.
		pod("redis-5c6d7e8f9-abcde", "cache", "0f0e0d0c-0b0a-4909-8807-060504030201", testNodeName, "redis-5c6d7e8f9", "redis",
			"aa11bb22cc33dd44ee55ff6600778899aa11bb22cc33dd44ee55ff6600778899", "docker.io/library/redis:7.4"),
		// A pod on another node, which the node filter must keep out.
		pod("postgres-7d9f8b6c5-zzzzz", "shop", "11111111-2222-4333-8444-555555555555", "node-b", "postgres-7d9f8b6c5", "postgres",
			"bb11bb22cc33dd44ee55ff6600778899aa11bb22cc33dd44ee55ff6600778899", "docker.io/library/postgres:17.2"),
	}
}

// fakeAPIServer answers the requests the k8s_attributes processor of
// agent.yaml makes, for pods only (the metadata it extracts needs no other
// watch). client-go first asks for a watch with sendInitialEvents (its
// WatchListClient streaming of the list): with watchList the server sends
// the pods then the bookmark ending the initial events, as API servers
// since 1.32 do; without, it refuses the request, as older ones may, and
// client-go falls back to a list, then a plain watch. Watches are held open
// with no further events. It filters pods by spec.nodeName as the field
// selector asks and records the requests it got.
type fakeAPIServer struct {
	*httptest.Server
	pods      []corev1.Pod
	watchList bool

	mu       sync.Mutex
	requests []string
}

func newFakeAPIServer(t *testing.T, pods []corev1.Pod, watchList bool) *fakeAPIServer {
	s := &fakeAPIServer{pods: pods, watchList: watchList}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *fakeAPIServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
	s.mu.Unlock()
	if r.Method != http.MethodGet || r.URL.Path != "/api/v1/pods" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	var items []corev1.Pod
	for _, p := range s.pods {
		if sel := q.Get("fieldSelector"); sel == "" || sel == "spec.nodeName="+p.Spec.NodeName {
			items = append(items, p)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if q.Get("watch") != "true" && q.Get("watch") != "1" {
		_ = json.NewEncoder(w).Encode(corev1.PodList{
			TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"},
			ListMeta: metav1.ListMeta{ResourceVersion: "10"},
			Items:    items,
		})
		return
	}
	enc := json.NewEncoder(w)
	if q.Get("sendInitialEvents") == "true" {
		if !s.watchList {
			w.WriteHeader(http.StatusBadRequest)
			_ = enc.Encode(metav1.Status{
				TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
				Status:   metav1.StatusFailure, Reason: metav1.StatusReasonBadRequest, Code: http.StatusBadRequest,
				Message: "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
			})
			return
		}
		for i := range items {
			_ = enc.Encode(metav1.WatchEvent{Type: "ADDED", Object: rawJSON(&items[i])})
		}
		_ = enc.Encode(metav1.WatchEvent{Type: "BOOKMARK", Object: rawJSON(&corev1.Pod{
			TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{
				ResourceVersion: "10",
				Annotations:     map[string]string{metav1.InitialEventsAnnotationKey: "true"},
			},
		})})
	}
	w.(http.Flusher).Flush()
	<-r.Context().Done() // no changes: hold the watch open until the client goes
}

func rawJSON(v any) (raw runtime.RawExtension) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	raw.Raw = b
	return raw
}

// writeKubeconfig writes a kubeconfig naming the server and points
// $KUBECONFIG at it: what auth_type kubeConfig reads.
func writeKubeconfig(t *testing.T, server string) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: %s
users:
- name: agent
  user:
    token: test-token
contexts:
- name: fake
  context:
    cluster: fake
    user: agent
current-context: fake
`, server)
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", path)
}

// exporterLogsFixture is one memlock.mlock2 log record as memlock-exporter
// really sent it (OTLP/JSON: one ResourceLogs, one ScopeLogs, one
// LogRecord): of a process whose cgroup is that of the container above
// (containerID) in the pod above (podUID), under the resource of that
// process, with the container.id and k8s.pod.uid memlock-exporter read
// from its cgroup path. The privileged end-to-end test
// TestK8sPodRecordMatchesCollectorFixture (e2e/k8sfixture_test.go) wrote it
// from a real run of the daemon, and checks the daemon still sends records
// of its shape; with MEMLOCK_UPDATE_FIXTURES=1 it writes it anew.
const exporterLogsFixture = "testdata/exporter-logs.json"

// exporterLogs loads exporterLogsFixture. withPodUID false removes
// k8s.pod.uid from its resource, as for a cgroup path that names the
// container but no pod, to prove the container.id association alone finds
// the pod.
func exporterLogs(t *testing.T, withPodUID bool) plog.Logs {
	t.Helper()
	data, err := os.ReadFile(exporterLogsFixture)
	if err != nil {
		t.Fatal(err)
	}
	var u plog.JSONUnmarshaler
	ld, err := u.UnmarshalLogs(data)
	if err != nil {
		t.Fatalf("parse %s: %v", exporterLogsFixture, err)
	}
	if ld.ResourceLogs().Len() != 1 || ld.LogRecordCount() != 1 {
		t.Fatalf("%s: %d resources, %d records, want one record", exporterLogsFixture, ld.ResourceLogs().Len(), ld.LogRecordCount())
	}
	res := ld.ResourceLogs().At(0).Resource().Attributes()
	for k, want := range map[string]string{"container.id": containerID, "k8s.pod.uid": podUID} {
		if v, _ := res.Get(k); v.Str() != want {
			t.Fatalf("%s: resource %s = %q, want the pod's %q (regenerate it with MEMLOCK_UPDATE_FIXTURES=1, see e2e/k8sfixture_test.go)",
				exporterLogsFixture, k, v.Str(), want)
		}
	}
	if !withPodUID {
		res.Remove("k8s.pod.uid")
	}
	return ld
}

// runK8sAttributes runs agent.yaml's k8s_attributes processor (its own
// configuration, only its auth_type turned to kubeConfig) against the fake
// API server and returns what it hands the next consumer for ld.
func runK8sAttributes(t *testing.T, api *fakeAPIServer, ld plog.Logs) plog.Logs {
	t.Helper()
	cfg := loadAgentConfig(t).Processors[id("k8s_attributes")].(*k8sattributesprocessor.Config)
	cfg.APIConfig.AuthType = "kubeConfig"
	if !cfg.WaitForMetadata {
		t.Fatal("agent.yaml's k8s_attributes does not wait_for_metadata")
	}
	cfg.WaitForMetadataTimeout = 10 * time.Second
	writeKubeconfig(t, api.URL)

	factory := k8sattributesprocessor.NewFactory()
	set := processortest.NewNopSettings(factory.Type())
	set.Logger = zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel))
	sink := new(consumertest.LogsSink)
	proc, err := factory.CreateLogs(context.Background(), set, cfg, sink)
	if err != nil {
		t.Fatalf("CreateLogs: %v", err)
	}
	// With wait_for_metadata, Start returns once the pods are listed.
	start := time.Now()
	if err := proc.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatalf("Start: %v (requests: %v)", err, api.seen())
	}
	t.Logf("k8s_attributes synced with the fake API in %v, after %q", time.Since(start).Round(time.Millisecond), api.seen())
	t.Cleanup(func() {
		if err := proc.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	if err := proc.ConsumeLogs(context.Background(), ld); err != nil {
		t.Fatalf("ConsumeLogs: %v", err)
	}
	got := sink.AllLogs()
	if len(got) != 1 || got[0].LogRecordCount() != 1 {
		t.Fatalf("got %d batches, want 1 of 1 record", len(got))
	}
	for _, req := range api.seen() {
		if !strings.HasPrefix(req, "GET /api/v1/pods?") || !strings.Contains(req, "fieldSelector=spec.nodeName%3D"+testNodeName) {
			t.Errorf("unexpected request to the API server: %s", req)
		}
	}
	return got[0]
}

func (s *fakeAPIServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// enrichment is what k8s_attributes must add to the resource of a record
// of the pod's process, as agent.yaml extracts it.
var enrichment = map[string]string{
	"k8s.pod.name":         "postgres-7d9f8b6c5-x2k4q",
	"k8s.pod.uid":          podUID,
	"k8s.namespace.name":   "shop",
	"k8s.node.name":        testNodeName,
	"k8s.deployment.name":  "postgres",
	"k8s.replicaset.name":  "postgres-7d9f8b6c5",
	"k8s.pod.start_time":   "2026-12-04T15:31:00Z",
	"k8s.container.name":   "postgres",
	"container.image.name": "docker.io/library/postgres",
}

// checkEnriched checks that k8s_attributes turned in, the record as
// memlock-exporter sent it, into out: the resource carries the pod's
// metadata (enrichment) and nothing else new, every attribute
// memlock-exporter had put there is untouched, and so is everything else
// (scope, record, schema URLs).
func checkEnriched(t *testing.T, in, out plog.Logs) {
	t.Helper()
	before := in.ResourceLogs().At(0).Resource().Attributes()
	after := out.ResourceLogs().At(0).Resource().Attributes()
	for k, want := range enrichment {
		if got, ok := after.Get(k); !ok {
			t.Errorf("resource has no %s, want %q", k, want)
		} else if got.AsString() != want {
			t.Errorf("resource %s = %q, want %q", k, got.AsString(), want)
		}
	}
	for k, v := range before.All() {
		if got, ok := after.Get(k); !ok {
			t.Errorf("resource lost memlock-exporter's %s (%s)", k, v.AsString())
		} else if !got.Equal(v) {
			t.Errorf("resource %s = %s, memlock-exporter's was %s", k, got.AsString(), v.AsString())
		}
	}
	for k, v := range after.All() {
		if _, ours := before.Get(k); !ours {
			if _, ok := enrichment[k]; !ok {
				t.Errorf("resource got %s = %s, which the test does not expect", k, v.AsString())
			}
		}
	}
	// The rest, compared as OTLP/JSON with the resource's attributes put
	// back as they were.
	rest := plog.NewLogs()
	out.CopyTo(rest)
	before.CopyTo(rest.ResourceLogs().At(0).Resource().Attributes())
	var m plog.JSONMarshaler
	want, err := m.MarshalLogs(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.MarshalLogs(rest)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("k8s_attributes changed more than the resource's attributes:\n got %s\nwant %s", got, want)
	}
}

// logResource prints the resource as it leaves k8s_attributes, one
// attribute a line, sorted.
func logResource(t *testing.T, ld plog.Logs) {
	b, err := json.MarshalIndent(ld.ResourceLogs().At(0).Resource().Attributes().AsRaw(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("resource after k8s_attributes:\n%s", b)
}

func TestK8sAttributesEnrichesByPodUID(t *testing.T) {
	api := newFakeAPIServer(t, testPods(), true)
	in := exporterLogs(t, true)
	out := runK8sAttributes(t, api, clone(in))
	logResource(t, out)
	checkEnriched(t, in, out)
}

// This one also has the API server refuse the streamed list: the processor
// then lists and watches.
func TestK8sAttributesEnrichesByContainerID(t *testing.T) {
	api := newFakeAPIServer(t, testPods(), false)
	in := exporterLogs(t, false)
	if _, ok := in.ResourceLogs().At(0).Resource().Attributes().Get("k8s.pod.uid"); ok {
		t.Fatal("the record should name its container only")
	}
	out := runK8sAttributes(t, api, clone(in))
	logResource(t, out)
	checkEnriched(t, in, out)
}

// A process outside any pod (no k8s.pod.uid, no container.id: a host
// daemon) keeps its resource as it was: no pod's metadata is taken for it,
// not even the one of the connection's pod.
func TestK8sAttributesLeavesHostProcessesAlone(t *testing.T) {
	api := newFakeAPIServer(t, testPods(), true)
	in := exporterLogs(t, false)
	res := in.ResourceLogs().At(0).Resource().Attributes()
	res.Remove("container.id")
	res.PutStr("process.linux.cgroup", "0::/system.slice/postgresql.service")
	out := runK8sAttributes(t, api, clone(in))
	after := out.ResourceLogs().At(0).Resource().Attributes()
	if !after.Equal(res) {
		t.Errorf("resource changed: %v, was %v", after.AsRaw(), res.AsRaw())
	}
	for k := range after.All() {
		if strings.HasPrefix(k, "k8s.") {
			t.Errorf("host process got %s", k)
		}
	}
}

// clone returns a copy of ld: k8s_attributes changes the resources of what
// it is given in place.
func clone(ld plog.Logs) plog.Logs {
	c := plog.NewLogs()
	ld.CopyTo(c)
	return c
}
