package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Layout of struct process_record and struct cgroup_record in
// c/memlock.h; decode_test.go checks it against the compiled object.
const (
	pathDepth     = 16
	pathNameLen   = 128
	argsLen       = 512
	cgroupSlots   = 16
	cgroupPathLen = 512

	offProcStartNs   = 0
	offProcCgroupID  = 8
	offProcPID       = 16
	offProcVPID      = 20
	offProcPIDLevel  = 24
	offProcPathDepth = 28
	offProcPathFlags = 32
	offProcArgsLen   = 36
	offProcExeMntID  = 40
	offProcReserved  = 44
	offProcV1Hier    = 48
	offProcV1IDs     = offProcV1Hier + 4*cgroupSlots
	offProcComps     = offProcV1IDs + 8*cgroupSlots
	offProcArgs      = offProcComps + pathDepth*pathNameLen

	// ProcessRecordSize is the size of a process's identity record.
	ProcessRecordSize = offProcArgs + argsLen

	offCgID        = 0
	offCgHierarchy = 8
	offCgOp        = 12
	offCgPath      = 16

	// CgroupRecordSize is the size of a cgroup's record.
	CgroupRecordSize = offCgPath + cgroupPathLen

	pathTruncated = 1
	pathNone      = 2

	cgroupMkdir = 1
	cgroupRmdir = 2
)

// Process is a process's identity, as the kernel read it at the process's
// first traced call, and again after an exec or a move to another cgroup
// v2: what names the process after it is gone. The events of one process
// share one Process: treat it as read-only.
type Process struct {
	PID uint32
	// StartNs is the process's start on the boot clock, StartTime on the
	// wall clock (process.creation.time).
	StartNs   uint64
	StartTime time.Time
	// VPID is the pid in the process's own PID namespace; InPIDNamespace
	// reports that this namespace is not the initial one.
	VPID           uint32
	InPIDNamespace bool
	// ExePath is the executable's path in the process's mount namespace,
	// as /proc/<pid>/exe shows it; "" for a kernel thread. With
	// ExePathTruncated it lacks its top directories (deeper than 16) or
	// has a name cut short (beyond 127 bytes).
	ExePath          string
	ExePathTruncated bool
	// ExeName is ExePath's last element cut to ExeNameMax-1 bytes, as the
	// kernel would put it in a call's record: calls of a process whose
	// identity the reader has take it from here (Event.ExeName).
	ExeName string
	// Args is the argument vector, at most its first 512 bytes; nil
	// unless the reader was asked for it.
	Args []string
	// CgroupID is the id of the process's cgroup v2.
	CgroupID uint64
	// Cgroups are the process's cgroups as /proc/<pid>/cgroup lists them:
	// one per cgroup v1 hierarchy of a controller, then cgroup v2's. A path
	// is "" when the reader could not learn it.
	Cgroups []Cgroup
}

// Cgroup is a process's cgroup in one hierarchy.
type Cgroup struct {
	Hierarchy   int    // 0: cgroup v2
	Controllers string // as /proc/<pid>/cgroup names them, "" for cgroup v2
	ID          uint64
	Path        string // from the hierarchy's root, e.g. "/system.slice/x.service"
}

// CgroupFile renders p.Cgroups as /proc/<pid>/cgroup does: one
// "hierarchy:controllers:path" line each, highest hierarchy first.
// Hierarchies whose path is unknown are left out.
func (p *Process) CgroupFile() string {
	var b strings.Builder
	for _, c := range p.Cgroups {
		if c.Path == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(strconv.Itoa(c.Hierarchy))
		b.WriteByte(':')
		b.WriteString(c.Controllers)
		b.WriteByte(':')
		b.WriteString(c.Path)
	}
	return b.String()
}

// Decode errors of identity records.
var (
	ErrPathDepth = errors.New("process record has more path components than it holds")
	ErrArgsLen   = errors.New("process record has more argument bytes than it holds")
	ErrCgroupOp  = errors.New("cgroup record names an unknown operation")
)

// processRecord is a process_record, decoded but not yet resolved: its
// cgroups are ids.
type processRecord struct {
	pid, vpid, level  uint32
	startNs, cgroupID uint64
	exePath           string
	truncated         bool
	args              []string
	v1Hierarchies     [cgroupSlots]uint32
	v1IDs             [cgroupSlots]uint64
	noExecFile        bool
	exeMountID        uint32 // the mount exePath starts at the root of
}

func decodeProcess(raw []byte) (processRecord, error) {
	var r processRecord
	if len(raw) != ProcessRecordSize {
		return r, ErrRecordSize
	}
	le := binary.LittleEndian
	r.startNs = le.Uint64(raw[offProcStartNs:])
	r.cgroupID = le.Uint64(raw[offProcCgroupID:])
	r.pid = le.Uint32(raw[offProcPID:])
	r.vpid = le.Uint32(raw[offProcVPID:])
	r.level = le.Uint32(raw[offProcPIDLevel:])
	depth := le.Uint32(raw[offProcPathDepth:])
	flags := le.Uint32(raw[offProcPathFlags:])
	nargs := le.Uint32(raw[offProcArgsLen:])
	if depth > pathDepth {
		return r, ErrPathDepth
	}
	if nargs > argsLen {
		return r, ErrArgsLen
	}
	for i := range cgroupSlots {
		r.v1Hierarchies[i] = le.Uint32(raw[offProcV1Hier+4*i:])
		r.v1IDs[i] = le.Uint64(raw[offProcV1IDs+8*i:])
	}
	r.noExecFile = flags&pathNone != 0
	r.truncated = flags&pathTruncated != 0
	r.exeMountID = le.Uint32(raw[offProcExeMntID:])
	if !r.noExecFile {
		// The components come leaf first.
		var b strings.Builder
		for i := int(depth) - 1; i >= 0; i-- {
			b.WriteByte('/')
			b.Write(cBytes(raw[offProcComps+i*pathNameLen : offProcComps+(i+1)*pathNameLen]))
		}
		if depth == 0 {
			b.WriteByte('/')
		}
		r.exePath = b.String()
	}
	if nargs > 0 { // only when the tracer was asked for arguments
		r.args = splitArgs(raw[offProcArgs : offProcArgs+int(nargs)])
	}
	return r, nil
}

// splitArgs splits the NUL-separated argument area of a process: the
// kernel keeps each argument NUL-terminated; a cut-off last one is kept.
func splitArgs(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte{0})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}

// cgroupRecord is a cgroup_record, decoded.
type cgroupRecord struct {
	id        uint64
	hierarchy uint32
	removed   bool
	path      string
}

func decodeCgroup(raw []byte) (cgroupRecord, error) {
	var r cgroupRecord
	if len(raw) != CgroupRecordSize {
		return r, ErrRecordSize
	}
	le := binary.LittleEndian
	r.id = le.Uint64(raw[offCgID:])
	r.hierarchy = le.Uint32(raw[offCgHierarchy:])
	switch le.Uint32(raw[offCgOp:]) {
	case cgroupMkdir:
	case cgroupRmdir:
		r.removed = true
	default:
		return r, ErrCgroupOp
	}
	r.path = string(cBytes(raw[offCgPath : offCgPath+cgroupPathLen]))
	return r, nil
}

// identities keeps what the reader knows of processes and cgroups: the
// processes' identities by pid, and the cgroups' paths by hierarchy and id.
// Not safe for concurrent use: the reader's goroutine owns it.
type identities struct {
	procs   *simplelru.LRU[uint32, *Process]
	cgroups *cgroupIndex
	mounts  *mountTable
	clock   *BootClock
	stats   IdentityStats
	// forget, if set, makes the kernel send a process's identity again,
	// at its next call.
	forget func(pid uint32)
}

// IdentityStats count what the reader did with processes' identities.
type IdentityStats struct {
	Processes uint64 // identity records read
	Evicted   uint64 // identities dropped to stay within the table's size
	Unknown   uint64 // call records of a process whose identity the reader did not have
	Cgroups   int    // cgroups whose path the reader knows
}

func newIdentities(size int, cgroups *cgroupIndex, mounts *mountTable, clock *BootClock) (*identities, error) {
	id := &identities{cgroups: cgroups, mounts: mounts, clock: clock}
	lru, err := simplelru.NewLRU[uint32, *Process](size, func(pid uint32, _ *Process) {
		id.stats.Evicted++
		// The kernel sends a call's executable name only when it has not
		// sent the identity: make it send both again.
		if id.forget != nil {
			id.forget(pid)
		}
	})
	if err != nil {
		return nil, err
	}
	id.procs = lru
	return id, nil
}

// addProcess resolves r into a Process and makes it pid's.
func (id *identities) addProcess(r *processRecord) {
	p := &Process{
		PID:              r.pid,
		StartNs:          r.startNs,
		VPID:             r.vpid,
		InPIDNamespace:   r.level > 0,
		ExePath:          id.mounts.path(r.exeMountID, r.exePath),
		ExePathTruncated: r.truncated,
		ExeName:          exeName(r.exePath),
		Args:             r.args,
		CgroupID:         r.cgroupID,
	}
	if id.clock != nil {
		p.StartTime = id.clock.WallTime(r.startNs)
	}
	p.Cgroups = id.cgroups.resolve(r)
	id.stats.Processes++
	id.procs.Add(r.pid, p)
}

// exeName is the executable's name as a call's record has it: the last
// element of its path, cut to ExeNameMax-1 bytes; "" for none.
func exeName(path string) string {
	name := path[strings.LastIndexByte(path, '/')+1:]
	if len(name) > ExeNameMax-1 {
		name = name[:ExeNameMax-1]
	}
	return name
}

// lookup returns the identity of the process that made ev, nil if unknown.
func (id *identities) lookup(ev *Event) *Process {
	p, ok := id.procs.Get(ev.PID)
	if ok && p.StartNs == ev.StartNs {
		return p
	}
	id.stats.Unknown++
	if id.forget != nil {
		id.forget(ev.PID)
	}
	return nil
}

// cgroupIndex names cgroups by hierarchy and id: seeded from cgroupfs at
// start, kept up to date by the kernel's cgroup records.
type cgroupIndex struct {
	paths       map[cgroupKey]string
	controllers map[uint32]string // hierarchy id -> its controllers, as /proc/<pid>/cgroup names them
	// lookupFS, if set, finds a cgroup in cgroupfs that neither the seed
	// nor a record named (a record lost to a full ring buffer).
	lookupFS func(hierarchy uint32, id uint64) (string, bool)
}

type cgroupKey struct {
	hierarchy uint32
	id        uint64
}

// maxCgroups bounds the index; a host has a few thousand cgroups at most.
const maxCgroups = 1 << 20

func newCgroupIndex() *cgroupIndex {
	return &cgroupIndex{paths: make(map[cgroupKey]string), controllers: make(map[uint32]string)}
}

func (c *cgroupIndex) apply(r *cgroupRecord) {
	k := cgroupKey{r.hierarchy, r.id}
	if r.removed {
		// The identities resolved already keep the path; no process can
		// be in the cgroup any more.
		delete(c.paths, k)
		return
	}
	if len(c.paths) < maxCgroups {
		c.paths[k] = r.path
	}
}

func (c *cgroupIndex) path(hierarchy uint32, id uint64) string {
	if p, ok := c.paths[cgroupKey{hierarchy, id}]; ok {
		return p
	}
	if c.lookupFS != nil {
		if p, ok := c.lookupFS(hierarchy, id); ok {
			if len(c.paths) < maxCgroups {
				c.paths[cgroupKey{hierarchy, id}] = p
			}
			return p
		}
	}
	return ""
}

// resolve names the cgroups of a process record, as /proc/<pid>/cgroup
// lists them: each cgroup v1 hierarchy once, highest first, then cgroup v2.
func (c *cgroupIndex) resolve(r *processRecord) []Cgroup {
	var out []Cgroup
	for i, h := range r.v1Hierarchies {
		if h == 0 || r.v1IDs[i] == 0 || slices.ContainsFunc(out, func(g Cgroup) bool { return g.Hierarchy == int(h) }) {
			continue // on cgroup v2, not compiled in, or seen
		}
		out = append(out, Cgroup{Hierarchy: int(h), Controllers: c.controllers[h], ID: r.v1IDs[i], Path: c.path(h, r.v1IDs[i])})
	}
	slices.SortFunc(out, func(a, b Cgroup) int { return b.Hierarchy - a.Hierarchy })
	return append(out, Cgroup{ID: r.cgroupID, Path: c.path(0, r.cgroupID)})
}
