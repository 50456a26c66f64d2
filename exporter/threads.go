package exporter

import (
	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpwire"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// The attributes of the calling thread repeat from one call of a thread to
// the next. threadCache keeps them encoded, per thread, and encodes them
// again only when one of the values they are made of changes.
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
	ppid, tid, euid, uid, egid, gid uint32
	cgroupID                        uint64
	comm                            string
}

func newThreadKey(ev *bpf.Event) threadKey {
	return threadKey{
		ppid: ev.PPID, tid: ev.TID,
		euid: ev.EUID, uid: ev.UID, egid: ev.EGID, gid: ev.GID,
		cgroupID: ev.CgroupID, comm: ev.Comm,
	}
}

// get returns the encoded attributes of ev's thread. The bytes stay valid
// until the thread's next call.
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

// appendThreadAttrs appends the attributes of the calling thread as the
// call found it: what may change from call to call of one process (its
// credentials, its parent, its cgroup), unlike the process's identity,
// which its resource carries.
func appendThreadAttrs(dst []byte, ev *bpf.Event) []byte {
	dst = otlpwire.AppendIntAttr(dst, string(semconv.ProcessParentPIDKey), int64(ev.PPID))
	dst = otlpwire.AppendIntAttr(dst, string(semconv.ThreadIDKey), int64(ev.TID))
	if ev.Comm != "" {
		dst = otlpwire.AppendStringAttr(dst, string(semconv.ThreadNameKey), ev.Comm)
	}
	dst = otlpwire.AppendIntAttr(dst, string(semconv.ProcessUserIDKey), int64(ev.EUID))
	dst = otlpwire.AppendIntAttr(dst, string(semconv.ProcessRealUserIDKey), int64(ev.UID))
	dst = otlpwire.AppendIntAttr(dst, string(semconv.ProcessGroupIDKey), int64(ev.EGID))
	dst = otlpwire.AppendIntAttr(dst, string(semconv.ProcessRealGroupIDKey), int64(ev.GID))
	if ev.CgroupID != 0 {
		dst = otlpwire.AppendIntAttr(dst, string(semconv.CgroupIDKey), int64(ev.CgroupID))
	}
	return dst
}
