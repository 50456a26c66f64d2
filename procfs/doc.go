// Package procfs reads what the daemon needs of procfs and names what cgroup
// paths say: how much memory each process and the whole system hold locked
// against RLIMIT_MEMLOCK, and the container id and pod UID in a cgroup path.
//
// Every reader takes the procfs mount point (normally "/proc", "/host/proc" in
// a container) so tests can point it at a fake tree. A process's own identity
// (executable, cgroups, arguments) is no longer read here: the kernel reads it
// at the process's first call (package bpf), so it names processes that are
// gone before anything could read procfs.
package procfs
