package exporter

import (
	"time"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpwire"
	"github.com/memlock-exporter/memlock-exporter/procfs"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// The attributes of the calling thread and its process (pid through the
// procfs context: about half of a record's bytes) repeat from one call of
// a thread to the next. threadCache keeps them encoded, per thread, and
// encodes them again only when one of the values they are made of changes.
type threadCache struct {
	m map[uint32]*threadEntry
}

// maxThreadCache bounds threadCache; a full cache is emptied and refilled.
const maxThreadCache = 4096

type threadEntry struct {
	key   threadKey
	attrs []byte // an otlpwire attribute list
}

// threadKey is everything appendThreadAttrs reads.
type threadKey struct {
	pid, ppid, tid, euid, uid, egid, gid uint32
	cgroupID                             uint64
	comm, exe                            string
	// process is the process's identity, shared by its events and
	// replaced, not changed, when it changes.
	process *bpf.Process
}

func newThreadKey(ev *bpf.Event) threadKey {
	return threadKey{
		pid: ev.PID, ppid: ev.PPID, tid: ev.TID,
		euid: ev.EUID, uid: ev.UID, egid: ev.EGID, gid: ev.GID,
		cgroupID: ev.CgroupID, comm: ev.Comm, exe: ev.ExeName,
		process: ev.Process,
	}
}

// get returns the encoded attributes of ev's thread and process. The
// bytes stay valid until the thread's next call.
func (c *threadCache) get(ev *bpf.Event) []byte {
	k := newThreadKey(ev)
	te := c.m[ev.TID]
	if te != nil && te.key == k {
		return te.attrs
	}
	if te == nil {
		if c.m == nil || len(c.m) >= maxThreadCache {
			c.m = make(map[uint32]*threadEntry)
		}
		te = &threadEntry{}
		c.m[ev.TID] = te
	}
	te.key = k
	te.attrs = appendThreadAttrs(te.attrs[:0], ev)
	return te.attrs
}

// appendThreadAttrs appends the attributes of the calling thread, as the
// call found it, and of its process, as the kernel read it at the
// process's first call (ev.Process).
func appendThreadAttrs(dst []byte, ev *bpf.Event) []byte {
	dst = otlpwire.AppendIntAttr(dst, string(semconv.ProcessPIDKey), int64(ev.PID))
	dst = otlpwire.AppendIntAttr(dst, string(semconv.ProcessParentPIDKey), int64(ev.PPID))
	dst = otlpwire.AppendIntAttr(dst, string(semconv.ThreadIDKey), int64(ev.TID))
	if ev.Comm != "" {
		dst = otlpwire.AppendStringAttr(dst, string(semconv.ThreadNameKey), ev.Comm)
	}
	if ev.ExeName != "" {
		dst = otlpwire.AppendStringAttr(dst, string(semconv.ProcessExecutableNameKey), ev.ExeName)
	}
	dst = otlpwire.AppendIntAttr(dst, string(semconv.ProcessUserIDKey), int64(ev.EUID))
	dst = otlpwire.AppendIntAttr(dst, string(semconv.ProcessRealUserIDKey), int64(ev.UID))
	dst = otlpwire.AppendIntAttr(dst, string(semconv.ProcessGroupIDKey), int64(ev.EGID))
	dst = otlpwire.AppendIntAttr(dst, string(semconv.ProcessRealGroupIDKey), int64(ev.GID))
	if ev.CgroupID != 0 {
		dst = otlpwire.AppendIntAttr(dst, string(semconv.CgroupIDKey), int64(ev.CgroupID))
	}
	p := ev.Process
	if p == nil {
		return dst
	}
	dst = otlpwire.AppendStringAttr(dst, string(semconv.ProcessCreationTimeKey), p.StartTime.UTC().Format(time.RFC3339Nano))
	if p.ExePath != "" {
		dst = otlpwire.AppendStringAttr(dst, string(semconv.ProcessExecutablePathKey), p.ExePath)
	}
	if len(p.Args) > 0 {
		dst = otlpwire.AppendStringSliceAttr(dst, string(semconv.ProcessCommandArgsKey), p.Args)
	}
	if cg := p.CgroupFile(); cg != "" {
		dst = otlpwire.AppendStringAttr(dst, string(semconv.ProcessLinuxCgroupKey), cg)
	}
	container, pod := containerOf(p)
	if container != "" {
		dst = otlpwire.AppendStringAttr(dst, string(semconv.ContainerIDKey), container)
	}
	if pod != "" {
		dst = otlpwire.AppendStringAttr(dst, string(semconv.K8SPodUIDKey), pod)
	}
	if p.InPIDNamespace {
		dst = otlpwire.AppendIntAttr(dst, string(semconv.ProcessVpidKey), int64(p.VPID))
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
