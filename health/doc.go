// Package health answers Kubernetes' liveness and readiness probes over
// HTTP: /livez says whether the event reader is still making progress,
// /readyz whether the daemon is tracing (hooks attached, reader running)
// and not shutting down; each answers 200 or 503 with a one-line reason.
//
// It judges the reader only by its progress signal, a LastPoll time that
// advances at least once per flush interval even on a host that makes no
// calls at all; so the reader knows nothing of HTTP, and this package
// nothing of BPF. Standard library only.
package health
