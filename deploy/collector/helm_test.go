package collector

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// dropNulls removes the keys whose value is null, as Helm does when it
// merges values into a chart's defaults.
func dropNulls(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if e == nil {
				delete(v, k)
			} else {
				v[k] = dropNulls(e)
			}
		}
	case []any:
		for i, e := range v {
			v[i] = dropNulls(e)
		}
	}
	return v
}

// TestHelmValues checks values-opentelemetry-collector.yaml gives the chart
// agent.yaml's configuration and rbac.yaml's rules. Its `config`, merged by
// the chart into its defaults, is loaded like agent.yaml with agent.yaml's
// otlp receiver standing for the chart's own.
func TestHelmValues(t *testing.T) {
	agent := loadAgentConfig(t)

	b, err := os.ReadFile("values-opentelemetry-collector.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Mode        string
		ClusterRole struct {
			Create bool
			Rules  []rbacv1.PolicyRule
		} `json:"clusterRole"`
		Presets struct {
			KubernetesAttributes struct{ Enabled bool } `json:"kubernetesAttributes"`
		}
		Config map[string]any
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatalf("values: %v", err)
	}
	if values.Mode != "daemonset" || values.Presets.KubernetesAttributes.Enabled {
		t.Errorf("mode %q, kubernetesAttributes preset %v: want a daemonset without the preset", values.Mode, values.Presets.KubernetesAttributes.Enabled)
	}
	_, role, _ := rbacObjects(t)
	if !values.ClusterRole.Create || !reflect.DeepEqual(values.ClusterRole.Rules, role.Rules) {
		t.Errorf("clusterRole (create %v) rules %+v, want rbac.yaml's %+v", values.ClusterRole.Create, values.ClusterRole.Rules, role.Rules)
	}

	cfg := dropNulls(values.Config).(map[string]any)
	receivers, _ := cfg["receivers"].(map[string]any)
	if len(receivers) != 0 {
		t.Errorf("values define receivers %v: the chart's otlp is meant", receivers)
	}
	agentYAML, err := os.ReadFile("agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var agentMap map[string]any
	if err := yaml.Unmarshal(agentYAML, &agentMap); err != nil {
		t.Fatal(err)
	}
	cfg["receivers"] = agentMap["receivers"]
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := loadConfig(t, "file:"+path)
	if err != nil {
		t.Fatalf("the values' config: %v", err)
	}
	if !reflect.DeepEqual(got.Processors, agent.Processors) {
		t.Errorf("the values' processors differ from agent.yaml's")
	}
	if !reflect.DeepEqual(got.Exporters, agent.Exporters) {
		t.Errorf("the values' exporters differ from agent.yaml's")
	}
	if !reflect.DeepEqual(got.Service.Pipelines, agent.Service.Pipelines) {
		t.Errorf("the values' pipelines differ from agent.yaml's")
	}
}
