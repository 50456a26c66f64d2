package procfs

import (
	"strings"
	"testing"
)

// Container ids and pod UIDs used in the layouts below.
const (
	id1    = "3f4a6b0c2d1e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a"
	id2    = "9c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d"
	uid    = "0b5c7d3e-1f2a-4b6c-8d9e-0f1a2b3c4d5e"
	uidSD  = "0b5c7d3e_1f2a_4b6c_8d9e_0f1a2b3c4d5e" // systemd driver spelling
	uidHex = "6e4c8b2a9d0f1e3c5b7a9d8c6e4f2a1b"     // static pod: config hash
)

// cgroupLayout is one real-looking cgroup path with what it should yield.
type cgroupLayout struct {
	name, path, container, pod string
}

var cgroupLayouts = []cgroupLayout{
	// Docker.
	{"docker v1 cgroupfs", "/docker/" + id1, id1, ""},
	{"docker v2 systemd", "/system.slice/docker-" + id1 + ".scope", id1, ""},
	{"docker systemd, systemd inside the container", "/system.slice/docker-" + id1 + ".scope/init.scope", id1, ""},
	{"docker rootless systemd", "/user.slice/user-1000.slice/user@1000.service/user.slice/docker-" + id1 + ".scope", id1, ""},
	{"docker in docker: innermost wins", "/docker/" + id2 + "/docker/" + id1, id1, ""},
	{"ecs task", "/ecs/8a0c1b3e5d7f4a2c9e6b1d3f5a7c9e0b/" + id1, id1, ""},
	// containerd and nerdctl.
	{"containerd cgroupfs namespace dir", "/containerd/" + id1, id1, ""},
	{"containerd k8s.io namespace cgroupfs", "/k8s.io/" + id1, id1, ""},
	{"nerdctl systemd", "/system.slice/nerdctl-" + id1 + ".scope", id1, ""},
	// Kubernetes, cgroupfs driver (v1 and v2 look alike).
	{"k8s cgroupfs burstable", "/kubepods/burstable/pod" + uid + "/" + id1, id1, uid},
	{"k8s cgroupfs besteffort", "/kubepods/besteffort/pod" + uid + "/" + id1, id1, uid},
	{"k8s cgroupfs guaranteed", "/kubepods/pod" + uid + "/" + id1, id1, uid},
	{"k8s cgroupfs static pod", "/kubepods/burstable/pod" + uidHex + "/" + id1, id1, uidHex},
	{"k8s cgroupfs pod level, no container", "/kubepods/burstable/pod" + uid, "", uid},
	// Kubernetes, systemd driver.
	{"k8s systemd containerd burstable",
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSD + ".slice/cri-containerd-" + id1 + ".scope", id1, uid},
	{"k8s systemd containerd guaranteed",
		"/kubepods.slice/kubepods-pod" + uidSD + ".slice/cri-containerd-" + id1 + ".scope", id1, uid},
	{"k8s systemd cri-o besteffort",
		"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidSD + ".slice/crio-" + id1 + ".scope", id1, uid},
	{"k8s systemd cri-o conmon",
		"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidSD + ".slice/crio-conmon-" + id1 + ".scope", id1, uid},
	{"k8s systemd cri-o container subgroup",
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSD + ".slice/crio-" + id1 + ".scope/container", id1, uid},
	{"k8s systemd cri-dockerd",
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSD + ".slice/docker-" + id1 + ".scope", id1, uid},
	{"k8s systemd static pod",
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidHex + ".slice/cri-containerd-" + id1 + ".scope", id1, uidHex},
	{"kind node: kubelet.slice inside a docker container",
		"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + uidSD + ".slice/cri-containerd-" + id1 + ".scope", id1, uid},
	// Podman.
	{"podman rootful systemd", "/machine.slice/libpod-" + id1 + ".scope", id1, ""},
	{"podman rootful container subgroup", "/machine.slice/libpod-" + id1 + ".scope/container", id1, ""},
	{"podman rootless", "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id1 + ".scope", id1, ""},
	{"podman conmon", "/machine.slice/libpod-conmon-" + id1 + ".scope", id1, ""},
	{"podman cgroupfs", "/libpod_parent/libpod-" + id1, id1, ""},
	// Not containers, not pods.
	{"root", "/", "", ""},
	{"empty", "", "", ""},
	{"init.scope", "/init.scope", "", ""},
	{"systemd service", "/system.slice/sshd.service", "", ""},
	{"docker daemon itself", "/system.slice/docker.service", "", ""},
	{"containerd daemon itself", "/system.slice/containerd.service", "", ""},
	{"user session", "/user.slice/user-1000.slice/session-3.scope", "", ""},
	{"user service", "/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-0c9f5f64-1f3b-4a35-8f36-39f8f7a7b3b1.scope", "", ""},
	{"systemd-run transient scope", "/system.slice/run-r5b1d3f8a0c2e4f6a8b9c1d3e5f7a9b0c.scope", "", ""},
	{"mount unit naming an id", "/system.slice/var-lib-docker-containers-" + id1 + "-mounts-shm.mount", "", ""},
	{"unknown runtime prefix", "/system.slice/foo-" + id1 + ".scope", "", ""},
	{"63 hex digits", "/docker/" + id1[:63], "", ""},
	{"65 hex digits", "/docker/" + id1 + "0", "", ""},
	{"upper-case hex", "/docker/" + strings.ToUpper(id1), "", ""},
	{"kubepods qos level only", "/kubepods/burstable", "", ""},
	{"kubepods slice qos level only", "/kubepods.slice/kubepods-burstable.slice", "", ""},
	{"pod dir outside kubepods", "/pods/pod" + uid + "/x", "", ""},
	{"pod slice outside kubepods", "/machine.slice/machine-pod" + uidSD + ".slice", "", ""},
	{"pod dir with bad uid", "/kubepods/burstable/podnot-a-uid/x", "", ""},
	{"pod slice with bad uid", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSD[:35] + ".slice", "", ""},
	{"this machine's sandbox", "/process_api/aeddc481d05255d2794f24c1a8d2c40b", "", ""},
	{"garbage", "not a cgroup path at all", "", ""},
}

func TestContainerID(t *testing.T) {
	for _, tt := range cgroupLayouts {
		t.Run(tt.name, func(t *testing.T) {
			if got := ContainerID(tt.path); got != tt.container {
				t.Errorf("ContainerID(%q) = %q, want %q", tt.path, got, tt.container)
			}
		})
	}
}

func TestPodUID(t *testing.T) {
	for _, tt := range cgroupLayouts {
		t.Run(tt.name, func(t *testing.T) {
			if got := PodUID(tt.path); got != tt.pod {
				t.Errorf("PodUID(%q) = %q, want %q", tt.path, got, tt.pod)
			}
		})
	}
}
