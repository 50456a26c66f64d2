package procfs

import (
	"strings"
)

// containerScopePrefixes are the unit or directory name prefixes, before
// "-<id>", that container runtimes give a container's cgroup.
var containerScopePrefixes = [...]string{
	"docker",         // Docker, systemd driver (also cri-dockerd under kubepods)
	"cri-containerd", // containerd's CRI plugin, systemd driver
	"containerd",     // containerd, systemd driver
	"nerdctl",        // nerdctl, systemd driver
	"crio",           // CRI-O, systemd driver
	"crio-conmon",    // CRI-O's conmon monitor of that container
	"libpod",         // Podman (systemd driver: .scope; cgroupfs: bare)
	"libpod-conmon",  // Podman's conmon monitor of that container
}

// ContainerID returns the 64-hex container id in a cgroup path, or "".
// It knows Docker, containerd, CRI-O and Podman with cgroup v1 and v2, and
// with the systemd ("docker-<id>.scope") and cgroupfs ("/docker/<id>")
// drivers, also under kubepods. With nested containers the innermost id wins.
// The conmon monitor of a CRI-O or Podman container yields that container's id.
func ContainerID(cgroupPath string) string {
	rest := cgroupPath
	for rest != "" {
		seg := rest
		if i := strings.LastIndexByte(rest, '/'); i >= 0 {
			seg, rest = rest[i+1:], rest[:i]
		} else {
			rest = ""
		}
		if id := containerIDFromSegment(seg); id != "" {
			return id
		}
	}
	return ""
}

// containerIDFromSegment returns the container id one path segment names, or "".
func containerIDFromSegment(seg string) string {
	seg = strings.TrimSuffix(seg, ".scope")
	if isLowerHex(seg, 64) {
		return seg
	}
	i := strings.LastIndexByte(seg, '-')
	if i < 0 || !isLowerHex(seg[i+1:], 64) {
		return ""
	}
	for _, p := range containerScopePrefixes {
		if seg[:i] == p {
			return seg[i+1:]
		}
	}
	return ""
}

// PodUID returns the Kubernetes pod UID in a kubepods cgroup path, or "".
// The cgroupfs driver writes "pod<uid>" under a kubepods directory; the
// systemd driver writes "kubepods-<qos>-pod<uid>.slice" with the UID's
// dashes turned into underscores, which PodUID turns back. Static pods have
// a 32-hex UID, which is returned as it is.
func PodUID(cgroupPath string) string {
	underKubepods := false
	for seg := range strings.SplitSeq(cgroupPath, "/") {
		if name, ok := strings.CutSuffix(seg, ".slice"); ok {
			// systemd driver: [kubelet-]kubepods[-<qos>]-pod<uid>.slice
			i := strings.LastIndex(name, "-pod")
			if i >= 0 && strings.Contains(name[:i], "kubepods") {
				if uid := podUID(strings.ReplaceAll(name[i+len("-pod"):], "_", "-")); uid != "" {
					return uid
				}
			}
			continue
		}
		if strings.HasPrefix(seg, "kubepods") {
			underKubepods = true
			continue
		}
		if underKubepods {
			if s, ok := strings.CutPrefix(seg, "pod"); ok {
				if uid := podUID(s); uid != "" {
					return uid
				}
			}
		}
	}
	return ""
}

// podUID returns s if it is a pod UID: a lower-case UUID, or 32 hex digits.
func podUID(s string) string {
	if isLowerHex(s, 32) {
		return s
	}
	if len(s) != 36 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return ""
			}
		default:
			if !isLowerHexDigit(s[i]) {
				return ""
			}
		}
	}
	return s
}

// isLowerHex reports whether s is exactly n lower-case hex digits.
func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isLowerHexDigit(s[i]) {
			return false
		}
	}
	return true
}

// isLowerHexDigit reports whether c is 0-9 or a-f.
func isLowerHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f'
}
