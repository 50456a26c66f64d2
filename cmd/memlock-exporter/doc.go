// Command memlock-exporter watches every process's mlock-family syscalls
// with eBPF and reports each call. It is the only place where the
// configuration, the BPF tracer and the exporter are wired together.
//
// Run `memlock-exporter --help` for flags and environment variables.
package main
