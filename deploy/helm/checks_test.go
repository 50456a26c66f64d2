package helmchart

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// A check is one property the DaemonSet of every rendering must have.
// TestChecksCatchBugs breaks each in turn to show that it can fail.
type check struct {
	name  string
	check func(ds *appsv1.DaemonSet, w want) error
	// breaks changes a good DaemonSet (of the default values) so that this
	// check, and this one only needs to, fails.
	breaks func(ds *appsv1.DaemonSet)
}

// The read-only host mounts: volume name → mount path in the container.
var hostMounts = map[string]string{
	"btf":     "/sys/kernel/btf",
	"tracefs": "/sys/kernel/tracing",
	"debugfs": "/sys/kernel/debug",
	"cgroup":  "/sys/fs/cgroup",
}

func container(ds *appsv1.DaemonSet) (*corev1.Container, error) {
	cs := ds.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		return nil, fmt.Errorf("%d containers, want 1", len(cs))
	}
	return &cs[0], nil
}

func sc(ds *appsv1.DaemonSet) (*corev1.SecurityContext, error) {
	c, err := container(ds)
	if err != nil {
		return nil, err
	}
	if c.SecurityContext == nil {
		return nil, errors.New("no securityContext")
	}
	return c.SecurityContext, nil
}

func envVar(ds *appsv1.DaemonSet, name string) (*corev1.EnvVar, int, error) {
	c, err := container(ds)
	if err != nil {
		return nil, 0, err
	}
	found, at := (*corev1.EnvVar)(nil), -1
	for i := range c.Env {
		if c.Env[i].Name == name {
			if found != nil {
				return nil, 0, fmt.Errorf("env %s set twice", name)
			}
			found, at = &c.Env[i], i
		}
	}
	if found == nil {
		return nil, 0, fmt.Errorf("env %s not set", name)
	}
	return found, at, nil
}

func envValue(ds *appsv1.DaemonSet, name string) (string, error) {
	e, _, err := envVar(ds, name)
	if err != nil {
		return "", err
	}
	return e.Value, nil
}

func boolIs(p *bool, v bool) bool { return p != nil && *p == v }

// show prints a pointer's value, or <unset>.
func show[T any](p *T) string {
	if p == nil {
		return "<unset>"
	}
	return fmt.Sprint(*p)
}

func mutateContainer(f func(c *corev1.Container)) func(*appsv1.DaemonSet) {
	return func(ds *appsv1.DaemonSet) { f(&ds.Spec.Template.Spec.Containers[0]) }
}

func dropEnv(name string) func(*appsv1.DaemonSet) {
	return mutateContainer(func(c *corev1.Container) {
		c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
	})
}

func setEnv(name, value string) func(*appsv1.DaemonSet) {
	return mutateContainer(func(c *corev1.Container) {
		for i := range c.Env {
			if c.Env[i].Name == name {
				c.Env[i].Value = value
			}
		}
	})
}

func probeCheck(kind, path string, get func(*corev1.Container) *corev1.Probe) func(*appsv1.DaemonSet, want) error {
	return func(ds *appsv1.DaemonSet, w want) error {
		c, err := container(ds)
		if err != nil {
			return err
		}
		p := get(c)
		if !w.health {
			if p != nil {
				return fmt.Errorf("%s probe set with health disabled", kind)
			}
			return nil
		}
		if p == nil || p.HTTPGet == nil {
			return fmt.Errorf("no %s httpGet probe", kind)
		}
		if p.HTTPGet.Path != path {
			return fmt.Errorf("%s probe path %q, want %q", kind, p.HTTPGet.Path, path)
		}
		port := p.HTTPGet.Port
		if port.Type == intstr.String {
			found := false
			for _, cp := range c.Ports {
				if cp.Name == port.StrVal {
					port, found = intstr.FromInt32(cp.ContainerPort), true
				}
			}
			if !found {
				return fmt.Errorf("%s probe port %q names no container port", kind, port.StrVal)
			}
		}
		if port.IntVal != w.port {
			return fmt.Errorf("%s probe on port %d, want %d", kind, port.IntVal, w.port)
		}
		return nil
	}
}

var checks = []check{
	{
		name: "hostPID",
		check: func(ds *appsv1.DaemonSet, _ want) error {
			if !ds.Spec.Template.Spec.HostPID {
				return errors.New("hostPID is not true")
			}
			return nil
		},
		breaks: func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.HostPID = false },
	},
	{
		name: "no host network or IPC",
		check: func(ds *appsv1.DaemonSet, _ want) error {
			if s := ds.Spec.Template.Spec; s.HostNetwork || s.HostIPC {
				return errors.New("hostNetwork or hostIPC set")
			}
			return nil
		},
		breaks: func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.HostNetwork = true },
	},
	{
		name: "not privileged",
		check: func(ds *appsv1.DaemonSet, _ want) error {
			s, err := sc(ds)
			if err != nil {
				return err
			}
			if !boolIs(s.Privileged, false) {
				return fmt.Errorf("privileged = %s, want false", show(s.Privileged))
			}
			return nil
		},
		breaks: mutateContainer(func(c *corev1.Container) { c.SecurityContext.Privileged = new(true) }),
	},
	{
		name: "no privilege escalation",
		check: func(ds *appsv1.DaemonSet, _ want) error {
			s, err := sc(ds)
			if err != nil {
				return err
			}
			if !boolIs(s.AllowPrivilegeEscalation, false) {
				return fmt.Errorf("allowPrivilegeEscalation = %s, want false", show(s.AllowPrivilegeEscalation))
			}
			return nil
		},
		breaks: mutateContainer(func(c *corev1.Container) { c.SecurityContext.AllowPrivilegeEscalation = nil }),
	},
	{
		name: "read-only root filesystem",
		check: func(ds *appsv1.DaemonSet, _ want) error {
			s, err := sc(ds)
			if err != nil {
				return err
			}
			if !boolIs(s.ReadOnlyRootFilesystem, true) {
				return fmt.Errorf("readOnlyRootFilesystem = %s, want true", show(s.ReadOnlyRootFilesystem))
			}
			return nil
		},
		breaks: mutateContainer(func(c *corev1.Container) { c.SecurityContext.ReadOnlyRootFilesystem = new(false) }),
	},
	{
		name: "capabilities drop ALL",
		check: func(ds *appsv1.DaemonSet, _ want) error {
			s, err := sc(ds)
			if err != nil {
				return err
			}
			if s.Capabilities == nil || !slices.Contains(s.Capabilities.Drop, "ALL") {
				return errors.New("capabilities.drop lacks ALL")
			}
			return nil
		},
		breaks: mutateContainer(func(c *corev1.Container) { c.SecurityContext.Capabilities.Drop = []corev1.Capability{"NET_RAW"} }),
	},
	{
		name: "capabilities add BPF and PERFMON, not SYS_ADMIN",
		check: func(ds *appsv1.DaemonSet, w want) error {
			s, err := sc(ds)
			if err != nil {
				return err
			}
			if s.Capabilities == nil {
				return errors.New("no capabilities")
			}
			for _, c := range []corev1.Capability{"BPF", "PERFMON"} {
				if !slices.Contains(s.Capabilities.Add, c) {
					return fmt.Errorf("capabilities.add %v lacks %s", s.Capabilities.Add, c)
				}
			}
			for _, c := range []corev1.Capability{"SYS_ADMIN", "ALL"} {
				if slices.Contains(s.Capabilities.Add, c) {
					return fmt.Errorf("capabilities.add %v has %s", s.Capabilities.Add, c)
				}
			}
			if !slices.Equal(s.Capabilities.Add, w.caps) {
				return fmt.Errorf("capabilities.add %v, want exactly %v", s.Capabilities.Add, w.caps)
			}
			return nil
		},
		breaks: mutateContainer(func(c *corev1.Container) {
			c.SecurityContext.Capabilities.Add = slices.DeleteFunc(c.SecurityContext.Capabilities.Add,
				func(c corev1.Capability) bool { return c == "PERFMON" })
		}),
	},
	{
		name: "runs as uid 0",
		check: func(ds *appsv1.DaemonSet, _ want) error {
			s, err := sc(ds)
			if err != nil {
				return err
			}
			if s.RunAsUser == nil || *s.RunAsUser != 0 {
				return fmt.Errorf("runAsUser = %s, want 0", show(s.RunAsUser))
			}
			return nil
		},
		breaks: mutateContainer(func(c *corev1.Container) { c.SecurityContext.RunAsUser = new(int64(65534)) }),
	},
	{
		name:   "liveness probe on /livez",
		check:  probeCheck("liveness", "/livez", func(c *corev1.Container) *corev1.Probe { return c.LivenessProbe }),
		breaks: mutateContainer(func(c *corev1.Container) { c.LivenessProbe.HTTPGet.Path = "/healthz" }),
	},
	{
		name:   "readiness probe on /readyz",
		check:  probeCheck("readiness", "/readyz", func(c *corev1.Container) *corev1.Probe { return c.ReadinessProbe }),
		breaks: mutateContainer(func(c *corev1.Container) { c.ReadinessProbe.HTTPGet.Port = intstr.FromInt32(1234) }),
	},
	{
		name: "health address",
		check: func(ds *appsv1.DaemonSet, w want) error {
			v, err := envValue(ds, "MEMLOCK_EXPORTER_HEALTH_ADDR")
			if !w.health {
				if err == nil {
					return errors.New("MEMLOCK_EXPORTER_HEALTH_ADDR set with health disabled")
				}
				return nil
			}
			if err != nil {
				return err
			}
			if want := fmt.Sprintf(":%d", w.port); v != want {
				return fmt.Errorf("MEMLOCK_EXPORTER_HEALTH_ADDR = %q, want %q", v, want)
			}
			return nil
		},
		breaks: setEnv("MEMLOCK_EXPORTER_HEALTH_ADDR", "127.0.0.1:8686"),
	},
	{
		name: "memory limit",
		check: func(ds *appsv1.DaemonSet, _ want) error {
			c, err := container(ds)
			if err != nil {
				return err
			}
			lim := c.Resources.Limits.Memory()
			if lim.IsZero() {
				return errors.New("no memory limit")
			}
			if req := c.Resources.Requests.Memory(); req.IsZero() || req.Cmp(*lim) > 0 {
				return fmt.Errorf("memory request %v not within (0, limit %v]", req, lim)
			}
			if c.Resources.Requests.Cpu().IsZero() {
				return errors.New("no cpu request")
			}
			return nil
		},
		breaks: mutateContainer(func(c *corev1.Container) { delete(c.Resources.Limits, corev1.ResourceMemory) }),
	},
	{
		name: "OTLP endpoint",
		check: func(ds *appsv1.DaemonSet, w want) error {
			v, err := envValue(ds, "OTEL_EXPORTER_OTLP_ENDPOINT")
			if err != nil {
				return err
			}
			if v != w.endpoint {
				return fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT = %q, want %q", v, w.endpoint)
			}
			return nil
		},
		breaks: dropEnv("OTEL_EXPORTER_OTLP_ENDPOINT"),
	},
	{
		name: "resource attributes",
		check: func(ds *appsv1.DaemonSet, w want) error {
			v, err := envValue(ds, "OTEL_RESOURCE_ATTRIBUTES")
			if err != nil {
				return err
			}
			attrs := strings.Split(v, ",")
			if !slices.Contains(attrs, "k8s.node.name=$(K8S_NODE_NAME)") {
				return fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES %q lacks k8s.node.name=$(K8S_NODE_NAME)", v)
			}
			hasCluster := strings.Contains(","+v, ",k8s.cluster.name=")
			switch {
			case w.clusterName == "" && hasCluster:
				return fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES %q has k8s.cluster.name, want none", v)
			case w.clusterName != "" && !slices.Contains(attrs, "k8s.cluster.name="+w.clusterName):
				return fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES %q lacks k8s.cluster.name=%s", v, w.clusterName)
			}
			return nil
		},
		breaks: setEnv("OTEL_RESOURCE_ATTRIBUTES", "k8s.node.name=node-1"),
	},
	{
		// The kubelet expands $(NAME) only for variables defined earlier in
		// the list, and leaves the text as it is otherwise.
		name: "downward API variables defined before use",
		check: func(ds *appsv1.DaemonSet, _ want) error {
			for name, field := range map[string]string{"HOST_IP": "status.hostIP", "K8S_NODE_NAME": "spec.nodeName"} {
				e, at, err := envVar(ds, name)
				if err != nil {
					return err
				}
				if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != field {
					return fmt.Errorf("env %s is not the downward API's %s", name, field)
				}
				c, _ := container(ds)
				for i, other := range c.Env {
					if strings.Contains(other.Value, "$("+name+")") && i < at {
						return fmt.Errorf("env %s uses $(%s) before it is defined", other.Name, name)
					}
				}
			}
			return nil
		},
		breaks: mutateContainer(func(c *corev1.Container) { c.Env[0], c.Env[2] = c.Env[2], c.Env[0] }),
	},
	{
		name: "further env",
		check: func(ds *appsv1.DaemonSet, w want) error {
			for name, value := range w.env {
				e, _, err := envVar(ds, name)
				if err != nil {
					return err
				}
				if value == "" {
					if e.ValueFrom == nil {
						return fmt.Errorf("env %s has no valueFrom", name)
					}
				} else if e.Value != value {
					return fmt.Errorf("env %s = %q, want %q", name, e.Value, value)
				}
			}
			last := -1
			for _, name := range w.envOrder {
				_, at, err := envVar(ds, name)
				if err != nil {
					return err
				}
				if at < last {
					return fmt.Errorf("env %s out of order (want %v)", name, w.envOrder)
				}
				last = at
			}
			if w.queue == "" {
				if _, _, err := envVar(ds, "MEMLOCK_EXPORTER_QUEUE_DIR"); err == nil {
					return errors.New("MEMLOCK_EXPORTER_QUEUE_DIR set with the queue disabled")
				}
			}
			return nil
		},
		breaks: mutateContainer(func(c *corev1.Container) {
			c.Env = append(c.Env, corev1.EnvVar{Name: "MEMLOCK_EXPORTER_QUEUE_DIR", Value: "/tmp"})
		}),
	},
	{
		name: "host mounts present and read-only",
		check: func(ds *appsv1.DaemonSet, _ want) error {
			c, err := container(ds)
			if err != nil {
				return err
			}
			for vol, mountPath := range hostMounts {
				i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == vol })
				if i < 0 {
					return fmt.Errorf("volume %s not mounted", vol)
				}
				m := c.VolumeMounts[i]
				if m.MountPath != mountPath || !m.ReadOnly {
					return fmt.Errorf("volume %s mounted at %s readOnly=%v, want %s read-only", vol, m.MountPath, m.ReadOnly, mountPath)
				}
				j := slices.IndexFunc(ds.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == vol })
				if j < 0 {
					return fmt.Errorf("no volume %s", vol)
				}
				hp := ds.Spec.Template.Spec.Volumes[j].HostPath
				if hp == nil || hp.Path != mountPath {
					return fmt.Errorf("volume %s is not hostPath %s", vol, mountPath)
				}
			}
			return nil
		},
		breaks: mutateContainer(func(c *corev1.Container) { c.VolumeMounts[1].ReadOnly = false }),
	},
	{
		name: "no hostPath of / or /proc; only the queue writable",
		check: func(ds *appsv1.DaemonSet, w want) error {
			c, err := container(ds)
			if err != nil {
				return err
			}
			for _, v := range ds.Spec.Template.Spec.Volumes {
				if v.HostPath == nil {
					continue
				}
				p := filepath.Clean(v.HostPath.Path)
				if p == "/" || p == "/proc" || strings.HasPrefix(p, "/proc/") || p == "/etc" || p == "/var/run" || p == "/run" {
					return fmt.Errorf("volume %s mounts the host's %s", v.Name, p)
				}
			}
			for _, m := range c.VolumeMounts {
				if !m.ReadOnly && m.Name != "queue" {
					return fmt.Errorf("volume %s mounted writable", m.Name)
				}
			}
			return nil
		},
		breaks: func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Volumes[0].HostPath.Path = "/"
		},
	},
	{
		name: "queue volume",
		check: func(ds *appsv1.DaemonSet, w want) error {
			c, err := container(ds)
			if err != nil {
				return err
			}
			i := slices.IndexFunc(ds.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "queue" })
			j := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "queue" })
			if w.queue == "" {
				if i >= 0 || j >= 0 {
					return errors.New("queue volume with the queue disabled")
				}
				return nil
			}
			if i < 0 || j < 0 {
				return errors.New("no queue volume or mount")
			}
			v, m := ds.Spec.Template.Spec.Volumes[i], c.VolumeMounts[j]
			if (w.queue == "emptyDir") != (v.EmptyDir != nil) || (w.queue == "hostPath") != (v.HostPath != nil) {
				return fmt.Errorf("queue volume is not a %s", w.queue)
			}
			if m.ReadOnly {
				return errors.New("queue mounted read-only")
			}
			dir, err := envValue(ds, "MEMLOCK_EXPORTER_QUEUE_DIR")
			if err != nil {
				return err
			}
			if dir != m.MountPath {
				return fmt.Errorf("MEMLOCK_EXPORTER_QUEUE_DIR %q is not the queue's mount %q", dir, m.MountPath)
			}
			return nil
		},
		breaks: func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Volumes = append(ds.Spec.Template.Spec.Volumes,
				corev1.Volume{Name: "queue", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		},
	},
	{
		name: "tolerates every taint",
		check: func(ds *appsv1.DaemonSet, _ want) error {
			for _, t := range ds.Spec.Template.Spec.Tolerations {
				if t.Operator == corev1.TolerationOpExists && t.Key == "" && t.Effect == "" {
					return nil
				}
			}
			return fmt.Errorf("no toleration {operator: Exists} in %v", ds.Spec.Template.Spec.Tolerations)
		},
		breaks: func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Tolerations[0].Key = "node-role.kubernetes.io/control-plane"
		},
	},
	{
		name: "rolling update and priority class",
		check: func(ds *appsv1.DaemonSet, _ want) error {
			if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType {
				return fmt.Errorf("updateStrategy %q, want RollingUpdate", ds.Spec.UpdateStrategy.Type)
			}
			if ds.Spec.Template.Spec.PriorityClassName != "system-node-critical" {
				return fmt.Errorf("priorityClassName %q, want system-node-critical", ds.Spec.Template.Spec.PriorityClassName)
			}
			return nil
		},
		breaks: func(ds *appsv1.DaemonSet) { ds.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType },
	},
	{
		name: "service account without token",
		check: func(ds *appsv1.DaemonSet, w want) error {
			s := ds.Spec.Template.Spec
			if s.ServiceAccountName != w.sa {
				return fmt.Errorf("serviceAccountName %q, want %q", s.ServiceAccountName, w.sa)
			}
			if !boolIs(s.AutomountServiceAccountToken, false) {
				return errors.New("automountServiceAccountToken is not false")
			}
			return nil
		},
		breaks: func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.AutomountServiceAccountToken = nil },
	},
	{
		name: "selector matches the pod labels",
		check: func(ds *appsv1.DaemonSet, _ want) error {
			if ds.Spec.Selector == nil || len(ds.Spec.Selector.MatchLabels) == 0 {
				return errors.New("no selector")
			}
			for k, v := range ds.Spec.Selector.MatchLabels {
				if ds.Spec.Template.Labels[k] != v {
					return fmt.Errorf("pod label %s=%q, selector wants %q", k, ds.Spec.Template.Labels[k], v)
				}
			}
			for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by"} {
				if ds.Labels[k] == "" {
					return fmt.Errorf("label %s missing", k)
				}
			}
			return nil
		},
		breaks: func(ds *appsv1.DaemonSet) { ds.Spec.Template.Labels["app.kubernetes.io/instance"] = "other" },
	},
}

// TestChecksCatchBugs shows that each check can fail: it passes on the
// DaemonSet of the default values and fails once its bug is planted.
func TestChecksCatchBugs(t *testing.T) {
	r, err := Render(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	manifest := r.Manifest
	fresh := func(t *testing.T) *appsv1.DaemonSet {
		for _, o := range decodeAll(t, manifest) {
			if ds, ok := o.(*appsv1.DaemonSet); ok {
				return ds
			}
		}
		t.Fatal("no DaemonSet")
		return nil
	}
	for _, ch := range checks {
		t.Run(ch.name, func(t *testing.T) {
			if err := ch.check(fresh(t), defaultWant); err != nil {
				t.Fatalf("fails on the good DaemonSet: %v", err)
			}
			ds := fresh(t)
			ch.breaks(ds)
			err := ch.check(ds, defaultWant)
			if err == nil {
				t.Fatal("passes with its bug planted")
			}
			t.Logf("planted bug caught: %v", err)
		})
	}
}
