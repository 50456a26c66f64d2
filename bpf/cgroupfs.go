package bpf

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The kernel names a process's cgroups by id: the inode number of the
// cgroup's directory in its hierarchy's cgroupfs. The paths of the cgroups
// made while the daemon runs come with the kernel's cgroup records; those
// of the cgroups that were there before are read from cgroupfs at start,
// and again when a record was lost.

// cgroupMount is one mounted cgroup hierarchy.
type cgroupMount struct {
	hierarchy uint32
	dir       string // where it is mounted
	root      string // the hierarchy's directory at dir, "/" unless a subtree is mounted
}

// hierarchiesOf parses a /proc/<pid>/cgroup file into hierarchy id ->
// controllers ("memory", "cpu,cpuacct", "name=systemd"; "" for cgroup v2).
func hierarchiesOf(data []byte) map[uint32]string {
	out := make(map[uint32]string)
	for line := range bytes.Lines(data) {
		id, rest, ok := strings.Cut(strings.TrimRight(string(line), "\n"), ":")
		controllers, _, ok2 := strings.Cut(rest, ":")
		h, err := strconv.ParseUint(id, 10, 32)
		if ok && ok2 && err == nil {
			out[uint32(h)] = controllers
		}
	}
	return out
}

// cgroupMounts finds the mounted hierarchies in a mountinfo file:
// cgroup2 is hierarchy 0; a cgroup v1 mount is the hierarchy whose
// controllers its options list.
func cgroupMounts(mountinfo []byte, hierarchies map[uint32]string) []cgroupMount {
	var out []cgroupMount
	seen := map[uint32]bool{}
	for line := range bytes.Lines(mountinfo) {
		f := mountFields(line)
		sep := slices.Index(f, "-")
		if sep < 5 || sep+3 >= len(f) {
			continue
		}
		root, dir, fstype, opts := unescapeMount(f[3]), unescapeMount(f[4]), f[sep+1], f[sep+3]
		var h uint32
		switch fstype {
		case "cgroup2":
			h = 0
		case "cgroup":
			found := false
			for id, controllers := range hierarchies {
				if id != 0 && controllers != "" && sameControllers(controllers, opts) {
					h, found = id, true
					break
				}
			}
			if !found {
				continue
			}
		default:
			continue
		}
		if !seen[h] {
			seen[h] = true
			out = append(out, cgroupMount{hierarchy: h, dir: dir, root: root})
		}
	}
	return out
}

// mountFields splits a mountinfo line at its spaces. The kernel escapes
// spaces, tabs, newlines and backslashes in paths, but no other white
// space: strings.Fields would cut a mount point at a \r or a U+00A0.
func mountFields(line []byte) []string {
	return strings.FieldsFunc(strings.TrimSuffix(string(line), "\n"), func(r rune) bool { return r == ' ' })
}

// sameControllers reports whether a mount's options name exactly the
// controllers of a hierarchy.
func sameControllers(controllers, opts string) bool {
	have := strings.Split(opts, ",")
	for c := range strings.SplitSeq(controllers, ",") {
		if !slices.Contains(have, c) {
			return false
		}
	}
	return true
}

// unescapeMount undoes mountinfo's octal escapes of spaces and the like.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// scanHierarchy walks one mounted hierarchy and indexes every cgroup in it.
func (c *cgroupIndex) scanHierarchy(m cgroupMount) {
	_ = filepath.WalkDir(m.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		rel, err := filepath.Rel(m.dir, p)
		if err != nil {
			return nil
		}
		path := filepath.Join(m.root, rel)
		if len(c.paths) < maxCgroups {
			c.paths[cgroupKey{m.hierarchy, st.Ino}] = path
		}
		return nil
	})
}

// rescanEvery bounds how often a hierarchy is walked again for a cgroup
// the index does not know.
const rescanEvery = time.Second

// seedCgroups fills c from the hierarchies mounted as procRoot/self sees
// them (mountinfo is its mountinfo file), and sets it to walk a hierarchy
// again, at most once a second, for a cgroup it does not know.
func seedCgroups(c *cgroupIndex, procRoot string, mountinfo []byte) error {
	self, err := os.ReadFile(filepath.Join(procRoot, "self", "cgroup"))
	if err != nil {
		return fmt.Errorf("read the daemon's cgroups: %w", err)
	}
	c.controllers = hierarchiesOf(self)
	mounts := cgroupMounts(mountinfo, c.controllers)
	for _, m := range mounts {
		c.scanHierarchy(m)
	}
	scanned := map[uint32]time.Time{}
	c.lookupFS = func(h uint32, id uint64) (string, bool) {
		i := slices.IndexFunc(mounts, func(m cgroupMount) bool { return m.hierarchy == h })
		if i < 0 || time.Since(scanned[h]) < rescanEvery {
			return "", false
		}
		scanned[h] = time.Now()
		c.scanHierarchy(mounts[i])
		p, ok := c.paths[cgroupKey{h, id}]
		return p, ok
	}
	return nil
}

func readMountinfo(procRoot string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "self", "mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return b, nil
}

// mountTable puts an executable's path within its mount (all the kernel
// reads) under the mount's mount point, from the daemon's mountinfo: mount
// ids are the whole host's. A mount the daemon does not see is another
// mount namespace's (a container's root), where the path already starts
// at the root. The table is read again, at most once a second, for a mount
// it does not know; one still unknown then is another namespace's, and is
// not worth reading again for (every process of a container is on one).
type mountTable struct {
	points   map[uint32]string // mount id -> mount point
	foreign  map[uint32]bool   // unknown when the table was last read
	reread   func() []byte     // nil: never read again
	lastRead time.Time
}

func newMountTable(mountinfo []byte, reread func() []byte) *mountTable {
	m := &mountTable{reread: reread, lastRead: time.Now()}
	m.load(mountinfo)
	return m
}

func (m *mountTable) load(mountinfo []byte) {
	m.points = make(map[uint32]string)
	m.foreign = make(map[uint32]bool)
	for line := range bytes.Lines(mountinfo) {
		f := mountFields(line)
		if len(f) < 5 {
			continue
		}
		if id, err := strconv.ParseUint(f[0], 10, 32); err == nil {
			m.points[uint32(id)] = unescapeMount(f[4])
		}
	}
}

// path returns the full path of inMount, a path from the root of mount id.
func (m *mountTable) path(id uint32, inMount string) string {
	if m == nil || inMount == "" {
		return inMount
	}
	point, ok := m.points[id]
	if !ok && !m.foreign[id] && m.reread != nil && time.Since(m.lastRead) >= rescanEvery {
		m.lastRead = time.Now()
		if b := m.reread(); b != nil {
			m.load(b)
		}
		if point, ok = m.points[id]; !ok {
			m.foreign[id] = true
		}
	}
	if !ok || point == "/" {
		return inMount
	}
	return point + inMount
}
