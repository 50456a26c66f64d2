package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/config"
	"github.com/memlock-exporter/memlock-exporter/health"
)

// healthShutdownTimeout bounds the wait for probes under way at exit: they
// answer at once, so only a stuck client can use it up.
const healthShutdownTimeout = time.Second

// startHealth returns the checker of reader and, if
// MEMLOCK_EXPORTER_HEALTH_ADDR is set, serves it there; stop shuts the
// server down (a no-op without one). An address that cannot be listened on
// is the operator's to fix, so it is reported on stderr as a bad setting
// and the caller exits with exitUsage (ok false).
func startHealth(cfg config.Config, reader *bpf.Reader, log *slog.Logger, stderr io.Writer) (checker *health.Checker, stop func(), ok bool) {
	checker = health.NewChecker(reader, health.Options{FlushInterval: cfg.FlushInterval})
	if cfg.HealthAddr == "" {
		return checker, func() {}, true
	}
	srv, err := health.Listen(string(cfg.HealthAddr), checker)
	if err != nil {
		fmt.Fprintf(stderr, "memlock-exporter: MEMLOCK_EXPORTER_HEALTH_ADDR=%q: cannot listen: %v\n", cfg.HealthAddr, err)
		return nil, nil, false
	}
	log.Info("health endpoint listening", "addr", srv.Addr().String(),
		"live", health.LivePath, "ready", health.ReadyPath, "stall_after", checker.StallAfter())
	return checker, func() {
		ctx, cancel := context.WithTimeout(context.Background(), healthShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			log.Warn("health endpoint did not shut down cleanly", "err", err)
		}
	}, true
}
