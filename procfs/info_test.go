package procfs

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestReadInfo(t *testing.T) {
	const pid = 4242
	const selfVPID = 6849 // NSpid of testdata/status-self, a real status file of pid 6849
	dockerCgroup := "0::/system.slice/docker-" + id1 + ".scope\n"
	tests := []struct {
		name      string
		proc      *fakeProcess // nil: no such process
		withArgs  bool
		want      Info
		wantErr   bool // a partial-read error, Info still returned
		wantNoPro bool // errors.Is(err, ErrNoProcess)
	}{
		{
			name:     "docker process with arguments",
			proc:     &fakeProcess{statusFile: "status-self", cgroup: dockerCgroup, exe: "/usr/bin/gpg-agent", cmdline: "gpg-agent\x00--daemon\x00"},
			withArgs: true,
			want:     Info{ExePath: "/usr/bin/gpg-agent", CommandArgs: []string{"gpg-agent", "--daemon"}, CgroupPath: "/system.slice/docker-" + id1 + ".scope", ContainerID: id1, VPID: selfVPID},
		},
		{
			name: "arguments not asked for",
			proc: &fakeProcess{statusFile: "status-self", cgroup: dockerCgroup, exe: "/usr/bin/gpg-agent", cmdline: "gpg-agent\x00--passphrase\x00hunter2\x00"},
			want: Info{ExePath: "/usr/bin/gpg-agent", CgroupPath: "/system.slice/docker-" + id1 + ".scope", ContainerID: id1, VPID: selfVPID},
		},
		{
			name: "deleted executable",
			proc: &fakeProcess{statusFile: "status-self", cgroup: "0::/system.slice/mysql.service\n", exe: "/usr/sbin/mysqld (deleted)"},
			want: Info{ExePath: "/usr/sbin/mysqld", ExeDeleted: true, CgroupPath: "/system.slice/mysql.service", VPID: selfVPID},
		},
		{
			name: "kubernetes pod in a pid namespace",
			proc: &fakeProcess{statusFile: "status-nspid", exe: "/app/server",
				cgroup: "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSD + ".slice/cri-containerd-" + id1 + ".scope\n"},
			want: Info{ExePath: "/app/server",
				CgroupPath:  "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSD + ".slice/cri-containerd-" + id1 + ".scope",
				ContainerID: id1, PodUID: uid, VPID: 1, InPIDNamespace: true},
		},
		{
			name: "kernel without NSpid",
			proc: &fakeProcess{statusFile: "status-nonspid", cgroup: "0::/\n", exe: "/bin/sh"},
			want: Info{ExePath: "/bin/sh", CgroupPath: "/", VPID: pid},
		},
		{
			name:     "kernel thread: no exe, empty cmdline",
			proc:     &fakeProcess{statusFile: "status-kthread", cgroup: "0::/\n"},
			withArgs: true,
			want:     Info{CgroupPath: "/", VPID: 2},
		},
		{
			name: "hybrid cgroupfs docker: container only in v1 lines",
			proc: &fakeProcess{statusFile: "status-self", exe: "/usr/bin/redis-server",
				cgroup: "12:memory:/docker/" + id1 + "\n1:name=systemd:/docker/" + id1 + "\n0::/system.slice/containerd.service\n"},
			want: Info{ExePath: "/usr/bin/redis-server", CgroupPath: "/system.slice/containerd.service", ContainerID: id1, VPID: selfVPID},
		},
		{
			name: "no cgroup file",
			proc: &fakeProcess{statusFile: "status-self", exe: "/bin/true"},
			want: Info{ExePath: "/bin/true", VPID: selfVPID},
		},
		{
			name:    "exe unreadable: other fields still read",
			proc:    &fakeProcess{statusFile: "status-self", cgroup: dockerCgroup, exeNotLink: true},
			want:    Info{CgroupPath: "/system.slice/docker-" + id1 + ".scope", ContainerID: id1, VPID: selfVPID},
			wantErr: true,
		},
		{
			name:      "no such process",
			wantNoPro: true,
			wantErr:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.proc != nil {
				writeFakeProcess(t, root, pid, *tt.proc)
			}
			got, err := ReadInfo(root, pid, tt.withArgs)
			if (err != nil) != tt.wantErr || errors.Is(err, ErrNoProcess) != tt.wantNoPro {
				t.Fatalf("ReadInfo error = %v, want error %v, ErrNoProcess %v", err, tt.wantErr, tt.wantNoPro)
			}
			if !equalInfo(got, tt.want) {
				t.Errorf("ReadInfo =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestReadInfoMissingProcRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "no-proc-here")
	_, err := ReadInfo(root, 1, false)
	if err == nil || errors.Is(err, ErrNoProcess) {
		t.Fatalf("ReadInfo(%s) error = %v, want an error that is not ErrNoProcess", root, err)
	}
	if !strings.Contains(err.Error(), root) {
		t.Errorf("error %q does not name the path %s", err, root)
	}
}

func TestReadInfoLongCommandLine(t *testing.T) {
	root := t.TempDir()
	long := strings.Repeat("x", MaxCommandBytes) + "\x00tail\x00"
	writeFakeProcess(t, root, 7, fakeProcess{statusFile: "status-self", cmdline: "prog\x00" + long})
	info, err := ReadInfo(root, 7, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Join(info.CommandArgs, "\x00")); n > MaxCommandBytes {
		t.Errorf("read %d bytes of arguments, want at most %d", n, MaxCommandBytes)
	}
	if len(info.CommandArgs) != 2 || info.CommandArgs[0] != "prog" {
		t.Errorf("CommandArgs = %d args starting %q, want prog and the cut second one", len(info.CommandArgs), info.CommandArgs[0])
	}
}

func TestSplitCommandLine(t *testing.T) {
	tests := []struct {
		name, data string
		want       []string
	}{
		{"empty: kernel thread or zombie", "", nil},
		{"one argument", "sleep\x00", []string{"sleep"}},
		{"several", "gpg-agent\x00--homedir\x00/root/.gnupg\x00--daemon\x00", []string{"gpg-agent", "--homedir", "/root/.gnupg", "--daemon"}},
		{"empty argument kept", "printf\x00\x00x\x00", []string{"printf", "", "x"}},
		{"rewritten title, no NULs", "postgres: checkpointer", []string{"postgres: checkpointer"}},
		{"no final NUL", "a\x00b", []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := splitCommandLine([]byte(tt.data)); !slices.Equal(got, tt.want) {
				t.Errorf("splitCommandLine(%q) = %q, want %q", tt.data, got, tt.want)
			}
		})
	}
}

func TestParseNSpid(t *testing.T) {
	tests := []struct {
		name, status string
		want         []uint32
		ok           bool
	}{
		{"host process", "Name:\tx\nNSpid:\t6849\n", []uint32{6849}, true},
		{"container", "NSpid:\t84211\t1\n", []uint32{84211, 1}, true},
		{"nested", "NStgid:\t1\nNSpid:\t84211\t17\t1\nNSpgid:\t1\n", []uint32{84211, 17, 1}, true},
		{"missing", "Name:\tx\nPid:\t5\n", nil, false},
		{"empty", "NSpid:\t\n", nil, false},
		{"bad number", "NSpid:\t12\tx\n", nil, false},
		{"NStgid is not NSpid", "NStgid:\t9\t1\n", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseNSpid([]byte(tt.status))
			if ok != tt.ok || !slices.Equal(got, tt.want) {
				t.Errorf("parseNSpid(%q) = %v, %v; want %v, %v", tt.status, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// equalInfo reports whether two Infos are equal, field by field.
func equalInfo(a, b Info) bool {
	return reflect.DeepEqual(a, b)
}
