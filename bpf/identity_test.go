package bpf

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestIdentityLayoutsMatchCompiledObject ties identity.go's offsets to the
// types bpf2go generated from the compiled object.
func TestIdentityLayoutsMatchCompiledObject(t *testing.T) {
	for _, tc := range []struct {
		typ     reflect.Type
		size    int
		offsets map[string]int
	}{
		{reflect.TypeFor[memlockProcessRecord](), ProcessRecordSize, map[string]int{
			"StartNs": offProcStartNs, "CgroupId": offProcCgroupID, "Pid": offProcPID, "Vpid": offProcVPID,
			"PidLevel": offProcPIDLevel, "PathDepth": offProcPathDepth, "PathFlags": offProcPathFlags,
			"ArgsLen": offProcArgsLen, "ExeMntId": offProcExeMntID, "Reserved": offProcReserved,
			"V1Hierarchy": offProcV1Hier, "V1CgroupId": offProcV1IDs,
			"Comps": offProcComps, "Args": offProcArgs,
		}},
		{reflect.TypeFor[memlockCgroupRecord](), CgroupRecordSize, map[string]int{
			"Id": offCgID, "Hierarchy": offCgHierarchy, "Op": offCgOp, "Path": offCgPath,
		}},
	} {
		if got := int(tc.typ.Size()); got != tc.size {
			t.Errorf("%s is %d bytes in the object, decoder expects %d", tc.typ.Name(), got, tc.size)
		}
		named := 0
		for i := range tc.typ.NumField() {
			f := tc.typ.Field(i)
			if f.Name == "_" {
				continue
			}
			named++
			if off, ok := tc.offsets[f.Name]; !ok || off != int(f.Offset) {
				t.Errorf("%s.%s at offset %d in the object, decoder reads %d (known %v)", tc.typ.Name(), f.Name, f.Offset, off, ok)
			}
		}
		if named != len(tc.offsets) {
			t.Errorf("%s has %d fields, the decoder knows %d", tc.typ.Name(), named, len(tc.offsets))
		}
	}
	// The record kinds are told apart by size.
	if sizes := []int{RecordSize, CallRecordSize, ProcessRecordSize, CgroupRecordSize}; len(slices.Compact(slices.Sorted(slices.Values(sizes)))) != len(sizes) {
		t.Errorf("record sizes %v are not distinct", sizes)
	}
}

// processBytes builds a process record as the kernel lays it out: path
// components leaf first.
type processBytes struct {
	startNs, cgroupID uint64
	pid, vpid, level  uint32
	comps             []string // root first, as a path reads
	flags             uint32
	args              string
	v1Hier            []uint32
	v1IDs             []uint64
	depthOverride     uint32
	argsLenOverride   uint32
	useOverrides      bool
	mountID           uint32
}

func (p processBytes) bytes() []byte {
	b := make([]byte, ProcessRecordSize)
	le := binary.LittleEndian
	le.PutUint64(b[offProcStartNs:], p.startNs)
	le.PutUint64(b[offProcCgroupID:], p.cgroupID)
	le.PutUint32(b[offProcPID:], p.pid)
	le.PutUint32(b[offProcVPID:], p.vpid)
	le.PutUint32(b[offProcPIDLevel:], p.level)
	depth, nargs := uint32(len(p.comps)), uint32(len(p.args))
	if p.useOverrides {
		depth, nargs = p.depthOverride, p.argsLenOverride
	}
	le.PutUint32(b[offProcPathDepth:], depth)
	le.PutUint32(b[offProcPathFlags:], p.flags)
	le.PutUint32(b[offProcArgsLen:], nargs)
	for i, h := range p.v1Hier {
		le.PutUint32(b[offProcV1Hier+4*i:], h)
		le.PutUint64(b[offProcV1IDs+8*i:], p.v1IDs[i])
	}
	for i, c := range p.comps {
		leaf := len(p.comps) - 1 - i
		copy(b[offProcComps+leaf*pathNameLen:offProcComps+(leaf+1)*pathNameLen-1], c)
	}
	copy(b[offProcArgs:], p.args)
	le.PutUint32(b[offProcExeMntID:], p.mountID)
	return b
}

func cgroupBytes(id uint64, hierarchy, op uint32, path string) []byte {
	b := make([]byte, CgroupRecordSize)
	le := binary.LittleEndian
	le.PutUint64(b[offCgID:], id)
	le.PutUint32(b[offCgHierarchy:], hierarchy)
	le.PutUint32(b[offCgOp:], op)
	copy(b[offCgPath:offCgPath+cgroupPathLen-1], path)
	return b
}

func TestDecodeProcess(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rec      processBytes
		wantPath string
		trunc    bool
		args     []string
		wantErr  error
	}{
		{name: "path and arguments", rec: processBytes{pid: 7, startNs: 9, comps: []string{"usr", "bin", "gpg-agent"}, args: "gpg-agent\x00--daemon\x00"},
			wantPath: "/usr/bin/gpg-agent", args: []string{"gpg-agent", "--daemon"}},
		{name: "a file at the root", rec: processBytes{comps: []string{"init"}}, wantPath: "/init"},
		{name: "no arguments asked for", rec: processBytes{comps: []string{"sbin", "x"}}, wantPath: "/sbin/x"},
		{name: "last argument cut short", rec: processBytes{comps: []string{"x"}, args: "x\x00abc"}, wantPath: "/x", args: []string{"x", "abc"}},
		{name: "deeper than kept", rec: processBytes{comps: strings.Split(strings.Repeat("d/", 15)+"x", "/"), flags: pathTruncated},
			wantPath: "/" + strings.Repeat("d/", 15) + "x", trunc: true},
		{name: "kernel thread", rec: processBytes{flags: pathNone}, wantPath: ""},
		{name: "depth beyond the record", rec: processBytes{useOverrides: true, depthOverride: pathDepth + 1}, wantErr: ErrPathDepth},
		{name: "arguments beyond the record", rec: processBytes{useOverrides: true, argsLenOverride: argsLen + 1}, wantErr: ErrArgsLen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeProcess(tc.rec.bytes())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if got.exePath != tc.wantPath || got.truncated != tc.trunc || !slices.Equal(got.args, tc.args) {
				t.Errorf("path %q truncated %v args %q, want %q %v %q", got.exePath, got.truncated, got.args, tc.wantPath, tc.trunc, tc.args)
			}
			if got.pid != tc.rec.pid || got.startNs != tc.rec.startNs {
				t.Errorf("pid %d start %d", got.pid, got.startNs)
			}
		})
	}
	if _, err := decodeProcess(make([]byte, ProcessRecordSize-1)); !errors.Is(err, ErrRecordSize) {
		t.Errorf("short record: %v", err)
	}
}

func TestDecodeCgroup(t *testing.T) {
	r, err := decodeCgroup(cgroupBytes(42, 4, cgroupMkdir, "/docker/abc"))
	if err != nil || r.id != 42 || r.hierarchy != 4 || r.removed || r.path != "/docker/abc" {
		t.Errorf("mkdir: %+v, %v", r, err)
	}
	if r, err := decodeCgroup(cgroupBytes(42, 0, cgroupRmdir, "/x")); err != nil || !r.removed {
		t.Errorf("rmdir: %+v, %v", r, err)
	}
	if _, err := decodeCgroup(cgroupBytes(1, 0, 9, "/x")); !errors.Is(err, ErrCgroupOp) {
		t.Errorf("unknown op: %v", err)
	}
}

// hybrid is this project's development host: controllers on cgroup v1,
// the unified hierarchy beside them.
const hybridSelfCgroup = `9:name=systemd:/
8:pids:/
4:memory:/process_api/cf2e
2:cpuacct:/
1:cpu,cpuset:/
0::/
`

func TestCgroupMounts(t *testing.T) {
	hier := hierarchiesOf([]byte(hybridSelfCgroup))
	if hier[4] != "memory" || hier[1] != "cpu,cpuset" || hier[0] != "" || hier[9] != "name=systemd" {
		t.Fatalf("hierarchies = %v", hier)
	}
	mountinfo := `25 1 0:22 / /sys rw - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
32 30 0:28 / /sys/fs/cgroup/cpu,cpuset rw,relatime - cgroup cgroup rw,cpuset,cpu
33 30 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
34 30 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
35 1 0:27 /kubepods /mnt/my\040cgroup rw - cgroup cgroup rw,memory
`
	got := cgroupMounts([]byte(mountinfo), hier)
	want := []cgroupMount{
		{hierarchy: 4, dir: "/sys/fs/cgroup/memory", root: "/"},
		{hierarchy: 1, dir: "/sys/fs/cgroup/cpu,cpuset", root: "/"},
		{hierarchy: 0, dir: "/sys/fs/cgroup/unified", root: "/"},
		{hierarchy: 9, dir: "/sys/fs/cgroup/systemd", root: "/"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("mounts = %+v\nwant %+v", got, want)
	}
	if got := unescapeMount(`/mnt/my\040cgroup`); got != "/mnt/my cgroup" {
		t.Errorf("unescape = %q", got)
	}
}

// TestCgroupIndex: paths come from the kernel's records or from cgroupfs;
// a removed cgroup is forgotten; an identity lists each v1 hierarchy once,
// highest first, then cgroup v2.
func TestCgroupIndex(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"system.slice/docker-1.scope", "user.slice"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ino := func(rel string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, rel), &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	c := newCgroupIndex()
	c.controllers = map[uint32]string{4: "memory", 1: "cpu,cpuacct"}
	c.scanHierarchy(cgroupMount{hierarchy: 0, dir: dir, root: "/"})
	if got := c.path(0, ino("system.slice/docker-1.scope")); got != "/system.slice/docker-1.scope" {
		t.Errorf("scanned path = %q", got)
	}
	if got := c.path(0, ino(".")); got != "/" {
		t.Errorf("root = %q", got)
	}
	c.apply(&cgroupRecord{id: 77, hierarchy: 4, path: "/docker/abc"})
	c.apply(&cgroupRecord{id: 78, hierarchy: 1, path: "/docker/abc"})
	rec := processRecord{
		cgroupID:      ino("user.slice"),
		v1Hierarchies: [cgroupSlots]uint32{1, 1, 4, 0, 0},
		v1IDs:         [cgroupSlots]uint64{78, 78, 77, 5, 0},
	}
	got := c.resolve(&rec)
	want := []Cgroup{
		{Hierarchy: 4, Controllers: "memory", ID: 77, Path: "/docker/abc"},
		{Hierarchy: 1, Controllers: "cpu,cpuacct", ID: 78, Path: "/docker/abc"},
		{Hierarchy: 0, ID: ino("user.slice"), Path: "/user.slice"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("resolve = %+v\nwant %+v", got, want)
	}
	p := Process{Cgroups: got}
	if got, want := p.CgroupFile(), "4:memory:/docker/abc\n1:cpu,cpuacct:/docker/abc\n0::/user.slice"; got != want {
		t.Errorf("CgroupFile = %q, want %q", got, want)
	}
	c.apply(&cgroupRecord{id: 77, hierarchy: 4, removed: true})
	if got := c.path(4, 77); got != "" {
		t.Errorf("removed cgroup still named %q", got)
	}
	// A cgroup neither seeded nor recorded is looked up in cgroupfs.
	var asked []uint64
	c.lookupFS = func(h uint32, id uint64) (string, bool) { asked = append(asked, id); return "/late", true }
	if got := c.path(0, 999); got != "/late" || !slices.Equal(asked, []uint64{999}) {
		t.Errorf("fallback: %q, asked %v", got, asked)
	}
	if got := c.path(0, 999); got != "/late" || len(asked) != 1 {
		t.Errorf("the fallback's answer is not kept: asked %v", asked)
	}
}

// TestReaderJoinsIdentities: a call record gets the identity sent before
// it; one whose process the reader does not know (a lost record, or a pid
// reused since) gets none, and the kernel is asked to send it again.
func TestReaderJoinsIdentities(t *testing.T) {
	r := startRunner(t, ReaderOptions{FlushInterval: time.Millisecond})
	var forgot []uint32 // written by Run before it hands the event over
	r.reader.ids.forget = func(pid uint32) { forgot = append(forgot, pid) }
	r.ring.push(cgroupBytes(55, 0, cgroupMkdir, "/system.slice/docker-0123.scope"), false)
	r.ring.push(processBytes{pid: 100, startNs: 4_000_000_000, cgroupID: 55, comps: []string{"usr", "bin", "gpg-agent"}}.bytes(), false)
	call := sampleRecord // pid 100, started at 4 s
	r.ring.push(call.bytes(), true)
	ev := r.next(t, 5*time.Second)
	if ev.Process == nil || ev.Process.ExePath != "/usr/bin/gpg-agent" || ev.Process.StartTime.IsZero() {
		t.Fatalf("identity %+v", ev.Process)
	}
	if c := ev.Process.Cgroups; len(c) != 1 || c[0].Path != "/system.slice/docker-0123.scope" {
		t.Errorf("cgroups %+v", c)
	}
	reused := sampleRecord
	reused.startNs = 9_000_000_000 // another process with pid 100
	r.ring.push(reused.bytes(), true)
	if ev := r.next(t, 5*time.Second); ev.Process != nil {
		t.Errorf("a reused pid got the old process's identity %+v", ev.Process)
	}
	if !slices.Equal(forgot, []uint32{100}) {
		t.Errorf("asked the kernel to resend %v, want [100]", forgot)
	}
}

// TestMountTable: a path within a mount goes under the mount point; one
// on a mount the daemon does not see (a container's root) stays as it is;
// an unknown mount has mountinfo read again, at most once a second, and a
// mount still unknown then never again.
func TestMountTable(t *testing.T) {
	info := `22 1 8:1 / / rw - ext4 /dev/sda1 rw
30 22 8:2 / /opt/my\040apps rw - ext4 /dev/sda2 rw
`
	reads := 0
	m := newMountTable([]byte(info), func() []byte {
		reads++
		return []byte(info + "40 22 8:3 / /srv rw - ext4 /dev/sda3 rw\n")
	})
	m.lastRead = time.Time{}
	for _, tc := range []struct {
		id        uint32
		in, want  string
		wantReads int
		later     bool // a second after the last read
	}{
		{22, "/usr/bin/gpg-agent", "/usr/bin/gpg-agent", 0, false},
		{30, "/bin/tool", "/opt/my apps/bin/tool", 0, false},
		{40, "/x", "/srv/x", 1, false},
		{99, "/usr/bin/app", "/usr/bin/app", 1, false}, // read again just now: not yet
		{22, "", "", 1, false},
		{99, "/usr/bin/app", "/usr/bin/app", 2, true}, // read again: another namespace's
		{99, "/usr/bin/app", "/usr/bin/app", 2, true}, // and so not again
		{41, "/y", "/y", 3, true},                     // another unknown one is
	} {
		if tc.later {
			m.lastRead = time.Time{}
		}
		if got := m.path(tc.id, tc.in); got != tc.want || reads != tc.wantReads {
			t.Errorf("path(%d, %q) = %q after %d reads, want %q after %d", tc.id, tc.in, got, reads, tc.want, tc.wantReads)
		}
	}
}

// TestReaderNamesExecutableFromIdentity: the kernel leaves a call's
// executable name out once it has sent the process's identity (empty in a
// full record, absent from a short one), and the reader takes it from
// there; a name the kernel did send is kept.
func TestReaderNamesExecutableFromIdentity(t *testing.T) {
	r := startRunner(t, ReaderOptions{FlushInterval: time.Millisecond})
	r.ring.push(processBytes{pid: 100, startNs: 4_000_000_000, cgroupID: 55, comps: []string{"usr", "bin", "gpg-agent"}}.bytes(), false)
	call := sampleRecord // pid 100, started at 4 s
	call.exe = ""
	r.ring.push(call.bytes(), true)
	if ev := r.next(t, 5*time.Second); ev.ExeName != "gpg-agent" || ev.Process == nil {
		t.Errorf("call without the kernel's name: ExeName %q (identity %+v), want the identity's gpg-agent", ev.ExeName, ev.Process)
	}
	r.ring.push(sampleRecord.shortBytes(), true) // the short record has no name at all
	if ev := r.next(t, 5*time.Second); ev.ExeName != "gpg-agent" || ev.Process == nil || ev.Comm != "gpg-agent" || ev.Len != 8192 {
		t.Errorf("short record: ExeName %q, Comm %q, Len %d (identity %+v), want gpg-agent, gpg-agent, 8192 and the identity", ev.ExeName, ev.Comm, ev.Len, ev.Process)
	}
	r.ring.push(sampleRecord.bytes(), true) // the kernel sent gpg-agent-bin
	if ev := r.next(t, 5*time.Second); ev.ExeName != "gpg-agent-bin" {
		t.Errorf("call with the kernel's name: ExeName %q, want gpg-agent-bin", ev.ExeName)
	}
	unknown := sampleRecord
	unknown.exe, unknown.pid = "", 200
	r.ring.push(unknown.bytes(), true)
	if ev := r.next(t, 5*time.Second); ev.ExeName != "" || ev.Process != nil {
		t.Errorf("call of an unknown process without a name: ExeName %q, identity %+v", ev.ExeName, ev.Process)
	}
}

// TestEvictionMakesKernelResend: a process dropped from the reader's table
// is forgotten by the kernel at once, so that its next call sends its
// identity (and so its executable's name) again rather than a nameless call.
func TestEvictionMakesKernelResend(t *testing.T) {
	ids, err := newIdentities(1, newCgroupIndex(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var forgot []uint32
	ids.forget = func(pid uint32) { forgot = append(forgot, pid) }
	ids.addProcess(&processRecord{pid: 1, exePath: "/bin/a"})
	ids.addProcess(&processRecord{pid: 1, exePath: "/bin/a2"}) // replaced, not evicted
	ids.addProcess(&processRecord{pid: 2, exePath: "/bin/b"})
	if !slices.Equal(forgot, []uint32{1}) || ids.stats.Evicted != 1 {
		t.Errorf("forgot %v (evicted %d), want [1] (1)", forgot, ids.stats.Evicted)
	}
}

func TestExeName(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, tt := range []struct{ path, want string }{
		{"", ""},
		{"/usr/bin/gpg-agent", "gpg-agent"},
		{"gpg-agent", "gpg-agent"},
		{"/opt/" + long, long[:ExeNameMax-1]},
		{"/usr/lib/postgresql/17/bin/postgres", "postgres"},
	} {
		if got := exeName(tt.path); got != tt.want {
			t.Errorf("exeName(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}
