package collector

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/k8sattributesprocessor"
)

// The environment agent.yaml reads: the downward API's node name and the
// backend it forwards to.
const (
	testNodeName = "node-a"
	testBackend  = "otel-gateway.observability.svc.cluster.local:4317"
)

// factories are the components of agent.yaml, as a collector built with
// them (ocb, or the contrib and k8s distributions) has them. The telemetry
// factory is the real collector's, so that a service::telemetry section
// would be checked too.
func factories() (otelcol.Factories, error) {
	var f otelcol.Factories
	var err error
	if f.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](otlpreceiver.NewFactory()); err != nil {
		return f, err
	}
	if f.Processors, err = otelcol.MakeFactoryMap[processor.Factory](
		memorylimiterprocessor.NewFactory(),
		k8sattributesprocessor.NewFactory(),
		batchprocessor.NewFactory(),
	); err != nil {
		return f, err
	}
	if f.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](
		otlpexporter.NewFactory(),
		otlphttpexporter.NewFactory(),
	); err != nil {
		return f, err
	}
	f.Telemetry = otelconftelemetry.NewFactory()
	return f, nil
}

// loadConfig does what `otelcol validate --config <uri>` does: it resolves
// the collector configuration at uri (a file: URI) the way the collector
// does at start, ${env:...} included, unmarshals it into the components'
// configurations, validates each of them and the whole, and builds (without
// starting) the pipelines' components. It returns the configuration too,
// for the tests to look into.
func loadConfig(t *testing.T, uri string) (*otelcol.Config, error) {
	t.Helper()
	set := otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{Command: "otelcol-agent-test", Version: "v0.161.0"},
		Factories: factories,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				URIs:              []string{uri},
				ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory()},
				DefaultScheme:     "env",
			},
		},
	}
	f, err := factories()
	if err != nil {
		t.Fatalf("factories: %v", err)
	}
	provider, err := otelcol.NewConfigProvider(set.ConfigProviderSettings)
	if err != nil {
		t.Fatalf("config provider: %v", err)
	}
	cfg, err := provider.Get(context.Background(), f)
	if err != nil {
		return nil, err
	}
	col, err := otelcol.NewCollector(set)
	if err != nil {
		t.Fatalf("collector: %v", err)
	}
	return cfg, col.DryRun(context.Background())
}

// setAgentEnv sets the environment agent.yaml needs.
func setAgentEnv(t *testing.T) {
	t.Setenv("K8S_NODE_NAME", testNodeName)
	t.Setenv("OTLP_BACKEND_ENDPOINT", testBackend)
}

// loadAgentConfig loads and validates agent.yaml, failing the test if it
// does not.
func loadAgentConfig(t *testing.T) *otelcol.Config {
	t.Helper()
	setAgentEnv(t)
	cfg, err := loadConfig(t, "file:agent.yaml")
	if err != nil {
		t.Fatalf("agent.yaml: %v", err)
	}
	return cfg
}

func id(s string) component.ID {
	var i component.ID
	if err := i.UnmarshalText([]byte(s)); err != nil {
		panic(err)
	}
	return i
}

func TestAgentConfigIsValid(t *testing.T) {
	cfg := loadAgentConfig(t)

	// Every signal goes through the same chain: memory_limiter first,
	// k8s_attributes before batch (it enriches each resource), one backend.
	for _, sig := range []pipeline.Signal{pipeline.SignalLogs, pipeline.SignalTraces, pipeline.SignalMetrics} {
		p := cfg.Service.Pipelines[pipeline.NewID(sig)]
		if p == nil {
			t.Errorf("no %s pipeline", sig)
			continue
		}
		want := []component.ID{id("memory_limiter"), id("k8s_attributes"), id("batch")}
		if !slices.Equal(p.Processors, want) {
			t.Errorf("%s pipeline processors = %v, want %v", sig, p.Processors, want)
		}
		if !slices.Equal(p.Receivers, []component.ID{id("otlp")}) || !slices.Equal(p.Exporters, []component.ID{id("otlp_grpc/backend")}) {
			t.Errorf("%s pipeline: receivers %v, exporters %v", sig, p.Receivers, p.Exporters)
		}
	}

	k8s := cfg.Processors[id("k8s_attributes")].(*k8sattributesprocessor.Config)
	if k8s.APIConfig.AuthType != "serviceAccount" || k8s.Passthrough || k8s.Filter.NodeFromEnvVar != "K8S_NODE_NAME" || !k8s.WaitForMetadata {
		t.Errorf("k8s_attributes: auth_type %q, passthrough %v, node_from_env_var %q, wait_for_metadata %v",
			k8s.APIConfig.AuthType, k8s.Passthrough, k8s.Filter.NodeFromEnvVar, k8s.WaitForMetadata)
	}
	var assoc []string
	for _, a := range k8s.Association {
		for _, s := range a.Sources {
			assoc = append(assoc, s.From+":"+s.Name)
		}
	}
	if want := []string{"resource_attribute:k8s.pod.uid", "resource_attribute:container.id"}; !slices.Equal(assoc, want) {
		t.Errorf("pod_association = %v, want %v", assoc, want)
	}
	for _, m := range []string{"k8s.pod.name", "k8s.namespace.name", "k8s.node.name", "k8s.deployment.name", "k8s.pod.start_time", "k8s.container.name"} {
		if !slices.Contains(k8s.Extract.Metadata, m) {
			t.Errorf("k8s_attributes does not extract %s", m)
		}
	}

	exp := cfg.Exporters[id("otlp_grpc/backend")].(*otlpexporter.Config)
	if exp.ClientConfig.Endpoint != testBackend || exp.ClientConfig.TLS.Insecure {
		t.Errorf("otlp_grpc/backend: endpoint %q (want $OTLP_BACKEND_ENDPOINT = %q), insecure %v (want the default false)",
			exp.ClientConfig.Endpoint, testBackend, exp.ClientConfig.TLS.Insecure)
	}
	t.Setenv("OTLP_BACKEND_INSECURE", "true")
	cfg, err := loadConfig(t, "file:agent.yaml")
	if err != nil {
		t.Fatalf("agent.yaml with OTLP_BACKEND_INSECURE=true: %v", err)
	}
	if !cfg.Exporters[id("otlp_grpc/backend")].(*otlpexporter.Config).ClientConfig.TLS.Insecure {
		t.Error("OTLP_BACKEND_INSECURE=true did not make otlp_grpc/backend insecure")
	}
}

// TestAgentConfigCatchesMistakes proves the loading above would catch a
// mistake in agent.yaml: copies of it, each with one mistake planted, must
// be refused.
func TestAgentConfigCatchesMistakes(t *testing.T) {
	setAgentEnv(t)
	orig, err := os.ReadFile("agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, old, new, wantErr string }{
		{"misspelt processor type", "\n  k8s_attributes:\n", "\n  k8s_atributes:\n", "unknown type"},
		{"misspelt exporter type", "\n  otlp_grpc/backend:\n", "\n  otlpgrpc/backend:\n", "unknown type"},
		{"unknown option", "    passthrough: false\n", "    passtrough: false\n", "passtrough"},
		{"pipeline names an unconfigured component", "processors: [memory_limiter, k8s_attributes, batch]\n      exporters: [otlp_grpc/backend]\n    traces:",
			"processors: [memory_limiter, k8s_attribute, batch]\n      exporters: [otlp_grpc/backend]\n    traces:", "k8s_attribute"},
		{"invalid memory limit", "spike_limit_percentage: 25", "spike_limit_percentage: 95", "spike_limit_percentage"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if strings.Count(string(orig), c.old) != 1 {
				t.Fatalf("agent.yaml no longer holds %q once", c.old)
			}
			path := filepath.Join(t.TempDir(), "agent.yaml")
			if err := os.WriteFile(path, []byte(strings.Replace(string(orig), c.old, c.new, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := loadConfig(t, "file:"+path)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error = %v, want one naming %q", err, c.wantErr)
			}
			t.Logf("refused: %v", err)
		})
	}

	t.Run("K8S_NODE_NAME unset", func(t *testing.T) {
		os.Unsetenv("K8S_NODE_NAME") // t.Setenv above restores it
		_, err := loadConfig(t, "file:agent.yaml")
		if err == nil || !strings.Contains(err.Error(), "K8S_NODE_NAME") {
			t.Fatalf("error = %v, want one naming K8S_NODE_NAME", err)
		}
	})
}
