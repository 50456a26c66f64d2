package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/config"
	"github.com/memlock-exporter/memlock-exporter/exporter"
	"github.com/memlock-exporter/memlock-exporter/procfs"
)

// procRoot is where procfs is mounted.
const procRoot = "/proc"

// version is set at build time (-ldflags "-X main.version=…").
var version = "dev"

// Exit codes: 0 clean exit, 1 runtime failure (e.g. the kernel refused the
// programs), 2 bad usage or configuration.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("memlock-exporter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	check := fs.Bool("check", false, "load and attach the BPF programs, print which hooks attached, and exit (0 if all attached)")
	printEvents := fs.Bool("print", false, "also print each event as one line on stdout")
	showVersion := fs.Bool("version", false, "print the version and exit")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file, for go tool pprof (a developer's tool: it costs a few percent of CPU)")
	fs.Usage = func() { fmt.Fprintln(stderr, "run `memlock-exporter --help` for flags and environment variables") }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, fs)
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "memlock-exporter: unexpected argument %q; it takes only flags (see --help)\n", fs.Arg(0))
		return exitUsage
	}
	if *showVersion {
		fmt.Fprintf(stdout, "memlock-exporter %s\n", version)
		return exitOK
	}

	cfg, err := config.Load(os.Environ())
	if err != nil {
		fmt.Fprintf(stderr, "memlock-exporter: %v\n", err)
		return exitUsage
	}
	log := cfg.Logger(stderr)
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}

	tracer, err := bpf.Open(bpf.Options{
		Syscalls:           cfg.Syscalls,
		RingbufSize:        int(cfg.RingbufSize),
		WakeupBytes:        int(cfg.WakeupBytes),
		Hooks:              cfg.KernelHook.Probes(),
		KernelFunctionHook: bool(cfg.KernelFunctionHook),
		Uprobes:            bool(cfg.Uprobes),
		LibcPaths:          cfg.LibcPaths,
		CommandArgs:        bool(cfg.CommandArgs),
		ExitOnly:           !bool(cfg.CallDuration),
	})
	if err != nil {
		if errors.Is(err, bpf.ErrExitOnlyUnsupported) {
			fmt.Fprintf(stderr, "memlock-exporter: MEMLOCK_EXPORTER_CALL_DURATION=%q: %v; set it to on\n", "off", err)
			return exitUsage
		}
		var hookErr *bpf.HookError
		if errors.As(err, &hookErr) && cfg.KernelHook != config.HookAuto {
			// The operator insisted on a kind of hook this kernel lacks.
			fmt.Fprintf(stderr, "memlock-exporter: MEMLOCK_EXPORTER_KERNEL_HOOK=%q: %v\n", cfg.KernelHook, err)
			return exitUsage
		}
		log.Error("cannot start tracing", "err", err)
		return exitFailed
	}
	defer func() {
		if err := tracer.Close(); err != nil {
			log.Error("detach BPF programs", "err", err)
		}
	}()
	for _, h := range tracer.Hooks() {
		attrs := []any{"syscall", h.Syscall.String(), "probe", h.Probe.String(), "target", h.Target}
		if len(h.Skipped) > 0 {
			attrs = append(attrs, "skipped", strings.Join(h.Skipped, "; "))
		}
		log.Info("hook attached", attrs...)
	}
	// The optional views never stop the daemon; say once what they cover.
	for _, h := range tracer.Extras() {
		if h.Err != nil {
			log.Warn("optional hook not attached", "probe", h.Probe.String(), "target", h.Target, "err", h.Err)
			continue
		}
		log.Info("optional hook attached", "probe", h.Probe.String(), "target", h.Target)
	}
	if *check {
		fmt.Fprint(stdout, tracer.Plan())
		fmt.Fprintf(stdout, "task access: %s\n", tracer.TaskAccess())
		fmt.Fprintf(stdout, "call duration: %s\n", map[bool]string{false: "on (entry and exit hooks)", true: "off (exit hooks only)"}[tracer.ExitOnly()])
		return exitOK
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "memlock-exporter: --cpuprofile %q: %v\n", *cpuProfile, err)
			return exitUsage
		}
		defer stopProfile()
	}
	setDefaultMemoryLimit(&cfg.Telemetry)
	return serve(ctx, cfg, log, tracer, *printEvents, stdout, stderr)
}

// The Go runtime's soft memory limit unless GOMEMLIMIT sets one: what the
// daemon needs besides its export queues, and room for every item they may
// hold (an encoded log record or span is about 560 bytes; the rest is the
// batches' slack, the batch in flight and the sender's buffers). The
// queues fill when the collector is down or behind; the limit has the
// garbage collector work harder then instead of letting the heap grow to
// twice what they hold, and follows their size so that larger queues do
// not leave it collecting all the time. With the default queues (8192
// records, 8192 spans) it is 24 MiB. Measured at 50 000 events/s (make
// bench, -daemon-env GOMEMLIMIT=…): with the collector down, RSS 38 MiB
// (39 MiB peak) against 48 MiB at the former 40 MiB; with a collector too
// slow for every signal, 2.6 µs per event at 24 or 28 MiB alike. (Before
// the queues bounded items rather than batches they held a fifth batch,
// and at 24 MiB the garbage collector ran all the time: 7.5 µs.)
const (
	memoryLimitBase    = 12 << 20
	memoryLimitPerItem = 768
)

// defaultMemoryLimit is the soft memory limit for the export queues of t.
func defaultMemoryLimit(t *config.Telemetry) int64 {
	return memoryLimitBase + memoryLimitPerItem*int64(t.LogBatch.MaxQueueSize+t.SpanBatch.MaxQueueSize)
}

// setDefaultMemoryLimit applies defaultMemoryLimit if GOMEMLIMIT did not set
// a limit (the runtime reads it itself; -1 only queries).
func setDefaultMemoryLimit(t *config.Telemetry) {
	if debug.SetMemoryLimit(-1) == math.MaxInt64 {
		debug.SetMemoryLimit(defaultMemoryLimit(t))
	}
}

// serve reads events until ctx is done, then drains what the kernel already
// reported and returns the exit code.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, tracer *bpf.Tracer, printEvents bool, stdout, stderr io.Writer) int {
	reader, err := tracer.NewReader(bpf.ReaderOptions{
		FlushInterval: cfg.FlushInterval,
		OnMalformed:   malformedLogger(log),
		Processes:     cfg.ProcessCacheSize,
		ProcRoot:      procRoot,
	})
	if err != nil {
		log.Error("cannot read events", "err", err)
		return exitFailed
	}
	defer reader.Close()

	// The hooks are attached and the reader exists: the endpoint can tell
	// the truth from now on (503 "starting" until Run begins).
	checker, stopHealth, ok := startHealth(cfg, reader, log, stderr)
	if !ok {
		return exitUsage
	}
	// Deferred after reader.Close, so run before it: the endpoint answers
	// "shutting down" until the final flush is over.
	defer stopHealth()

	opts := exporterOptions(cfg, stdout)
	opts.ServiceVersion, opts.Logger, opts.Losses = version, log, reader
	opts.Locked = procfs.Locked{Root: procRoot}
	exp, err := exporter.New(context.Background(), opts)
	if err != nil {
		log.Error("cannot set up OpenTelemetry export: check the OTEL_* variables", "err", err)
		return exitUsage
	}

	// Start-up is over: parsing the kernel's BTF and loading the programs
	// left several MiB of garbage, which would otherwise stay resident
	// until the heap grows back into it. Return it to the kernel once.
	debug.FreeOSMemory()

	handle := exp.Handle
	if printEvents {
		p := newPrinter(stdout)
		handle = func(ev *bpf.Event) {
			p.print(ev)
			exp.Handle(ev)
		}
	}

	tel := &cfg.Telemetry
	log.Info("memlock-exporter started", "version", version, "ringbuf_bytes", int(cfg.RingbufSize), "call_duration", !tracer.ExitOnly(),
		"flush_interval", cfg.FlushInterval, "export_disabled", tel.Disabled,
		"logs", tel.LogsExporter.String(), "traces", tel.TracesExporter.String(), "metrics", tel.MetricsExporter.String(),
		"collector", tel.Logs.Endpoint)
	// Not ready from the signal on, while Run drains and the exporter
	// flushes: a probe then sees "shutting down", not a stall.
	context.AfterFunc(ctx, checker.SetStopping)
	checker.SetReady()
	runErr := reader.Run(ctx, handle)
	checker.SetStopping() // also when Run failed: the daemon is on its way out

	// Reading has stopped (and drained what the kernel had reported); now
	// flush what the SDK holds, within the shutdown budget.
	flushCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := exp.Shutdown(flushCtx); err != nil {
		log.Warn("final flush of telemetry incomplete", "err", err, "timeout", cfg.ShutdownTimeout)
	}
	if runErr != nil {
		log.Error("reading events failed", "err", runErr)
		return exitFailed
	}
	losses, err := reader.Losses()
	if err != nil {
		log.Warn("cannot read loss counters", "err", err)
	}
	log.Info("memlock-exporter stopped", "events", reader.Events(), "malformed", reader.Malformed(), "export_failures", exp.ExportFailures(), "span_export_failures", exp.SpanExportFailures(),
		"lost_ringbuf_full", losses.RingbufFull, "lost_missed_entry", losses.MissedEntry, "lost_entry_map_full", losses.EntryMapFull,
		"lost_program_busy", losses.ProgramBusy, "lost_repeat_shed", losses.RepeatShed)
	ids := reader.IdentityStats()
	log.Info("process identities", "read", ids.Processes, "evicted", ids.Evicted,
		"calls_without", ids.Unknown, "cgroups_known", ids.Cgroups)
	return exitOK
}

// malformedLogger reports the first malformed record and then at most one a
// minute, so a broken producer cannot flood the daemon's log.
func malformedLogger(log *slog.Logger) func(error, []byte) {
	var last time.Time
	var suppressed int
	return func(err error, raw []byte) {
		if now := time.Now(); now.Sub(last) >= time.Minute {
			log.Warn("skipped a malformed record", "err", err, "bytes", len(raw), "suppressed_since_last", suppressed)
			last, suppressed = now, 0
			return
		}
		suppressed++
	}
}
