package procfs

import (
	"errors"
	"math"
	"path/filepath"
	"testing"
)

func TestReadLocked(t *testing.T) {
	tests := []struct {
		name, statusFile string // "" : no such process
		want             uint64
		wantErr          error // nil, or a sentinel the error must wrap
		wantAnyErr       bool
	}{
		{name: "real status, nothing locked", statusFile: "status-self", want: 0},
		{name: "64 kB locked", statusFile: "status-nspid", want: 64 << 10},
		{name: "kernel thread has no VmLck", statusFile: "status-kthread", wantErr: ErrFieldMissing},
		{name: "not a number", statusFile: "status-badlck", wantAnyErr: true},
		{name: "unit not kB", statusFile: "status-badunit", wantAnyErr: true},
		{name: "no such process", wantErr: ErrNoProcess},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.statusFile != "" {
				writeFakeProcess(t, root, 10, fakeProcess{statusFile: tt.statusFile})
			}
			got, err := ReadLocked(root, 10)
			checkErr(t, err, tt.wantErr, tt.wantAnyErr)
			if got != tt.want {
				t.Errorf("ReadLocked = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestReadMemlockLimit(t *testing.T) {
	tests := []struct {
		name, limitsFile string // "" : no such process
		soft             uint64
		unlimited        bool
		wantErr          error
		wantAnyErr       bool
	}{
		{name: "real limits, 8 MiB", limitsFile: "limits-self", soft: 8 << 20},
		{name: "unlimited", limitsFile: "limits-unlimited", soft: math.MaxUint64, unlimited: true},
		{name: "soft below unlimited hard", limitsFile: "limits-softonly", soft: 64 << 10},
		{name: "line missing", limitsFile: "limits-nomemlock", wantErr: ErrFieldMissing},
		{name: "soft not a number", limitsFile: "limits-bad", wantAnyErr: true},
		{name: "no such process", wantErr: ErrNoProcess},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.limitsFile != "" {
				writeFakeProcess(t, root, 10, fakeProcess{limitsFile: tt.limitsFile})
			}
			soft, unlimited, err := ReadMemlockLimit(root, 10)
			checkErr(t, err, tt.wantErr, tt.wantAnyErr)
			if soft != tt.soft || unlimited != tt.unlimited {
				t.Errorf("ReadMemlockLimit = %d, %v; want %d, %v", soft, unlimited, tt.soft, tt.unlimited)
			}
		})
	}
}

func TestParseLimit(t *testing.T) {
	tests := []struct {
		name, data string
		soft       uint64
		unlimited  bool
		wantErr    bool
	}{
		{"bytes", "Max locked memory         65536                65536                bytes     \n", 65536, false, false},
		{"zero", "Max locked memory         0                    0                    bytes\n", 0, false, false},
		{"unlimited soft", "Max locked memory         unlimited            unlimited            bytes\n", math.MaxUint64, true, false},
		{"name only as prefix of another", "Max locked memoryx        1                    1                    bytes\n", 0, false, true},
		{"wrong unit", "Max locked memory         1                    1                    pages\n", 0, false, true},
		{"too few columns", "Max locked memory         1\n", 0, false, true},
		{"negative", "Max locked memory         -1                   1                    bytes\n", 0, false, true},
		{"empty", "", 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			soft, unlimited, err := parseLimit([]byte(tt.data), "Max locked memory", "bytes")
			if (err != nil) != tt.wantErr || soft != tt.soft || unlimited != tt.unlimited {
				t.Errorf("parseLimit(%q) = %d, %v, %v; want %d, %v, error %v", tt.data, soft, unlimited, err, tt.soft, tt.unlimited, tt.wantErr)
			}
		})
	}
}

func TestReadSystemLocked(t *testing.T) {
	tests := []struct {
		name, meminfoFile string // "" : no meminfo
		want              uint64
		wantErr           error
		wantAnyErr        bool
	}{
		{name: "real meminfo", meminfoFile: "meminfo", want: 12952 << 10},
		{name: "Mlocked missing", meminfoFile: "meminfo-nomlocked", wantErr: ErrFieldMissing},
		{name: "not a number", meminfoFile: "meminfo-bad", wantAnyErr: true},
		{name: "no meminfo", wantAnyErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			copyTestdata(t, tt.meminfoFile, filepath.Join(root, "meminfo"))
			got, err := ReadSystemLocked(root)
			checkErr(t, err, tt.wantErr, tt.wantAnyErr)
			if got != tt.want {
				t.Errorf("ReadSystemLocked = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestKBField(t *testing.T) {
	tests := []struct {
		name, data, key string
		want            uint64
		wantErr         bool
	}{
		{"status tab", "VmLck:\t      64 kB\n", "VmLck", 64 << 10, false},
		{"meminfo spaces", "Mlocked:           12952 kB\n", "Mlocked", 12952 << 10, false},
		{"zero", "VmLck:\t       0 kB\n", "VmLck", 0, false},
		{"last line without newline", "VmPin:\t0 kB\nVmLck:\t8 kB", "VmLck", 8 << 10, false},
		{"key is a prefix of another", "VmLckX:\t8 kB\n", "VmLck", 0, true},
		{"no unit", "VmLck:\t8\n", "VmLck", 0, true},
		{"overflow", "VmLck:\t18014398509481984 kB\n", "VmLck", 0, true},
		{"largest", "VmLck:\t18014398509481983 kB\n", "VmLck", 18014398509481983 << 10, false},
		{"missing", "VmPin:\t0 kB\n", "VmLck", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := kBField([]byte(tt.data), tt.key)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("kBField(%q, %s) = %d, %v; want %d, error %v", tt.data, tt.key, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// checkErr fails t unless err wraps want (when set), or is non-nil when
// anyErr, or is nil otherwise.
func checkErr(t *testing.T, err, want error, anyErr bool) {
	t.Helper()
	switch {
	case want != nil:
		if !errors.Is(err, want) {
			t.Fatalf("error = %v, want one wrapping %q", err, want)
		}
	case anyErr:
		if err == nil {
			t.Fatal("error = nil, want one")
		}
	case err != nil:
		t.Fatalf("error = %v, want nil", err)
	}
}
