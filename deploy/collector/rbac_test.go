package collector

import (
	"os"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// rbacObjects decodes rbac.yaml, strictly: a misspelt field fails.
func rbacObjects(t *testing.T) (*corev1.ServiceAccount, *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding) {
	t.Helper()
	b, err := os.ReadFile("rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var (
		sa      *corev1.ServiceAccount
		role    *rbacv1.ClusterRole
		binding *rbacv1.ClusterRoleBinding
	)
	for doc := range strings.SplitSeq(string(b), "\n---\n") {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("rbac.yaml: %v", err)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ServiceAccount":
			sa = new(corev1.ServiceAccount)
			obj = sa
		case "rbac.authorization.k8s.io/v1 ClusterRole":
			role = new(rbacv1.ClusterRole)
			obj = role
		case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
			binding = new(rbacv1.ClusterRoleBinding)
			obj = binding
		default:
			t.Fatalf("rbac.yaml: unexpected object %s %s", tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("rbac.yaml: %s: %v", tm.Kind, err)
		}
	}
	if sa == nil || role == nil || binding == nil {
		t.Fatal("rbac.yaml lacks a ServiceAccount, ClusterRole or ClusterRoleBinding")
	}
	return sa, role, binding
}

// allows reports whether the rules grant verb on resource of group.
func allows(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	for _, r := range rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
			return true
		}
	}
	return false
}

// TestRBAC checks that rbac.yaml's service account gets, lists and watches
// what k8s_attributes reads, and nothing more than reading.
func TestRBAC(t *testing.T) {
	sa, role, binding := rbacObjects(t)
	for _, gr := range [][2]string{{"", "pods"}, {"", "namespaces"}, {"", "nodes"}, {"apps", "replicasets"}} {
		for _, verb := range []string{"get", "list", "watch"} {
			if !allows(role.Rules, gr[0], gr[1], verb) {
				t.Errorf("ClusterRole %s does not allow %s on %q %s", role.Name, verb, gr[0], gr[1])
			}
		}
	}
	for _, r := range role.Rules {
		for _, verb := range r.Verbs {
			if verb != "get" && verb != "list" && verb != "watch" {
				t.Errorf("ClusterRole %s allows %s", role.Name, verb)
			}
		}
	}
	if binding.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name}) {
		t.Errorf("ClusterRoleBinding refers to %+v, not the ClusterRole %s", binding.RoleRef, role.Name)
	}
	want := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: sa.Namespace}
	if !slices.Contains(binding.Subjects, want) {
		t.Errorf("ClusterRoleBinding subjects %+v lack the ServiceAccount %s/%s", binding.Subjects, sa.Namespace, sa.Name)
	}
}
