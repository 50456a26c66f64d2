package exporter

import (
	"path"
	"time"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpwire"
	"github.com/memlock-exporter/memlock-exporter/procfs"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// processResource is what a process's records and spans are grouped under
// in an export request: the process's identity, as resource attributes
// beside the host's, so that a collector can associate them with a pod or
// container (the k8sattributes processor looks at resource attributes
// only). It is encoded once per process and never changed: a batch waiting
// to be sent may hold it after the cache has let it go.
type processResource struct {
	attrs []byte // an otlpwire attribute list
}

// attributes returns r's attribute list; none for a nil r.
func (r *processResource) attributes() []byte {
	if r == nil {
		return nil
	}
	return r.attrs
}

// processCache keeps the resources of the processes seen lately. A full
// cache is emptied and refilled; a process met again then gets a new,
// equal resource.
type processCache struct {
	// m is keyed by pid alone, which hashes faster than the whole key;
	// an entry whose key differs is replaced.
	m    map[uint32]*processEntry
	last *processEntry // a process's calls tend to come in runs
}

type processEntry struct {
	key      processKey
	resource *processResource
}

const maxProcessCache = 4096

// processKey is everything appendProcessAttrs reads.
type processKey struct {
	pid     uint32
	startNs uint64
	exe     string
	// process is the identity the kernel read, shared by the process's
	// events and replaced, not changed, when it changes.
	process *bpf.Process
}

// get returns the resource of ev's process.
func (c *processCache) get(ev *bpf.Event) *processResource {
	k := processKey{pid: ev.PID, startNs: ev.StartNs, exe: ev.ExeName, process: ev.Process}
	if c.last != nil && c.last.key == k {
		return c.last.resource
	}
	e := c.m[ev.PID]
	if e == nil || e.key != k {
		if c.m == nil || len(c.m) >= maxProcessCache {
			c.m = make(map[uint32]*processEntry)
		}
		// A new entry, not the old one changed: the resource of the
		// last is still in use.
		e = &processEntry{key: k, resource: newProcessResource(ev.PID, ev.ExeName, ev.Process)}
		c.m[ev.PID] = e
	}
	c.last = e
	return e.resource
}

// newProcessResource encodes the identity of process pid, named exe, as
// the kernel read it at its first call (p; nil when the daemon did not
// get it, and then only pid and exe name it).
func newProcessResource(pid uint32, exe string, p *bpf.Process) *processResource {
	return &processResource{attrs: appendProcessAttrs(nil, pid, exe, p)}
}

// appendProcessAttrs appends the attributes of
// semconv.ProcessResourceAttributes, in that order, that the process has.
// The executable's name is the base name of its path, as the semantic
// conventions define it, when the kernel read the path; else exe, the
// main thread's comm (at most 15 bytes).
func appendProcessAttrs(dst []byte, pid uint32, exe string, p *bpf.Process) []byte {
	dst = otlpwire.AppendIntAttr(dst, string(semconv.ProcessPIDKey), int64(pid))
	if p != nil {
		dst = otlpwire.AppendStringAttr(dst, string(semconv.ProcessCreationTimeKey), p.StartTime.UTC().Format(time.RFC3339Nano))
		if p.ExePath != "" {
			exe = path.Base(p.ExePath)
		}
	}
	if exe != "" {
		dst = otlpwire.AppendStringAttr(dst, string(semconv.ProcessExecutableNameKey), exe)
	}
	if p == nil {
		return dst
	}
	if p.ExePath != "" {
		dst = otlpwire.AppendStringAttr(dst, string(semconv.ProcessExecutablePathKey), p.ExePath)
	}
	if len(p.Args) > 0 {
		dst = otlpwire.AppendStringSliceAttr(dst, string(semconv.ProcessCommandArgsKey), p.Args)
	}
	if cg := p.CgroupFile(); cg != "" {
		dst = otlpwire.AppendStringAttr(dst, string(semconv.ProcessLinuxCgroupKey), cg)
	}
	if p.InPIDNamespace {
		dst = otlpwire.AppendIntAttr(dst, string(semconv.ProcessVpidKey), int64(p.VPID))
	}
	container, pod := containerOf(p)
	if container != "" {
		dst = otlpwire.AppendStringAttr(dst, string(semconv.ContainerIDKey), container)
	}
	if pod != "" {
		dst = otlpwire.AppendStringAttr(dst, string(semconv.K8SPodUIDKey), pod)
	}
	return dst
}

// containerOf finds the container and pod a process's cgroups name, in
// cgroup v2 first, then in the v1 hierarchies: on a hybrid host a container
// runtime may name it in one and not the other.
func containerOf(p *bpf.Process) (container, pod string) {
	for i := len(p.Cgroups) - 1; i >= 0; i-- {
		path := p.Cgroups[i].Path
		if container == "" {
			container = procfs.ContainerID(path)
		}
		if pod == "" {
			pod = procfs.PodUID(path)
		}
	}
	return container, pod
}
