package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/memlock-exporter/memlock-exporter/config"
)

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, `memlock-exporter %s: watch every process's mlock, mlock2 (and family) calls with
eBPF and export each call as OpenTelemetry log records and metrics over OTLP.

Usage: memlock-exporter [flags]     (as root, or with CAP_BPF and CAP_PERFMON)

Flags:
`, version)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprint(w, "\nEnvironment (a bad value stops start-up with exit code 2):\n")
	config.Usage(w)
	fmt.Fprint(w, "\nExit codes: 0 clean exit (SIGINT/SIGTERM), 1 tracing could not start or failed, 2 bad flag or variable.\n")
}
