package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fit pads or cuts raw to n bytes, so that the fuzzer's inputs reach the
// decoders past their size check.
func fit(raw []byte, n int) []byte {
	b := make([]byte, n)
	copy(b, raw)
	return b
}

// FuzzIdentityRecords: a process or cgroup record of the wrong size is
// ErrRecordSize; one of the right size decodes, or fails with the error
// for its bad path depth, argument length or operation, into an absolute
// executable path (empty for a kernel thread) and arguments that fit the
// record and hold no NUL. Records laid out as the kernel writes them
// decode to what was written: the path, root first; the arguments (a
// cut-off last one kept; empty ones at the end are dropped, as trailing
// NULs are taken for padding); the cgroup's path and operation.
func FuzzIdentityRecords(f *testing.F) {
	f.Add(processBytes{pid: 7, startNs: 9, cgroupID: 55, comps: []string{"usr", "bin", "gpg-agent"}, args: "gpg-agent\x00--daemon\x00",
		v1Hier: []uint32{4, 1}, v1IDs: []uint64{77, 78}, mountID: 22}.bytes(),
		"/usr/bin/gpg-agent", "gpg-agent\n--daemon", uint32(0), "/system.slice/docker-0123.scope")
	f.Add(processBytes{flags: pathNone}.bytes(), "", "", uint32(pathNone), "/")
	f.Add(processBytes{comps: strings.Split(strings.Repeat("d/", 15)+"x", "/"), flags: pathTruncated}.bytes(),
		"/"+strings.Repeat("d/", 15)+"x", "x\nabc", uint32(pathTruncated), "/kubepods.slice/kubepods-besteffort.slice")
	f.Add(processBytes{useOverrides: true, depthOverride: pathDepth + 1}.bytes(), "/init", "a\n\nb", uint32(0), "")
	f.Add(processBytes{useOverrides: true, argsLenOverride: argsLen + 1}.bytes(), "/a b/c\td", strings.Repeat("x", argsLen), uint32(3), "/a\nb")
	f.Add(cgroupBytes(42, 4, cgroupMkdir, "/docker/abc"), "/x", "x\n", uint32(0), "/docker/abc")
	f.Add(cgroupBytes(42, 0, 9, "/x"), "/", "\n", uint32(0), strings.Repeat("/a", cgroupPathLen))
	f.Add([]byte{}, "//", "", uint32(0), "")
	f.Fuzz(func(t *testing.T, raw []byte, exe, argv string, flags uint32, cgPath string) {
		// Any bytes.
		if _, err := decodeProcess(raw); (len(raw) != ProcessRecordSize) != errors.Is(err, ErrRecordSize) {
			t.Errorf("decodeProcess of %d bytes: %v", len(raw), err)
		}
		if _, err := decodeCgroup(raw); (len(raw) != CgroupRecordSize) != errors.Is(err, ErrRecordSize) {
			t.Errorf("decodeCgroup of %d bytes: %v", len(raw), err)
		}
		checkProcessRecord(t, fit(raw, ProcessRecordSize))
		checkCgroupRecord(t, fit(raw, CgroupRecordSize))

		// A process record as the kernel writes it.
		comps := strings.Split(strings.TrimPrefix(exe, "/"), "/")
		if exe == "/" || exe == "" {
			comps = nil
		}
		var args []string
		if argv != "" {
			args = strings.Split(argv, "\n")
		}
		area := strings.Join(args, "\x00")
		if len(args) > 0 {
			area += "\x00"
		}
		if len(area) > argsLen {
			area = area[:argsLen] // the kernel reads the first 512 bytes
			args = strings.Split(area, "\x00")
		}
		for len(args) > 0 && args[len(args)-1] == "" {
			args = args[:len(args)-1]
		}
		if len(args) == 0 {
			args = nil
		}
		flags &= pathTruncated | pathNone
		if len(comps) <= pathDepth && !slices.ContainsFunc(comps, func(c string) bool {
			return c == "" || len(c) >= pathNameLen || strings.ContainsRune(c, 0)
		}) && !strings.ContainsRune(argv, 0) {
			p := processBytes{pid: 7, vpid: 1, level: 1, startNs: 1 << 40, cgroupID: 9, comps: comps, args: area, flags: flags,
				v1Hier: []uint32{3}, v1IDs: []uint64{5}, mountID: 30}
			r, err := decodeProcess(p.bytes())
			wantPath := "/" + strings.Join(comps, "/")
			if flags&pathNone != 0 {
				wantPath = ""
			}
			if err != nil || r.exePath != wantPath || r.truncated != (flags&pathTruncated != 0) || !slices.Equal(r.args, args) ||
				r.pid != 7 || r.vpid != 1 || r.level != 1 || r.startNs != 1<<40 || r.cgroupID != 9 || r.exeMountID != 30 ||
				r.v1Hierarchies[0] != 3 || r.v1IDs[0] != 5 || (args == nil) != (r.args == nil) {
				t.Errorf("process record of %q %q (flags %d) decodes as %+v, %v; want the path %q and arguments %q", comps, area, flags, r, err, wantPath, args)
			}
		}

		// A cgroup record as the kernel writes it: the path cut to fit,
		// NUL-terminated.
		if !strings.ContainsRune(cgPath, 0) {
			want := cgPath[:min(len(cgPath), cgroupPathLen-1)]
			for _, op := range []uint32{cgroupMkdir, cgroupRmdir} {
				r, err := decodeCgroup(cgroupBytes(1<<33, 2, op, cgPath))
				if err != nil || r.path != want || r.removed != (op == cgroupRmdir) || r.id != 1<<33 || r.hierarchy != 2 {
					t.Errorf("cgroup record of %q (op %d) decodes as %+v, %v", cgPath, op, r, err)
				}
			}
		}
	})
}

// checkProcessRecord asserts what decodeProcess promises of any record of
// the right size.
func checkProcessRecord(t *testing.T, raw []byte) {
	t.Helper()
	le := binary.LittleEndian
	depth, nargs := le.Uint32(raw[offProcPathDepth:]), le.Uint32(raw[offProcArgsLen:])
	r, err := decodeProcess(raw)
	switch {
	case depth > pathDepth:
		if !errors.Is(err, ErrPathDepth) {
			t.Fatalf("depth %d: %v", depth, err)
		}
		return
	case nargs > argsLen:
		if !errors.Is(err, ErrArgsLen) {
			t.Fatalf("%d argument bytes: %v", nargs, err)
		}
		return
	case err != nil:
		t.Fatalf("decodeProcess: %v", err)
	}
	flags := le.Uint32(raw[offProcPathFlags:])
	if r.noExecFile != (flags&pathNone != 0) || r.truncated != (flags&pathTruncated != 0) {
		t.Errorf("flags %#x: noExecFile %v, truncated %v", flags, r.noExecFile, r.truncated)
	}
	switch {
	case r.noExecFile && r.exePath != "":
		t.Errorf("kernel thread with a path %q", r.exePath)
	case !r.noExecFile && (!strings.HasPrefix(r.exePath, "/") || strings.ContainsRune(r.exePath, 0) ||
		len(r.exePath) > int(depth)*(pathNameLen+1)+1 || depth > 0 && strings.Count(r.exePath, "/") < int(depth)):
		t.Errorf("depth %d: path %q", depth, r.exePath)
	}
	n := 0
	for _, a := range r.args {
		if strings.ContainsRune(a, 0) {
			t.Errorf("argument %q holds a NUL", a)
		}
		n += len(a) + 1
	}
	if n > int(nargs)+1 || (r.args == nil) != (len(bytes.TrimRight(raw[offProcArgs:offProcArgs+int(nargs)], "\x00")) == 0) {
		t.Errorf("%d argument bytes decode as %q", nargs, r.args)
	}
	if r.pid != le.Uint32(raw[offProcPID:]) || r.startNs != le.Uint64(raw[offProcStartNs:]) || r.cgroupID != le.Uint64(raw[offProcCgroupID:]) {
		t.Errorf("ids: %+v", r)
	}
}

// checkCgroupRecord asserts what decodeCgroup promises of any record of
// the right size.
func checkCgroupRecord(t *testing.T, raw []byte) {
	t.Helper()
	op := binary.LittleEndian.Uint32(raw[offCgOp:])
	r, err := decodeCgroup(raw)
	if (op == cgroupMkdir || op == cgroupRmdir) == (err != nil) || err != nil && !errors.Is(err, ErrCgroupOp) {
		t.Fatalf("op %d: %v", op, err)
	}
	if err == nil && (r.removed != (op == cgroupRmdir) || strings.ContainsRune(r.path, 0) || len(r.path) > cgroupPathLen) {
		t.Errorf("op %d: %+v", op, r)
	}
}

// escapeMount escapes s as the kernel writes paths in mountinfo: space,
// tab, newline and backslash as three octal digits.
func escapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; strings.IndexByte(" \t\n\\", c) >= 0 {
			fmt.Fprintf(&b, `\%03o`, c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// sampleMountinfo is a hybrid host's, the development host's layout.
const sampleMountinfo = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:22 / /sys rw - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
32 30 0:28 / /sys/fs/cgroup/cpu,cpuset rw,relatime - cgroup cgroup rw,cpuset,cpu
33 30 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
34 30 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
35 22 0:27 /kubepods /mnt/my\040cgroup rw - cgroup cgroup rw,memory
40 22 8:3 / /opt/my\040apps rw - ext4 /dev/sda3 rw
`

// FuzzMountinfo: a /proc/<pid>/cgroup file parses into hierarchies that
// its lines name, which written back parse the same; mountinfo yields
// each hierarchy's mount at most once, for a hierarchy the process is in;
// a cgroup2 mount and any mount written as the kernel writes them (paths
// octal-escaped) read back with their paths whole; a path within a mount
// goes under its mount point.
func FuzzMountinfo(f *testing.F) {
	f.Add([]byte(sampleMountinfo), []byte(hybridSelfCgroup), "/sys/fs/cgroup", "/", "/usr/bin/app", uint32(40))
	f.Add([]byte("33 30 0:29 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"), []byte("0::/init.scope\n"), "/mnt/a b", "/kubepods", "", uint32(33))
	f.Add([]byte("1 2 3 4\n- - -\n5 6 7 / /x - cgroup\n"), []byte("x:y\n1:cpu\n:::\n4294967296::/\n"), `/a\b`, "/\t", "/x", uint32(5))
	f.Add([]byte(`9 9 0:1 /\134 /\0401\777 rw - cgroup2 none rw`), []byte("0::/\n"), "/\u00a0nbsp", "/\r", "x", uint32(9))
	// It crashed cgroupMounts: no super options after the file system type.
	f.Add([]byte("0 0 0 0 0 - 0 0"), []byte("0"), "0", "0", "0", uint32(33))
	f.Fuzz(func(t *testing.T, mountinfo, self []byte, dir, root, inMount string, id uint32) {
		if got := unescapeMount(escapeMount(dir)); got != dir {
			t.Errorf("unescapeMount(%q) = %q, want %q", escapeMount(dir), got, dir)
		}

		hier := hierarchiesOf(self)
		var lines []string
		for _, h := range slices.Sorted(maps.Keys(hier)) {
			if c := hier[h]; strings.ContainsAny(c, ":\n") {
				t.Errorf("hierarchy %d: controllers %q", h, c)
			}
			lines = append(lines, strconv.FormatUint(uint64(h), 10)+":"+hier[h]+":/")
		}
		if again := hierarchiesOf([]byte(strings.Join(lines, "\n"))); !maps.Equal(hier, again) {
			t.Errorf("hierarchies %v written back as %q parse as %v", hier, lines, again)
		}

		mounts := cgroupMounts(mountinfo, hier)
		seen := map[uint32]bool{}
		for _, m := range mounts {
			if seen[m.hierarchy] || m.hierarchy != 0 && hier[m.hierarchy] == "" {
				t.Errorf("mount %+v: repeated, or of a hierarchy the process is not in (%v)", m, hier)
			}
			seen[m.hierarchy] = true
		}

		// Mount points and roots are absolute paths.
		if !strings.HasPrefix(dir, "/") {
			dir = "/" + dir
		}
		if !strings.HasPrefix(root, "/") {
			root = "/" + root
		}
		// A cgroup2 mount first is the unified hierarchy's.
		line := "33 30 0:29 " + escapeMount(root) + " " + escapeMount(dir) + " rw,relatime shared:6 - cgroup2 cgroup2 rw,nsdelegate\n"
		got := cgroupMounts(append([]byte(line), mountinfo...), hier)
		if len(got) == 0 || got[0] != (cgroupMount{hierarchy: 0, dir: dir, root: root}) {
			t.Errorf("mountinfo %q: mounts %+v, want first {0 %q %q}", line, got, dir, root)
		}

		// A mount's path, last (a later line for a mount id wins).
		info := slices.Clone(mountinfo)
		if len(info) > 0 && info[len(info)-1] != '\n' {
			info = append(info, '\n')
		}
		info = fmt.Appendf(info, "%d 22 8:3 / %s rw - ext4 /dev/sda3 rw\n", id, escapeMount(dir))
		m := newMountTable(info, nil)
		want := dir + inMount
		if dir == "/" || inMount == "" {
			want = inMount
		}
		if got := m.path(id, inMount); got != want {
			t.Errorf("mount %d at %q: path(%q) = %q, want %q", id, dir, inMount, got, want)
		}
		if got := m.path(id+1, inMount); !strings.HasSuffix(got, inMount) {
			t.Errorf("path(%d, %q) = %q", id+1, inMount, got)
		}
	})
}
