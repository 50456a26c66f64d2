// Package bpf loads memlock-exporter's eBPF programs, attaches them to the
// kernel's hooks for the mlock family, and reads what they record: each
// completed call arrives from a ring buffer as one fixed-size record that is
// decoded, without reflection or allocation, into an Event.
//
// It knows nothing of OpenTelemetry; the exporter package consumes Events.
package bpf
