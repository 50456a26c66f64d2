// Package procfs reads the context of a process from procfs: its executable,
// arguments, cgroup, container id, pod UID and PID-namespace pid, and how much
// memory it and the whole system hold locked against RLIMIT_MEMLOCK.
//
// Every reader takes the procfs mount point (normally "/proc", "/host/proc" in
// a container) so tests can point it at a fake tree. Cache keeps the context of
// recently seen pids in a bounded, expiring LRU for enriching events.
package procfs
