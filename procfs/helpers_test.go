package procfs

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// fakeProcess describes one /proc/<pid> directory of a fake procfs tree.
type fakeProcess struct {
	statusFile string // testdata file copied to status; "" for none
	cgroup     string // content of cgroup; "" for no file
	cmdline    string // content of cmdline
	exe        string // target of the exe link; "" for no link
	exeNotLink bool   // make exe a regular file, so readlink fails with EINVAL
	limitsFile string // testdata file copied to limits; "" for none
}

// writeFakeProcess creates root/<pid>/ as p describes.
func writeFakeProcess(t testing.TB, root string, pid uint32, p fakeProcess) {
	t.Helper()
	dir := filepath.Join(root, strconv.FormatUint(uint64(pid), 10))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	copyTestdata(t, p.statusFile, filepath.Join(dir, "status"))
	copyTestdata(t, p.limitsFile, filepath.Join(dir, "limits"))
	if p.cgroup != "" {
		writeFile(t, filepath.Join(dir, "cgroup"), p.cgroup)
	}
	writeFile(t, filepath.Join(dir, "cmdline"), p.cmdline)
	exe := filepath.Join(dir, "exe")
	os.Remove(exe)
	switch {
	case p.exeNotLink:
		writeFile(t, exe, "")
	case p.exe != "":
		if err := os.Symlink(p.exe, exe); err != nil {
			t.Fatal(err)
		}
	}
}

// copyTestdata copies testdata/name to path; nothing when name is "".
func copyTestdata(t testing.TB, name, path string) {
	t.Helper()
	if name == "" {
		return
	}
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(data))
}

// writeFile writes data to path or fails the test.
func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
