package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// isID reports whether s is n lower-case hex digits, written apart from
// isLowerHex so that the fuzz targets check it rather than use it.
func isID(s string, n int) bool {
	return len(s) == n && strings.Trim(s, "0123456789abcdef") == ""
}

// isPodUID reports whether s is a lower-case UUID or 32 hex digits.
func isPodUID(s string) bool {
	if isID(s, 32) {
		return true
	}
	parts := strings.Split(s, "-")
	if len(parts) != 5 {
		return false
	}
	for i, n := range []int{8, 4, 4, 4, 12} {
		if !isID(parts[i], n) {
			return false
		}
	}
	return true
}

// spells reports whether path holds uid, with its dashes as dashes or
// underscores (the systemd driver's spelling).
func spells(path, uid string) bool {
	return strings.Contains(strings.ReplaceAll(path, "_", "-"), uid)
}

// FuzzCgroupPath: ContainerID yields "" or 64 lower-case hex digits found
// in the path, and the innermost id wins (a container's id nested under
// the path is the one returned; an outer one only if the path has none);
// PodUID yields "" or a pod UID that the path spells (with underscores
// under the systemd driver), and the outermost pod wins.
func FuzzCgroupPath(f *testing.F) {
	for _, l := range cgroupLayouts {
		f.Add(l.path)
	}
	// Near misses.
	for _, s := range []string{
		"/docker-" + id1 + ".scope.scope",
		"/docker/-" + id1,
		"/kubepods-pod" + uidSD + ".slice",
		"/kubepods.slice/kubepods-pod.slice",
		"/kubepods/pod/pod" + uid,
		"//kubepods//pod" + uid + "//",
		"/crio-conmon-" + id1[:63] + "g.scope",
		"docker-" + id1,
		"kubepods-pod00000000-0000_0000_0000_000000000000.slice", // dashes and underscores mixed
		".scope",
		"/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		id := ContainerID(path)
		if id != "" && (!isID(id, 64) || !strings.Contains(path, id)) {
			t.Fatalf("ContainerID(%q) = %q: not 64 lower-case hex digits of the path", path, id)
		}
		outer := "/docker/" + id2 + "/" + path
		want := id
		if id == "" {
			want = id2
		}
		if got := ContainerID(outer); got != want {
			t.Errorf("ContainerID(%q) = %q, want %q", outer, got, want)
		}
		for _, inner := range []string{"/docker/" + id1, "/system.slice/docker-" + id1 + ".scope", "/crio-conmon-" + id1 + ".scope"} {
			if got := ContainerID(path + inner); got != id1 {
				t.Errorf("ContainerID(%q) = %q, want the innermost %q", path+inner, got, id1)
			}
		}
		if got := ContainerID(path + "/init.scope"); got != id {
			t.Errorf("ContainerID(%q) = %q, want %q as without /init.scope", path+"/init.scope", got, id)
		}

		pod := PodUID(path)
		if pod != "" && (!isPodUID(pod) || !spells(path, pod)) {
			t.Fatalf("PodUID(%q) = %q: not a pod UID the path spells", path, pod)
		}
		for _, inner := range []string{"/" + id1, "/kubepods/pod" + uid, "/kubepods-pod" + uidSD + ".slice"} {
			want := pod
			if pod == "" {
				// A kubepods directory or pod slice in the path may
				// make the inner one count; the UID is then the one
				// added or one the path spells.
				want = PodUID(path + inner)
				if want != "" && want != uid && !spells(path, want) {
					t.Errorf("PodUID(%q) = %q: from neither the path nor the pod added", path+inner, want)
				}
				continue
			}
			if got := PodUID(path + inner); got != want {
				t.Errorf("PodUID(%q) = %q, want the outermost %q", path+inner, got, want)
			}
		}
	})
}

// fuzzKBKeys are the kB fields the package reads.
var fuzzKBKeys = []string{"VmLck", "Mlocked"}

// FuzzKBField: a kB field of a status or meminfo file is read as a whole
// number of bytes that the file spells in kB, missing (ErrFieldMissing)
// only when no line starts with "key:", and as the kernel writes it
// ("key:<spaces>n kB") it reads back as n*1024 bytes, or fails if that
// overflows.
func FuzzKBField(f *testing.F) {
	for _, name := range []string{"status-self", "status-nspid", "status-kthread", "status-badlck", "status-badunit", "meminfo", "meminfo-bad", "meminfo-nomlocked"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		key := uint8(0)
		if strings.HasPrefix(name, "meminfo") {
			key = 1
		}
		f.Add(data, key, uint64(64))
	}
	f.Add([]byte("VmLck:\t18014398509481984 kB\n"), uint8(0), uint64(math.MaxUint64/1024))
	f.Add([]byte("VmLck: 1 kB"), uint8(0), uint64(math.MaxUint64/1024+1))
	f.Add([]byte("VmLck:1kB\nVmLck: 2 kB\n"), uint8(0), uint64(0))
	f.Add([]byte("VmLck:\t-1 kB\n"), uint8(0), uint64(1))
	f.Add([]byte("VmLck:\t+1 kB\n"), uint8(0), uint64(1))
	f.Fuzz(func(t *testing.T, data []byte, k uint8, n uint64) {
		key := fuzzKBKeys[int(k)%len(fuzzKBKeys)]
		got, err := kBField(data, key)
		raw, found := field(data, key)
		switch {
		case err == nil:
			fs := strings.Fields(raw)
			kb, perr := strconv.ParseUint(fs[0], 10, 64)
			if !found || got%1024 != 0 || perr != nil || kb != got/1024 || len(fs) != 2 || fs[1] != "kB" {
				t.Errorf("kBField(%q, %s) = %d from %q", data, key, got, raw)
			}
		case errors.Is(err, ErrFieldMissing) == found:
			t.Errorf("kBField(%q, %s): %v, but the field is found: %v", data, key, err, found)
		case strings.ContainsAny(err.Error(), "\n\r") || !strings.Contains(err.Error(), key):
			t.Errorf("kBField(%q, %s): error %q does not name the field on one line", data, key, err)
		}

		// A line as the kernel writes it, first, wins.
		line := fmt.Sprintf("%s:\t%8d kB\n", key, n)
		got, err = kBField(append([]byte(line), data...), key)
		switch {
		case n > math.MaxUint64/1024:
			if err == nil || errors.Is(err, ErrFieldMissing) {
				t.Errorf("kBField(%q) = %d, %v; want an overflow error", line, got, err)
			}
		case err != nil || got != n*1024:
			t.Errorf("kBField(%q) = %d, %v; want %d", line, got, err, n*1024)
		}
	})
}

const memlockLimit = "Max locked memory"

// FuzzParseLimit: the soft RLIMIT_MEMLOCK is read from the first "Max
// locked memory " line of a limits file; "unlimited" is math.MaxUint64;
// ErrFieldMissing means no such line; other errors quote the line on one
// line of text; a line as the kernel writes it reads back.
func FuzzParseLimit(f *testing.F) {
	for _, name := range []string{"limits-self", "limits-unlimited", "limits-softonly", "limits-nomemlock", "limits-bad"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint64(8<<20), uint64(8<<20), false)
	}
	f.Add([]byte("Max locked memory         65536                65536                bytes     \n"), uint64(0), uint64(0), true)
	f.Add([]byte("Max locked memoryx 1 1 bytes\n"), uint64(math.MaxUint64), uint64(1), false)
	f.Add([]byte("Max locked memory 1 1 pages\n"), uint64(1), uint64(math.MaxUint64), false)
	f.Add([]byte("Max locked memory\t1\t1\tbytes\n"), uint64(1), uint64(1), false)
	f.Add([]byte("Max locked memory  18446744073709551616  unlimited  bytes\n"), uint64(1), uint64(1), false)
	f.Fuzz(func(t *testing.T, data []byte, soft, hard uint64, unlimited bool) {
		got, unl, err := parseLimit(data, memlockLimit, "bytes")
		var first []string // the fields after the name on the first line
		hasLine := false
		for line := range bytes.Lines(data) {
			if rest, ok := bytes.CutPrefix(line, []byte(memlockLimit+" ")); ok {
				first, hasLine = strings.Fields(string(rest)), true
				break
			}
		}
		switch {
		case err == nil:
			if !hasLine || len(first) != 3 || first[2] != "bytes" || unl != (first[0] == "unlimited") ||
				!unl && strings.TrimLeft(first[0], "0") != strings.TrimLeft(strconv.FormatUint(got, 10), "0") {
				t.Errorf("parseLimit(%q) = %d, %v, but its line holds %q", data, got, unl, first)
			}
		case errors.Is(err, ErrFieldMissing) == hasLine:
			t.Errorf("parseLimit(%q): %v, but a line is there: %v", data, err, hasLine)
		case strings.ContainsAny(err.Error(), "\n\r"):
			t.Errorf("parseLimit(%q): error %q is not one line", data, err)
		}
		if unl && got != math.MaxUint64 {
			t.Errorf("parseLimit(%q) = %d, unlimited", data, got)
		}

		// As fs/proc/base.c writes the line, put first.
		num := func(v uint64, unl bool) string {
			if unl {
				return "unlimited"
			}
			return strconv.FormatUint(v, 10)
		}
		line := fmt.Sprintf("%-25s %-20s %-20s %-10s\n", memlockLimit, num(soft, unlimited), num(hard, hard == math.MaxUint64), "bytes")
		got, unl, err = parseLimit(append([]byte(line), data...), memlockLimit, "bytes")
		want := soft
		if unlimited {
			want = math.MaxUint64
		}
		if err != nil || got != want || unl != unlimited {
			t.Errorf("parseLimit(%q) = %d, %v, %v; want %d, %v", line, got, unl, err, want, unlimited)
		}
	})
}
