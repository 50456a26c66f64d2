package bpf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPreflightMessages(t *testing.T) {
	if os.Geteuid() != 0 {
		// Without privileges the capability check answers first.
		err := Preflight()
		if err == nil || !strings.Contains(err.Error(), "CAP_BPF") || !strings.Contains(err.Error(), "CAP_PERFMON") {
			t.Fatalf("unprivileged Preflight() = %v, want it to name CAP_BPF and CAP_PERFMON", err)
		}
		t.Skip("needs root for the BTF and tracefs cases (the capability case passed)")
	}
	dir := t.TempDir()
	haveEvents := filepath.Join(dir, "tracing")
	if err := os.MkdirAll(filepath.Join(haveEvents, "events"), 0o755); err != nil {
		t.Fatal(err)
	}
	btf := filepath.Join(dir, "vmlinux")
	if err := os.WriteFile(btf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name            string
		btf, tfs, debug string
		wantErr         []string
	}{
		{name: "all present", btf: btf, tfs: haveEvents, debug: missing},
		{name: "only the debugfs location", btf: btf, tfs: missing, debug: haveEvents},
		{name: "no BTF", btf: missing, tfs: haveEvents, debug: missing,
			wantErr: []string{"no kernel BTF at " + missing, "CONFIG_DEBUG_INFO_BTF"}},
		{name: "no tracefs and cannot mount it", btf: btf, tfs: missing, debug: missing,
			wantErr: []string{"tracefs is not mounted", "mount -t tracefs nodev " + missing}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saved := [3]string{btfPath, tracefsPath, debugfsPath}
			btfPath, tracefsPath, debugfsPath = tt.btf, tt.tfs, tt.debug
			defer func() { btfPath, tracefsPath, debugfsPath = saved[0], saved[1], saved[2] }()
			err := Preflight()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Preflight() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Preflight() = nil, want an error")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}
