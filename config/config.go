package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

//go:generate go test -count=1 -run TestREADMETable . -args -update-readme

// Prefix starts the name of every variable of our own. Any other variable
// with this prefix (compared case-insensitively) is an error, so a typo does
// not silently fall back to a default.
const Prefix = "MEMLOCK_EXPORTER_"

// removed are variables we no longer read, with why: setting one earns a
// warning rather than the unknown-variable error, so an upgrade does not
// stop a deployment that still sets it.
var removed = map[string]string{
	"MEMLOCK_EXPORTER_OTLP_ENCODER":      "log records and spans are always encoded by the daemon",
	"MEMLOCK_EXPORTER_PROCESS_CACHE_TTL": "a process's identity is read by the kernel at its first call and kept until an exec or a cgroup move replaces it",
}

// Config is the daemon's validated configuration, and the one table of our
// variables: each field's tags name its variable (env), give its default
// (envDefault) and say what it does (help, one sentence, for --help and the
// README); min, gt (exclusive) and max bound it, pow2 asks for a power of
// two. Each field's type parses the value and says what it accepts. Load
// checks the fields in this order.
type Config struct {
	LogLevel  LogLevel  `env:"MEMLOCK_EXPORTER_LOG_LEVEL" envDefault:"info" help:"Lowest level of the daemon's own diagnostics on stderr."`
	LogFormat LogFormat `env:"MEMLOCK_EXPORTER_LOG_FORMAT" envDefault:"text" help:"Format of the daemon's own diagnostics on stderr (log/slog)."`
	// RingbufSize's lower bound is the page size, 4 KiB on x86-64, our
	// only architecture.
	RingbufSize Bytes `env:"MEMLOCK_EXPORTER_RINGBUF_SIZE" envDefault:"1MiB" min:"4KiB" max:"1GiB" pow2:"true" help:"Size of the BPF ring buffer that carries events from the kernel to the daemon."`
	// WakeupBytes is above 0 and below RingbufSize after Load.
	WakeupBytes     Bytes         `env:"MEMLOCK_EXPORTER_WAKEUP_BYTES" envDefault:"0" help:"Pending data in the ring buffer above which the kernel wakes the reader (at most once per 100 µs while it is behind); less means lower latency and more wake-ups."`
	FlushInterval   time.Duration `env:"MEMLOCK_EXPORTER_FLUSH_INTERVAL" envDefault:"200ms" min:"1ms" max:"1m" help:"Longest time an event may wait in the ring buffer before the daemon reads it."`
	ShutdownTimeout time.Duration `env:"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT" envDefault:"5s" gt:"0s" max:"5m" help:"Longest time the final flush of telemetry may take on exit."`
	// Syscalls holds each call once, in the order first given, after Load.
	Syscalls           Syscalls      `env:"MEMLOCK_EXPORTER_SYSCALLS" envDefault:"mlock,mlock2,munlock,mlockall,munlockall" envSeparator:"," help:"Which calls of the mlock family to trace; glibc's mlock2 with no flags issues the mlock syscall, hence mlock2 only together with mlock."`
	KernelHook         KernelHook    `env:"MEMLOCK_EXPORTER_KERNEL_HOOK" envDefault:"auto" help:"Kind of kernel hook: auto picks the best this kernel offers, per syscall (fentry, else kprobe, else tracepoint); another value insists on it, and start-up fails with exit code 2 if the kernel lacks it."`
	CallDuration       Switch        `env:"MEMLOCK_EXPORTER_CALL_DURATION" envDefault:"on" help:"off: hook each call at its exit only, reading its arguments from the thread's saved registers: one hook per call instead of two, so each call costs less, but no duration (no memlock.duration, no memlock.call.duration histogram, spans of zero length at the call's exit); needs Linux 5.15 or later."`
	KernelFunctionHook Switch        `env:"MEMLOCK_EXPORTER_KERNEL_FUNCTION_HOOK" envDefault:"off" help:"on: also hook do_mlock, the kernel function that locks the pages, and report the time spent there (memlock.kernel.duration); needs fentry or kprobes, else it is skipped with a warning."`
	Uprobes            Switch        `env:"MEMLOCK_EXPORTER_UPROBES" envDefault:"off" help:"on: also hook the C library's mlock, mlock2 and mlockall with uprobes (memlock.libc.function, memlock.caller.address); about 17 µs per call."`
	LibcPaths          LibcPaths     `env:"MEMLOCK_EXPORTER_LIBC_PATHS" envDefault:"" help:"More C libraries to probe with the uprobes besides those found on the host (glibc and musl in /lib, /usr/lib and their multiarch directories), e.g. a container's libc via /proc/<pid>/root/..."`
	ProcessCacheSize   int           `env:"MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE" envDefault:"4096" min:"1" max:"1048576" help:"Most processes whose identity (executable path, cgroups, container, pod, arguments; read by the kernel at each process's first call) the daemon keeps; the least recently used is evicted first, and the kernel sends it again at the process's next call."`
	CommandArgs        Switch        `env:"MEMLOCK_EXPORTER_COMMAND_ARGS" envDefault:"off" help:"on: add each calling process's arguments (process.command_args, from /proc/<pid>/cmdline) to its events; off by default because arguments can hold secrets."`
	ProcessMetrics     Switch        `env:"MEMLOCK_EXPORTER_PROCESS_METRICS" envDefault:"off" help:"on: report memlock.process.locked and memlock.process.limit (VmLck and the soft RLIMIT_MEMLOCK, with process.pid: one series per process, hence off by default) for the processes seen calling the family and still alive; an unlimited limit has no data point."`
	ProcessMetricsMax  int           `env:"MEMLOCK_EXPORTER_PROCESS_METRICS_MAX" envDefault:"1000" min:"1" max:"100000" help:"Most processes tracked for the per-process gauges and the memlock.limit_near warnings; calls of others are counted in memlock.process.untracked."`
	LimitWarnFraction  float64       `env:"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION" envDefault:"0.9" gt:"0" max:"1" help:"A process holding more locked memory than this fraction of its soft RLIMIT_MEMLOCK yields a memlock.limit_near WARN log record, at most once per metric interval."`
	FoldWindow         time.Duration `env:"MEMLOCK_EXPORTER_FOLD_WINDOW" envDefault:"1s" min:"0s" max:"1h" help:"Window for folding floods: when a thread repeats one call (same process, syscall, arguments and result) more than MEMLOCK_EXPORTER_FOLD_AFTER times within it, the further repeats in the window become one record and one span with memlock.repeat.count; metrics still count every call; 0s turns folding off."`
	FoldAfter          int           `env:"MEMLOCK_EXPORTER_FOLD_AFTER" envDefault:"1000" min:"1" max:"1000000000" help:"Calls of a run of repeats exported one by one in each MEMLOCK_EXPORTER_FOLD_WINDOW before the rest fold."`
	QueueDir           QueueDir      `env:"MEMLOCK_EXPORTER_QUEUE_DIR" envDefault:"" help:"Directory of the persistent export queue: set, log records and spans waiting for the collector are kept on disk (one file per signal) and survive a restart of the daemon or the collector; unset, they wait in memory."`
	QueueMaxBytes      Bytes         `env:"MEMLOCK_EXPORTER_QUEUE_MAX_BYTES" envDefault:"256MiB" min:"1MiB" max:"1024GiB" help:"Most bytes of export requests the persistent queue keeps per signal; beyond, the newest are dropped (memlock.events.lost{queue_full})."`
	// HealthAddr is empty or a host:port with a port from 1 to 65535 after
	// Load; whether it can be bound is for the daemon to find out.
	HealthAddr HealthAddr `env:"MEMLOCK_EXPORTER_HEALTH_ADDR" envDefault:"" help:"Address (host:port) of the HTTP health endpoint for Kubernetes probes: /livez answers 200 while the event reader makes progress, /readyz once the hooks are attached and the reader runs, both 503 with a one-line reason otherwise (a stalled reader; /readyz also before start and during shutdown); unset, there is none."`

	// Telemetry holds the standard OTEL_* settings.
	Telemetry Telemetry `env:"-"`
	// Warnings are problems that do not stop the daemon (a removed
	// variable still set), one line each, for the daemon to log at start.
	Warnings []string `env:"-"`
}

// Error reports one bad variable: its name, the value found and what is
// allowed. Its text is a single line, for example
//
//	MEMLOCK_EXPORTER_FLUSH_INTERVAL="200": must be a duration with a unit from 1ms to 1m (e.g. 200ms)
type Error struct {
	Var     string // the variable's name
	Value   string // the value found (header values and URL passwords masked)
	Allowed string // what is allowed, phrased to follow "VAR=value: "
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s=%q: %s", e.Var, e.Value, e.Allowed)
}

// Load reads the configuration from environ, "NAME=value" entries as
// os.Environ returns them; when a name appears more than once, the last
// entry wins (as for exec.Cmd.Env). A variable unset or set to the empty
// string takes its default.
//
// Every problem is returned as an *Error. When there are several, Load
// reports the first in this order: unknown MEMLOCK_EXPORTER_* names, in
// alphabetical order; our variables in Config's field order (the order of
// Variables); then the standard variables in the order Telemetry documents.
func Load(environ []string) (Config, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			vars[k] = v
		}
	}
	fs := fields()
	if err := checkUnknown(vars, fs); err != nil {
		return Config{}, err
	}

	// caarlos0/env reports every field that does not parse; check the
	// fields in order so that the first problem reported is stable.
	var c Config
	failed := make(map[string]bool) // Go field names
	if err := env.ParseWithOptions(&c, env.Options{Environment: vars}); err != nil {
		var agg env.AggregateError
		if !errors.As(err, &agg) {
			return Config{}, fmt.Errorf("read environment: %w", err)
		}
		for _, e := range agg.Errors {
			var pe env.ParseError
			if !errors.As(e, &pe) {
				// Only a mistake in Config's tags can get here.
				return Config{}, fmt.Errorf("read environment: %w", e)
			}
			failed[pe.Name] = true
		}
	}
	v := reflect.ValueOf(&c).Elem()
	for _, f := range fs {
		if failed[v.Type().Field(f.index).Name] || !f.valid(&c, v.Field(f.index)) {
			return Config{}, f.err(&c, vars[f.name])
		}
	}
	if c.WakeupBytes == 0 {
		c.WakeupBytes = c.RingbufSize / wakeupDivisor
	}
	c.Syscalls = unique(c.Syscalls)

	var err error
	if c.Telemetry, err = loadTelemetry(vars); err != nil {
		return Config{}, err
	}
	for _, name := range slices.Sorted(maps.Keys(removed)) {
		if _, set := vars[name]; set {
			c.Warnings = append(c.Warnings, name+" is no longer used: "+removed[name]+"; unset it")
		}
	}
	return c, nil
}

// valid checks a parsed value against its bounds and rule.
func (f field) valid(c *Config, v reflect.Value) bool {
	if (f.min != "" || f.gt != "" || f.max != "" || f.pow2) && !f.inBounds(v) {
		return false
	}
	r, ok := rules[f.name]
	return !ok || r.ok(c)
}

// unique drops repeated syscalls, keeping the first of each: the tracer
// would try to attach twice.
func unique(ss Syscalls) Syscalls {
	var out Syscalls
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// checkUnknown returns an *Error for the alphabetically first variable that
// starts with Prefix (in any case) but is neither ours nor removed.
func checkUnknown(vars map[string]string, fs []field) error {
	known := make([]string, len(fs))
	for i, f := range fs {
		known[i] = f.name
	}
	var unknown []string
	for k := range vars {
		_, gone := removed[k]
		if len(k) >= len(Prefix) && strings.EqualFold(k[:len(Prefix)], Prefix) && !slices.Contains(known, k) && !gone {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	name := unknown[0]
	msg := "unknown variable"
	if guess := closest(name, known); guess != "" {
		msg += " (did you mean " + guess + "?)"
	}
	return &Error{Var: name, Value: vars[name], Allowed: msg + "; known: " + strings.Join(known, ", ")}
}

// closest returns the known name nearest to name (ignoring case) when it is
// near enough to be a likely typo, else "".
func closest(name string, known []string) string {
	best, bestDist := "", math.MaxInt
	for _, k := range known {
		if d := editDistance(strings.ToUpper(name), k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if bestDist > 3 {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Logger returns a logger for the daemon's own diagnostics, writing to w in
// c.LogFormat at c.LogLevel and above.
func (c Config) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel.Level()}
	if c.LogFormat == LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
