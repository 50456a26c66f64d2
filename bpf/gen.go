package bpf

// The committed memlock_x86_bpfel.{go,o} are built with Debian bookworm's
// clang-14 so that `make generate` reproduces them byte for byte; another
// clang major version produces different (equally valid) objects.
//go:generate go tool bpf2go -cc clang-14 -strip llvm-strip-14 -target amd64 -type event -type call_record -type process_record -type cgroup_record memlock c/memlock.bpf.c -- -I/usr/include -Wall -Wextra -Werror -Wpadded -Wno-unused-parameter -D__VMLINUX_H__
