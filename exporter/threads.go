package exporter

import (
	"unsafe"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpwire"
	"github.com/memlock-exporter/memlock-exporter/procfs"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// Processes looks up what procfs shows of a process: its executable path,
// arguments, cgroup, container and PID namespace. Get reports false when the
// process is gone (it exited before it was looked at); its events then carry
// only what the kernel reported. Get is called once per event, from Handle,
// so it must be cheap when it answers from memory. *procfs.Cache satisfies
// it.
type Processes interface {
	Get(pid uint32) (procfs.Info, bool)
}

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
	info                                 bool
	exePath, cgroupPath, container, pod  string
	// args is the argument vector's backing array, which the procfs cache
	// shares among the answers for one process: comparing it is cheaper
	// than comparing the arguments.
	args           *string
	nargs          int
	vpid           uint32
	inPIDNamespace bool
}

func newThreadKey(ev *bpf.Event, info *procfs.Info) threadKey {
	k := threadKey{
		pid: ev.PID, ppid: ev.PPID, tid: ev.TID,
		euid: ev.EUID, uid: ev.UID, egid: ev.EGID, gid: ev.GID,
		cgroupID: ev.CgroupID, comm: ev.Comm, exe: ev.ExeName,
	}
	if info != nil {
		k.info = true
		k.exePath, k.cgroupPath, k.container, k.pod = info.ExePath, info.CgroupPath, info.ContainerID, info.PodUID
		k.args, k.nargs = unsafe.SliceData(info.CommandArgs), len(info.CommandArgs)
		k.vpid, k.inPIDNamespace = info.VPID, info.InPIDNamespace
	}
	return k
}

// get returns the encoded attributes of ev's thread and process, with
// info, the process's context from procfs (nil when unknown). The bytes
// stay valid until the thread's next call.
func (c *threadCache) get(ev *bpf.Event, info *procfs.Info) []byte {
	k := newThreadKey(ev, info)
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
	te.attrs = appendThreadAttrs(te.attrs[:0], ev, info)
	return te.attrs
}

// appendThreadAttrs appends the attributes of the calling thread and its
// process: the kernel's view, then procfs's.
func appendThreadAttrs(dst []byte, ev *bpf.Event, info *procfs.Info) []byte {
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
	if info == nil {
		return dst
	}
	if info.ExePath != "" {
		dst = otlpwire.AppendStringAttr(dst, string(semconv.ProcessExecutablePathKey), info.ExePath)
	}
	if len(info.CommandArgs) > 0 {
		dst = otlpwire.AppendStringSliceAttr(dst, string(semconv.ProcessCommandArgsKey), info.CommandArgs)
	}
	if info.CgroupPath != "" {
		// semconv decides the value's form ("0::<path>"); a thread's
		// attributes are encoded rarely enough for its allocation.
		dst = otlpwire.AppendAttrs(dst, semconv.ProcessLinuxCgroup(info.CgroupPath))
	}
	if info.ContainerID != "" {
		dst = otlpwire.AppendStringAttr(dst, string(semconv.ContainerIDKey), info.ContainerID)
	}
	if info.PodUID != "" {
		dst = otlpwire.AppendStringAttr(dst, string(semconv.K8SPodUIDKey), info.PodUID)
	}
	if info.InPIDNamespace {
		dst = otlpwire.AppendIntAttr(dst, string(semconv.ProcessVpidKey), int64(info.VPID))
	}
	return dst
}
