package helmchart

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// TestLint lints the chart on disk with the SDK (helm lint --strict), with
// the default values and with each value set of renderCases.
func TestLint(t *testing.T) {
	cases := append([]renderCase{{name: "defaults"}}, renderCases...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = "monitoring"
			kv, err := common.ParseKubeVersion(KubeVersion)
			if err != nil {
				t.Fatal(err)
			}
			lint.KubeVersion = kv
			res := lint.Run([]string{ChartDir}, c.values)
			for _, m := range res.Messages {
				t.Logf("lint: %s", m)
			}
			if res.TotalChartsLinted != 1 {
				t.Errorf("linted %d charts, want 1", res.TotalChartsLinted)
			}
			for _, err := range res.Errors {
				t.Errorf("lint: %v", err)
			}
		})
	}
}

// want is what a rendering's DaemonSet must show beside the security
// properties every rendering must have.
type want struct {
	endpoint    string            // OTEL_EXPORTER_OTLP_ENDPOINT
	clusterName string            // k8s.cluster.name; "" means absent
	health      bool              // health endpoint and probes
	port        int32             // health port
	queue       string            // "", "emptyDir" or "hostPath"
	env         map[string]string // further env values
	envOrder    []string          // names that must appear in this order
	sa          string            // service account name
	saObject    bool              // a ServiceAccount object is rendered
	// caps are the capabilities added, exactly: least privilege means
	// nothing beyond what deploy/CAPABILITIES.md shows to be needed.
	caps []corev1.Capability
}

type renderCase struct {
	name   string
	values map[string]any
	want   want
}

var defaultWant = want{
	endpoint: "http://$(HOST_IP):4317",
	health:   true,
	port:     8686,
	sa:       "memlock-exporter",
	saObject: true,
	caps:     []corev1.Capability{"BPF", "PERFMON"},
}

func with(f func(*want)) want {
	w := defaultWant
	f(&w)
	return w
}

var renderCases = []renderCase{
	{
		name: "queue on (emptyDir)",
		values: map[string]any{"queue": map[string]any{
			"enabled": true, "sizeLimit": "600Mi", "maxBytes": "256MiB",
		}},
		want: with(func(w *want) {
			w.queue = "emptyDir"
			w.env = map[string]string{
				"MEMLOCK_EXPORTER_QUEUE_DIR":       "/var/lib/memlock-exporter/queue",
				"MEMLOCK_EXPORTER_QUEUE_MAX_BYTES": "256MiB",
			}
		}),
	},
	{
		name: "queue on (hostPath)",
		values: map[string]any{"queue": map[string]any{
			"enabled": true, "type": "hostPath",
		}},
		want: with(func(w *want) {
			w.queue = "hostPath"
			w.env = map[string]string{"MEMLOCK_EXPORTER_QUEUE_DIR": "/var/lib/memlock-exporter/queue"}
		}),
	},
	{
		name: "endpoint override and cluster name",
		values: map[string]any{
			"otlp":               map[string]any{"endpoint": "http://otel-collector.observability.svc:4317", "protocol": "grpc"},
			"clusterName":        "prod-eu1",
			"resourceAttributes": map[string]any{"deployment.environment.name": "prod"},
		},
		want: with(func(w *want) {
			w.endpoint = "http://otel-collector.observability.svc:4317"
			w.clusterName = "prod-eu1"
			w.env = map[string]string{
				"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
				"OTEL_RESOURCE_ATTRIBUTES":    "k8s.node.name=$(K8S_NODE_NAME),k8s.cluster.name=prod-eu1,deployment.environment.name=prod",
			}
		}),
	},
	{
		name: "extra env",
		values: map[string]any{
			"clusterName": "lab",
			"env": map[string]any{
				"MEMLOCK_EXPORTER_RINGBUF_SIZE":        "4MiB",
				"MEMLOCK_EXPORTER_PROCESS_METRICS":     true, // YAML's unquoted on
				"MEMLOCK_EXPORTER_UPROBES":             false,
				"MEMLOCK_EXPORTER_FOLD_AFTER":          1000000,
				"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION": 0.75,
				"GOMEMLIMIT":                           "100MiB",
			},
			"extraEnv": []any{map[string]any{
				"name": "OTEL_EXPORTER_OTLP_HEADERS",
				"valueFrom": map[string]any{"secretKeyRef": map[string]any{
					"name": "otlp-auth", "key": "headers",
				}},
			}},
		},
		want: with(func(w *want) {
			w.clusterName = "lab"
			w.env = map[string]string{
				"MEMLOCK_EXPORTER_RINGBUF_SIZE":        "4MiB",
				"MEMLOCK_EXPORTER_PROCESS_METRICS":     "on",
				"MEMLOCK_EXPORTER_UPROBES":             "off",
				"MEMLOCK_EXPORTER_FOLD_AFTER":          "1000000",
				"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION": "0.75",
				"GOMEMLIMIT":                           "100MiB",
				"OTEL_EXPORTER_OTLP_HEADERS":           "", // valueFrom
			}
			w.envOrder = []string{
				"GOMEMLIMIT", "MEMLOCK_EXPORTER_FOLD_AFTER", "MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION",
				"MEMLOCK_EXPORTER_PROCESS_METRICS", "MEMLOCK_EXPORTER_RINGBUF_SIZE", "MEMLOCK_EXPORTER_UPROBES",
				"OTEL_EXPORTER_OTLP_HEADERS",
			}
		}),
	},
	{
		name:   "capabilities for Linux 5.10",
		values: map[string]any{"capabilities": []any{"BPF", "PERFMON", "SYS_RESOURCE"}},
		want:   with(func(w *want) { w.caps = []corev1.Capability{"BPF", "PERFMON", "SYS_RESOURCE"} }),
	},
	{
		name:   "health off",
		values: map[string]any{"health": map[string]any{"enabled": false}},
		want:   with(func(w *want) { w.health = false }),
	},
	{
		name:   "health on another port",
		values: map[string]any{"health": map[string]any{"port": 9000}},
		want:   with(func(w *want) { w.port = 9000 }),
	},
	{
		name: "no service account, no recursiveReadOnly, RuntimeDefault seccomp",
		values: map[string]any{
			"serviceAccount": map[string]any{"create": false},
			"hostMounts":     map[string]any{"recursiveReadOnly": ""},
			"seccompProfile": map[string]any{"type": "RuntimeDefault"},
		},
		want: with(func(w *want) { w.sa = "default"; w.saObject = false }),
	},
}

// TestRender renders the chart with the default values and each value set,
// decodes every object strictly into its Kubernetes API type and checks the
// DaemonSet.
func TestRender(t *testing.T) {
	cases := append([]renderCase{{name: "defaults", want: defaultWant}}, renderCases...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := Render(c.values, Options{})
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			objs := decodeAll(t, r.Manifest)
			var ds *appsv1.DaemonSet
			var sas []*corev1.ServiceAccount
			for _, o := range objs {
				switch o := o.(type) {
				case *appsv1.DaemonSet:
					if ds != nil {
						t.Fatal("more than one DaemonSet")
					}
					ds = o
				case *corev1.ServiceAccount:
					sas = append(sas, o)
				}
			}
			if ds == nil {
				t.Fatal("no DaemonSet rendered")
			}
			for _, ch := range checks {
				if err := ch.check(ds, c.want); err != nil {
					t.Errorf("%s: %v", ch.name, err)
				}
			}
			if c.want.saObject {
				if len(sas) != 1 || sas[0].Name != c.want.sa {
					t.Errorf("want one ServiceAccount %q, got %d", c.want.sa, len(sas))
				} else if a := sas[0].AutomountServiceAccountToken; a == nil || *a {
					t.Errorf("ServiceAccount automountServiceAccountToken = %v, want false", a)
				}
			} else if len(sas) != 0 {
				t.Errorf("want no ServiceAccount, got %d", len(sas))
			}
			if !strings.Contains(r.Notes, "memlock-exporter runs on every node") {
				t.Errorf("NOTES.txt not rendered: %q", r.Notes)
			}
		})
	}
}

// TestRenderRefuses checks that values the chart must refuse fail the
// rendering (the schema, or a fail in the templates) with a useful message.
func TestRenderRefuses(t *testing.T) {
	for _, c := range []struct {
		name   string
		values map[string]any
		errHas string
	}{
		{"typo in a key", map[string]any{"helth": map[string]any{"port": 1}}, "helth"},
		{"typo in a nested key", map[string]any{"queue": map[string]any{"enable": true}}, "enable"},
		{"env sets a chart-owned variable", map[string]any{"env": map[string]any{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317"}}, "env.OTEL_EXPORTER_OTLP_ENDPOINT is set by the chart"},
		{"env name not a variable name", map[string]any{"env": map[string]any{"A-B": "1"}}, "A-B"},
		{"SYS_ADMIN capability", map[string]any{"capabilities": []any{"BPF", "SYS_ADMIN"}}, "capabilities"},
		{"comma in a resource attribute", map[string]any{"resourceAttributes": map[string]any{"team": "a,b"}}, "resourceAttributes"},
		{"comma in the cluster name", map[string]any{"clusterName": "a,b"}, "clusterName"},
		{"endpoint without scheme", map[string]any{"otlp": map[string]any{"endpoint": "collector:4317"}}, "endpoint"},
		{"unknown queue type", map[string]any{"queue": map[string]any{"enabled": true, "type": "pvc"}}, "type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Render(c.values, Options{})
			if err == nil {
				t.Fatal("rendered; want an error")
			}
			if !strings.Contains(err.Error(), c.errHas) {
				t.Errorf("error %q does not mention %q", err, c.errHas)
			}
		})
	}
}

// decodeAll decodes each document of a manifest strictly (no unknown or
// duplicate fields) into the Kubernetes API type of its kind.
func decodeAll(t *testing.T, manifest string) []any {
	t.Helper()
	var objs []any
	// Helm's own splitting, in the manifest's order.
	split := releaseutil.SplitManifests(manifest)
	names := slices.Collect(maps.Keys(split))
	sort.Sort(releaseutil.BySplitManifestsOrder(names))
	var docs []string
	for _, n := range names {
		docs = append(docs, split[n])
	}
	if len(docs) == 0 {
		t.Fatal("empty manifest")
	}
	for _, doc := range docs {
		o, err := decodeStrict([]byte(doc))
		if err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		objs = append(objs, o)
	}
	return objs
}

func decodeStrict(doc []byte) (any, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("YAML: %w", err)
	}
	var tm struct{ APIVersion, Kind string }
	if err := json.Unmarshal(js, &tm); err != nil {
		return nil, err
	}
	var o any
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 DaemonSet":
		o = &appsv1.DaemonSet{}
	case "v1 ServiceAccount":
		o = &corev1.ServiceAccount{}
	default:
		return nil, fmt.Errorf("unexpected object %s %s: add its type to decodeStrict", tm.APIVersion, tm.Kind)
	}
	// As the API server decodes: field names case-sensitive, and (strict)
	// no unknown or duplicate fields. encoding/json would match hostPid to
	// hostPID.
	strict, err := kjson.UnmarshalStrict(js, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if err := errors.Join(strict...); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return o, nil
}

func TestDecodeStrictCatchesTypos(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: apps/v1\nkind: DaemonSet\nspec:\n  template:\n    spec:\n      hostPid: true\n",
		"apiVersion: apps/v1\nkind: DaemonSet\nspec:\n  template:\n    spec:\n      containers:\n        - name: a\n          securityContext:\n            readOnlyRootFileSystem: true\n",
		"apiVersion: v1\nkind: ServiceAccount\nautomountServiceAccountToken: false\nautomountServiceAccountToken: true\n",
		"apiVersion: v1\nkind: ConfigMap\n",
	} {
		if _, err := decodeStrict([]byte(doc)); err == nil {
			t.Errorf("decoded without error:\n%s", doc)
		}
	}
}

func TestTemplatesHaveHelpers(t *testing.T) {
	names, err := templateFiles()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"_helpers.tpl", "daemonset.yaml", "serviceaccount.yaml", "NOTES.txt"} {
		if !slices.Contains(names, path.Join(ChartDir, "templates", n)) {
			t.Errorf("templates/%s missing (have %v)", n, names)
		}
	}
}
