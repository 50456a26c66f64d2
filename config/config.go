package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caarlos0/env/v11"
)

// Prefix starts the name of every variable of our own. Any other variable
// with this prefix (compared case-insensitively) is an error, so a typo does
// not silently fall back to a default.
const Prefix = "MEMLOCK_EXPORTER_"

// Limits of the values we accept.
const (
	maxRingbufSize     = 1 << 30 // 1 GiB
	minFlushInterval   = time.Millisecond
	maxFlushInterval   = time.Minute
	maxShutdownTimeout = 5 * time.Minute
	maxProcessCache    = 1 << 20
	minProcessCacheTTL = time.Second
	maxProcessCacheTTL = time.Hour
	maxProcessMetrics  = 100000
	wakeupDivisor      = 4 // WakeupBytes default: RingbufSize / wakeupDivisor
)

// Config is the daemon's validated configuration. The env and envDefault
// tags are read by github.com/caarlos0/env; the same names and defaults are
// listed, with descriptions, by Variables. Fields are declared in the order
// Load checks them.
type Config struct {
	// LogLevel is the lowest level of the daemon's own diagnostics.
	LogLevel slog.Level `env:"MEMLOCK_EXPORTER_LOG_LEVEL" envDefault:"info"`
	// LogFormat is "text" or "json": the format of the daemon's own
	// diagnostics (log/slog on stderr).
	LogFormat string `env:"MEMLOCK_EXPORTER_LOG_FORMAT" envDefault:"text"`
	// RingbufSize is the size of the BPF ring buffer in bytes: a power of
	// two, at least the page size and at most 1 GiB.
	RingbufSize int `env:"MEMLOCK_EXPORTER_RINGBUF_SIZE" envDefault:"1MiB"`
	// WakeupBytes is the amount of pending data in the ring buffer above
	// which the kernel wakes the reader. Always above 0 and below
	// RingbufSize after Load (unset or 0 means RingbufSize/4).
	WakeupBytes int `env:"MEMLOCK_EXPORTER_WAKEUP_BYTES" envDefault:"0"`
	// FlushInterval bounds how long an event may wait in the ring buffer.
	FlushInterval time.Duration `env:"MEMLOCK_EXPORTER_FLUSH_INTERVAL" envDefault:"200ms"`
	// ShutdownTimeout bounds the final flush of telemetry on exit.
	ShutdownTimeout time.Duration `env:"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT" envDefault:"5s"`
	// Syscalls are the calls of the mlock family to trace.
	Syscalls []string `env:"MEMLOCK_EXPORTER_SYSCALLS" envDefault:"mlock,mlock2,munlock,mlockall,munlockall" envSeparator:","`
	// KernelHook is the kind of kernel hook to use: "auto" (the best this
	// kernel offers: fentry, then kprobe, then tracepoint) or one of
	// "fentry", "kprobe", "tracepoint" to insist on it.
	KernelHook string `env:"MEMLOCK_EXPORTER_KERNEL_HOOK" envDefault:"auto"`
	// KernelFunctionHook ("on" or "off") adds the kernel-function view:
	// the time spent in do_mlock for each mlock and mlock2 call.
	KernelFunctionHook string `env:"MEMLOCK_EXPORTER_KERNEL_FUNCTION_HOOK" envDefault:"off"`
	// Uprobes ("on" or "off") adds the user-side view: uprobes on the C
	// library's mlock, mlock2 and mlockall.
	Uprobes string `env:"MEMLOCK_EXPORTER_UPROBES" envDefault:"off"`
	// LibcPaths are C libraries to probe besides those found on the host,
	// e.g. a container's libc as seen from the host.
	LibcPaths []string `env:"MEMLOCK_EXPORTER_LIBC_PATHS" envSeparator:":"`
	// ProcessCacheSize is the most processes whose procfs context is
	// cached (least recently used evicted first).
	ProcessCacheSize uint `env:"MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE" envDefault:"4096"`
	// ProcessCacheTTL is how long a process's cached context is used
	// before procfs is read again.
	ProcessCacheTTL time.Duration `env:"MEMLOCK_EXPORTER_PROCESS_CACHE_TTL" envDefault:"30s"`
	// CommandArgs ("on" or "off") adds process.command_args to every
	// event; off by default because arguments can hold secrets.
	CommandArgs string `env:"MEMLOCK_EXPORTER_COMMAND_ARGS" envDefault:"off"`
	// ProcessMetrics ("on" or "off") adds the per-process gauges
	// memlock.process.locked and memlock.process.limit.
	ProcessMetrics string `env:"MEMLOCK_EXPORTER_PROCESS_METRICS" envDefault:"off"`
	// ProcessMetricsMax is the most processes tracked for the per-process
	// gauges and the limit warnings.
	ProcessMetricsMax uint `env:"MEMLOCK_EXPORTER_PROCESS_METRICS_MAX" envDefault:"1000"`
	// LimitWarnFraction: a process holding more than this fraction of its
	// RLIMIT_MEMLOCK yields a memlock.limit_near warning; 0 < f <= 1.
	LimitWarnFraction float64 `env:"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION" envDefault:"0.9"`
	// OTLPEncoder is how log records and spans are exported: "direct" (we
	// encode OTLP and send it ourselves) or "sdk" (the OpenTelemetry Go
	// SDK's batch processors and OTLP exporters). LoadTelemetry reports it
	// too, as Telemetry.Encoder.
	OTLPEncoder string `env:"MEMLOCK_EXPORTER_OTLP_ENCODER" envDefault:"direct"`
	// SDKDisabled is the standard OTEL_SDK_DISABLED: when true, no
	// telemetry is exported.
	SDKDisabled bool `env:"OTEL_SDK_DISABLED" envDefault:"false"`
}

// Error reports one bad variable: its name, the value found and what is
// allowed. Its text is a single line, for example
//
//	MEMLOCK_EXPORTER_RINGBUF_SIZE="3000": must be a power of two between 4096 and 1073741824 bytes (e.g. 1MiB)
type Error struct {
	Var     string // the variable's name
	Value   string // the value found in the environment (header values masked)
	Allowed string // what is allowed, phrased to follow "VAR=value: "
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s=%q: %s", e.Var, e.Value, e.Allowed)
}

// Variable describes one environment variable the daemon honours.
type Variable struct {
	Name        string
	Default     string // empty when there is none
	Allowed     string // the values accepted
	Description string // what it does, one sentence
}

// setting is a Variable plus, for the ones Load reads, how to check it.
type setting struct {
	Variable
	// field is the Config field the variable fills; empty for the OTEL_*
	// variables Load does not read (LoadTelemetry or the SDK reads them).
	field string
	// must says what is allowed, phrased for Error.Allowed. c holds the
	// values parsed so far (earlier fields are valid when it is called).
	must func(c *Config) string
	// valid reports whether the parsed value (and raw, the value as found,
	// empty when unset) is acceptable. Nil means any parsed value is.
	valid func(c *Config, raw string) bool
}

// onOff describes a switch variable taking "on" or "off".
func onOff(name, field, def, description string, ptr func(*Config) *string) setting {
	return setting{
		Variable: Variable{Name: name, Default: def, Allowed: "on, off (case-insensitive)", Description: description},
		field:    field,
		must:     func(*Config) string { return "must be on or off" },
		valid: func(c *Config, _ string) bool {
			v := ptr(c)
			*v = strings.ToLower(*v)
			return *v == "on" || *v == "off"
		},
	}
}

// settings is the one place where variables are named, defaulted and
// described. Load checks them in this order; Variables and Usage list them in
// this order.
func settings() []setting {
	page := os.Getpagesize()
	return []setting{
		{
			Variable: Variable{
				Name:        "MEMLOCK_EXPORTER_LOG_LEVEL",
				Default:     "info",
				Allowed:     "debug, info, warn, error (case-insensitive)",
				Description: "Lowest level of the daemon's own diagnostics on stderr.",
			},
			field: "LogLevel",
			must:  func(*Config) string { return "must be one of debug, info, warn, error (case-insensitive)" },
			valid: func(_ *Config, raw string) bool {
				switch strings.ToLower(raw) {
				case "", "debug", "info", "warn", "error":
					return true // slog alone would also take "info+2" and the like
				}
				return false
			},
		},
		{
			Variable: Variable{
				Name:        "MEMLOCK_EXPORTER_LOG_FORMAT",
				Default:     "text",
				Allowed:     "text, json (case-insensitive)",
				Description: "Format of the daemon's own diagnostics on stderr (log/slog).",
			},
			field: "LogFormat",
			must:  func(*Config) string { return "must be text or json (case-insensitive)" },
			valid: func(c *Config, _ string) bool {
				c.LogFormat = strings.ToLower(c.LogFormat) // normalise "JSON" to "json"
				return c.LogFormat == "text" || c.LogFormat == "json"
			},
		},
		{
			Variable: Variable{
				Name:    "MEMLOCK_EXPORTER_RINGBUF_SIZE",
				Default: "1MiB",
				Allowed: fmt.Sprintf("a power of two from %s (the page size) to %s; bytes, or a KiB, MiB or GiB suffix",
					formatBytes(page), formatBytes(maxRingbufSize)),
				Description: "Size of the BPF ring buffer that carries events from the kernel to the daemon.",
			},
			field: "RingbufSize",
			must: func(*Config) string {
				return fmt.Sprintf("must be a power of two between %d and %d bytes (e.g. 1MiB)", page, maxRingbufSize)
			},
			valid: func(c *Config, _ string) bool {
				n := c.RingbufSize
				return n >= page && n <= maxRingbufSize && n&(n-1) == 0
			},
		},
		{
			Variable: Variable{
				Name:        "MEMLOCK_EXPORTER_WAKEUP_BYTES",
				Default:     "0",
				Allowed:     "0 (meaning ring buffer size / 4) or a byte count below the ring buffer size; same suffixes",
				Description: "Pending data in the ring buffer above which the kernel wakes the reader; less means lower latency and more wake-ups.",
			},
			field: "WakeupBytes",
			must: func(c *Config) string {
				return fmt.Sprintf("must be 0 (ring buffer size / %d) or a byte count below the ring buffer size %d (e.g. %s)",
					wakeupDivisor, c.RingbufSize, formatBytes(c.RingbufSize/wakeupDivisor))
			},
			valid: func(c *Config, _ string) bool {
				return c.WakeupBytes >= 0 && c.WakeupBytes < c.RingbufSize
			},
		},
		{
			Variable: Variable{
				Name:        "MEMLOCK_EXPORTER_FLUSH_INTERVAL",
				Default:     "200ms",
				Allowed:     "a Go duration from 1ms to 1m (e.g. 200ms, 1s)",
				Description: "Longest time an event may wait in the ring buffer before the daemon reads it.",
			},
			field: "FlushInterval",
			must:  func(*Config) string { return "must be a duration with a unit between 1ms and 1m (e.g. 200ms)" },
			valid: func(c *Config, _ string) bool {
				return c.FlushInterval >= minFlushInterval && c.FlushInterval <= maxFlushInterval
			},
		},
		{
			Variable: Variable{
				Name:        "MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT",
				Default:     "5s",
				Allowed:     "a Go duration above 0 and at most 5m (e.g. 5s)",
				Description: "Longest time the final flush of telemetry may take on exit.",
			},
			field: "ShutdownTimeout",
			must:  func(*Config) string { return "must be a duration with a unit above 0 and at most 5m (e.g. 5s)" },
			valid: func(c *Config, _ string) bool {
				return c.ShutdownTimeout > 0 && c.ShutdownTimeout <= maxShutdownTimeout
			},
		},
		{
			Variable: Variable{
				Name:        "MEMLOCK_EXPORTER_SYSCALLS",
				Default:     "mlock,mlock2,munlock,mlockall,munlockall",
				Allowed:     "a comma-separated subset of mlock, mlock2, munlock, mlockall, munlockall; mlock2 needs mlock (glibc's mlock2(addr, len, 0) issues mlock)",
				Description: "Which calls of the mlock family to trace.",
			},
			field: "Syscalls",
			must: func(*Config) string {
				return "must be a comma-separated subset of mlock, mlock2, munlock, mlockall, munlockall, with mlock wherever mlock2 is"
			},
			valid: func(c *Config, _ string) bool {
				seen := map[string]bool{}
				for i, name := range c.Syscalls {
					name = strings.ToLower(strings.TrimSpace(name))
					c.Syscalls[i] = name
					switch name {
					case "mlock", "mlock2", "munlock", "mlockall", "munlockall":
					default:
						return false
					}
					seen[name] = true
				}
				return len(seen) > 0 && (!seen["mlock2"] || seen["mlock"])
			},
		},
		{
			Variable: Variable{
				Name:        "MEMLOCK_EXPORTER_KERNEL_HOOK",
				Default:     "auto",
				Allowed:     "auto, fentry, kprobe, tracepoint",
				Description: "Kind of kernel hook: auto picks the best this kernel offers (fentry, then kprobe, then tracepoint); another value insists on it and fails if the kernel lacks it.",
			},
			field: "KernelHook",
			must:  func(*Config) string { return "must be auto, fentry, kprobe or tracepoint" },
			valid: func(c *Config, _ string) bool {
				c.KernelHook = strings.ToLower(c.KernelHook)
				switch c.KernelHook {
				case "auto", "fentry", "kprobe", "tracepoint":
					return true
				}
				return false
			},
		},
		onOff("MEMLOCK_EXPORTER_KERNEL_FUNCTION_HOOK", "KernelFunctionHook", "off",
			"Also hook do_mlock, the kernel function that locks the pages, to report the time spent there (memlock.kernel.duration); needs fentry or kprobes, else it is skipped with a warning.",
			func(c *Config) *string { return &c.KernelFunctionHook }),
		onOff("MEMLOCK_EXPORTER_UPROBES", "Uprobes", "off",
			"Also hook the C library's mlock, mlock2 and mlockall with uprobes (memlock.libc.function, memlock.caller.address); costs about 17 µs per call.",
			func(c *Config) *string { return &c.Uprobes }),
		{
			Variable: Variable{
				Name:        "MEMLOCK_EXPORTER_LIBC_PATHS",
				Default:     "",
				Allowed:     "absolute paths of C libraries, separated by colons",
				Description: "C libraries to probe besides those found on the host (glibc and musl in /lib, /usr/lib and their multiarch directories), e.g. a container's libc via /proc/<pid>/root.",
			},
			field: "LibcPaths",
			must: func(*Config) string {
				return "must be absolute paths separated by colons, e.g. /lib/x86_64-linux-gnu/libc.so.6"
			},
			valid: func(c *Config, _ string) bool {
				for _, p := range c.LibcPaths {
					if !strings.HasPrefix(p, "/") {
						return false
					}
				}
				return true
			},
		},
		{
			Variable: Variable{
				Name:        "MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE",
				Default:     "4096",
				Allowed:     fmt.Sprintf("an integer from 1 to %d", maxProcessCache),
				Description: "Most processes whose context from /proc (executable path, cgroup, container, arguments) is cached; the least recently used is evicted first.",
			},
			field: "ProcessCacheSize",
			must:  func(*Config) string { return fmt.Sprintf("must be an integer from 1 to %d", maxProcessCache) },
			valid: func(c *Config, _ string) bool {
				return c.ProcessCacheSize >= 1 && c.ProcessCacheSize <= maxProcessCache
			},
		},
		{
			Variable: Variable{
				Name:        "MEMLOCK_EXPORTER_PROCESS_CACHE_TTL",
				Default:     "30s",
				Allowed:     "a Go duration from 1s to 1h (e.g. 30s)",
				Description: "How long a process's cached context is used before /proc is read again (a pid reused by a new process within it keeps the old context).",
			},
			field: "ProcessCacheTTL",
			must:  func(*Config) string { return "must be a duration with a unit between 1s and 1h (e.g. 30s)" },
			valid: func(c *Config, _ string) bool {
				return c.ProcessCacheTTL >= minProcessCacheTTL && c.ProcessCacheTTL <= maxProcessCacheTTL
			},
		},
		onOff("MEMLOCK_EXPORTER_COMMAND_ARGS", "CommandArgs", "off",
			"Add each calling process's arguments (process.command_args, from /proc/<pid>/cmdline) to its events; off by default because arguments can hold secrets.",
			func(c *Config) *string { return &c.CommandArgs }),
		onOff("MEMLOCK_EXPORTER_PROCESS_METRICS", "ProcessMetrics", "off",
			"Report memlock.process.locked and memlock.process.limit (VmLck and soft RLIMIT_MEMLOCK, with process.pid) for the processes seen calling the family; off by default because a series per process is high-cardinality.",
			func(c *Config) *string { return &c.ProcessMetrics }),
		{
			Variable: Variable{
				Name:        "MEMLOCK_EXPORTER_PROCESS_METRICS_MAX",
				Default:     "1000",
				Allowed:     fmt.Sprintf("an integer from 1 to %d", maxProcessMetrics),
				Description: "Most processes tracked for the per-process gauges and the memlock.limit_near warnings; calls of others are counted in memlock.process.untracked.",
			},
			field: "ProcessMetricsMax",
			must:  func(*Config) string { return fmt.Sprintf("must be an integer from 1 to %d", maxProcessMetrics) },
			valid: func(c *Config, _ string) bool {
				return c.ProcessMetricsMax >= 1 && c.ProcessMetricsMax <= maxProcessMetrics
			},
		},
		{
			Variable: Variable{
				Name:        "MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION",
				Default:     "0.9",
				Allowed:     "a number above 0 and at most 1",
				Description: "A process holding more locked memory than this fraction of its soft RLIMIT_MEMLOCK yields a memlock.limit_near WARN log record, at most once per metric interval.",
			},
			field: "LimitWarnFraction",
			must:  func(*Config) string { return "must be a number above 0 and at most 1 (e.g. 0.9)" },
			valid: func(c *Config, _ string) bool {
				return c.LimitWarnFraction > 0 && c.LimitWarnFraction <= 1
			},
		},
		{
			Variable: Variable{
				Name:        "MEMLOCK_EXPORTER_OTLP_ENCODER",
				Default:     "direct",
				Allowed:     "direct, sdk (case-insensitive)",
				Description: "How log records and spans are exported: direct encodes OTLP in the daemon and sends it itself (fastest); sdk uses the OpenTelemetry Go SDK's batch processors and exporters. Metrics always go through the SDK.",
			},
			field: "OTLPEncoder",
			must:  func(*Config) string { return "must be direct or sdk (case-insensitive)" },
			valid: func(c *Config, _ string) bool {
				c.OTLPEncoder = strings.ToLower(c.OTLPEncoder)
				return c.OTLPEncoder == "direct" || c.OTLPEncoder == "sdk"
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_EXPORTER_OTLP_ENDPOINT",
				Default:     "http://localhost:4317",
				Allowed:     "a URL, http:// for plaintext or https:// for TLS; with grpc also host:port",
				Description: "Where telemetry is sent over OTLP, for all signals; with http/protobuf a base URL that gets /v1/logs, /v1/traces or /v1/metrics appended. Unset: plaintext to a collector on the loopback (port 4318 with http/protobuf).",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
				Allowed:     "as OTEL_EXPORTER_OTLP_ENDPOINT; with http/protobuf the full URL, used as is (e.g. http://collector:4318/v1/logs)",
				Description: "Where log records are sent, instead of OTEL_EXPORTER_OTLP_ENDPOINT.",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
				Allowed:     "as OTEL_EXPORTER_OTLP_ENDPOINT; with http/protobuf the full URL, used as is (e.g. http://collector:4318/v1/traces)",
				Description: "Where spans are sent, instead of OTEL_EXPORTER_OTLP_ENDPOINT.",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_EXPORTER_OTLP_PROTOCOL",
				Default:     "grpc",
				Allowed:     "grpc, http/protobuf (case-insensitive; http/json is not supported)",
				Description: "OTLP transport; our default is grpc (the SDK's own default is http/protobuf). _LOGS_PROTOCOL and _TRACES_PROTOCOL set it per signal, as for the other OTEL_EXPORTER_OTLP_* variables.",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_EXPORTER_OTLP_HEADERS",
				Allowed:     "key1=value1,key2=value2 (values URL-encoded)",
				Description: "Headers sent with every export, e.g. for authentication.",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_EXPORTER_OTLP_INSECURE",
				Default:     "false",
				Allowed:     "true, false (case-insensitive)",
				Description: "Plaintext instead of TLS for a grpc endpoint given as host:port, without http:// or https://.",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_EXPORTER_OTLP_COMPRESSION",
				Default:     "none",
				Allowed:     "gzip, none (case-insensitive)",
				Description: "Compression of export requests.",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_EXPORTER_OTLP_TIMEOUT",
				Default:     "10000",
				Allowed:     fmt.Sprintf("milliseconds, from 1 to %d", maxOTELInt),
				Description: "Longest time one export request may take.",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_EXPORTER_OTLP_CERTIFICATE",
				Allowed:     "the path of a PEM file",
				Description: "CA certificates to verify the collector's TLS certificate with, instead of the system's; OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and _CLIENT_KEY (PEM files, both or neither) add a client certificate.",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_LOGS_EXPORTER",
				Default:     "otlp",
				Allowed:     "otlp, console, none",
				Description: "Where the events (one log record per call) go.",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_METRICS_EXPORTER",
				Default:     "otlp",
				Allowed:     "otlp, prometheus, console, none",
				Description: "Where the metrics go.",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_TRACES_EXPORTER",
				Default:     "otlp",
				Allowed:     "otlp, console, none",
				Description: "Where the spans (one span per call, linked from its log record) go; none makes no spans at all.",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_TRACES_SAMPLER",
				Default:     "parentbased_always_on",
				Allowed:     "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio (case-insensitive)",
				Description: "Which calls get a span; every span is a root, so a parentbased_ sampler acts as the sampler it names.",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_TRACES_SAMPLER_ARG",
				Default:     "1",
				Allowed:     "a number from 0 to 1",
				Description: "Fraction of calls that get a span, for the traceidratio samplers.",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_BLRP_SCHEDULE_DELAY",
				Default:     "1000",
				Allowed:     fmt.Sprintf("milliseconds, from 1 to %d", maxOTELInt),
				Description: "Longest time a log record waits to be sent; OTEL_BLRP_EXPORT_TIMEOUT (30000 ms), _MAX_QUEUE_SIZE (8192; the specification says 2048) and _MAX_EXPORT_BATCH_SIZE (2048; the specification says 512) are honoured too.",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_BSP_SCHEDULE_DELAY",
				Default:     "5000",
				Allowed:     fmt.Sprintf("milliseconds, from 1 to %d", maxOTELInt),
				Description: "Longest time a span waits to be sent; OTEL_BSP_EXPORT_TIMEOUT (30000 ms), _MAX_QUEUE_SIZE (8192; the specification says 2048) and _MAX_EXPORT_BATCH_SIZE (2048; the specification says 512) are honoured too.",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_METRIC_EXPORT_INTERVAL",
				Default:     "60000",
				Allowed:     "milliseconds",
				Description: "Time between two metric exports.",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_SERVICE_NAME",
				Default:     "memlock-exporter",
				Allowed:     "any string",
				Description: "The service.name resource attribute.",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_RESOURCE_ATTRIBUTES",
				Allowed:     "key1=value1,key2=value2 (values URL-encoded)",
				Description: "Extra resource attributes on all telemetry.",
			},
		},
		{
			Variable: Variable{
				Name:        "OTEL_SDK_DISABLED",
				Default:     "false",
				Allowed:     "true, false (case-insensitive); empty means false",
				Description: "true: export no telemetry at all.",
			},
			field: "SDKDisabled",
			must:  func(*Config) string { return "must be true or false (case-insensitive)" },
		},
		{
			Variable: Variable{
				Name:        "GOMEMLIMIT",
				Default:     "40MiB",
				Allowed:     "a byte count with a unit (e.g. 64MiB), or off",
				Description: "The Go runtime's soft memory limit (read by the runtime); ours when unset, so that full export queues do not double the heap.",
			},
		},
	}
}

// Variables lists every MEMLOCK_EXPORTER_* variable and the main standard
// OTEL_* variables the daemon honours (read by Load, LoadTelemetry or the
// OpenTelemetry SDK), in the order Usage prints them. The slice is the
// caller's.
func Variables() []Variable {
	ss := settings()
	vs := make([]Variable, len(ss))
	for i, s := range ss {
		vs[i] = s.Variable
	}
	return vs
}

// Usage prints Variables as an aligned table: name, default ("-" when there
// is none), and description followed by what is allowed.
func Usage(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tDESCRIPTION")
	for _, v := range Variables() {
		def := v.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s Allowed: %s.\n", v.Name, def, v.Description, v.Allowed)
	}
	tw.Flush()
}

// FromEnv is Load(os.Environ()).
func FromEnv() (Config, error) {
	return Load(os.Environ())
}

// Load reads the configuration from environ, a list of "NAME=value" entries
// as returned by os.Environ; when a name appears more than once, the last
// entry wins (as for exec.Cmd.Env). Unset variables take their defaults;
// OTEL_SDK_DISABLED set to the empty string counts as unset, but our own
// variables set to the empty string are errors.
//
// Every problem is returned as an *Error. When there are several, Load
// reports the first one in this order: unknown MEMLOCK_EXPORTER_* names, in
// alphabetical order; then the variables in the order Variables lists them
// (MEMLOCK_EXPORTER_LOG_LEVEL, _LOG_FORMAT, _RINGBUF_SIZE, _WAKEUP_BYTES,
// _FLUSH_INTERVAL, _SHUTDOWN_TIMEOUT, _SYSCALLS, _KERNEL_HOOK, _KERNEL_FUNCTION_HOOK, _UPROBES,
// _LIBC_PATHS, _PROCESS_CACHE_SIZE, _PROCESS_CACHE_TTL, _COMMAND_ARGS,
// _PROCESS_METRICS, _PROCESS_METRICS_MAX, _LIMIT_WARN_FRACTION,
// _OTLP_ENCODER, then OTEL_SDK_DISABLED).
func Load(environ []string) (Config, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			vars[k] = v
		}
	}
	ss := settings()

	if err := checkUnknown(vars, ss); err != nil {
		return Config{}, err
	}

	// Parse everything first, keeping each variable's parse failure, then
	// check the variables in order so the first problem reported is stable.
	var c Config
	failed := make(map[string]bool) // variable name -> did not parse
	err := env.ParseWithOptions(&c, env.Options{
		Environment: vars,
		FuncMap: map[reflect.Type]env.ParserFunc{
			reflect.TypeFor[int]():           func(s string) (any, error) { return parseBytes(s) },
			reflect.TypeFor[time.Duration](): func(s string) (any, error) { return time.ParseDuration(s) },
			reflect.TypeFor[bool]():          func(s string) (any, error) { return parseBool(s) },
		},
	})
	if err != nil {
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
			f, ok := reflect.TypeFor[Config]().FieldByName(pe.Name)
			if !ok {
				return Config{}, fmt.Errorf("read environment: %w", e)
			}
			failed[f.Tag.Get("env")] = true
		}
	}

	for _, s := range ss {
		if s.field == "" {
			continue
		}
		raw, set := vars[s.Name]
		empty := set && raw == "" && strings.HasPrefix(s.Name, Prefix) && s.Default != "" // empty means the empty default
		if empty || failed[s.Name] || (s.valid != nil && !s.valid(&c, raw)) {
			return Config{}, &Error{Var: s.Name, Value: raw, Allowed: s.must(&c)}
		}
	}

	if c.WakeupBytes == 0 {
		c.WakeupBytes = c.RingbufSize / wakeupDivisor
	}
	return c, nil
}

// checkUnknown returns an *Error for the alphabetically first variable that
// starts with Prefix (in any case) but is not one of ours.
func checkUnknown(vars map[string]string, ss []setting) error {
	var known, unknown []string
	for _, s := range ss {
		if strings.HasPrefix(s.Name, Prefix) {
			known = append(known, s.Name)
		}
	}
	for k := range vars {
		if len(k) >= len(Prefix) && strings.EqualFold(k[:len(Prefix)], Prefix) && !slices.Contains(known, k) {
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

var byteUnits = []struct {
	suffix string
	mult   int
}{
	{"KiB", 1 << 10},
	{"MiB", 1 << 20},
	{"GiB", 1 << 30},
}

// parseBytes parses a non-negative decimal byte count with an optional
// binary suffix KiB, MiB or GiB (any case): "4096", "64KiB", "4MiB".
func parseBytes(s string) (int, error) {
	num, mult := s, 1
	for _, u := range byteUnits {
		if len(s) > len(u.suffix) && strings.EqualFold(s[len(s)-len(u.suffix):], u.suffix) {
			num, mult = s[:len(s)-len(u.suffix)], u.mult
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 63)
	if err != nil || n > uint64(math.MaxInt/mult) {
		return 0, fmt.Errorf("parse byte count %q", s)
	}
	return int(n) * mult, nil
}

// formatBytes writes n with the largest binary suffix that divides it.
func formatBytes(n int) string {
	for i := len(byteUnits) - 1; i >= 0; i-- {
		if u := byteUnits[i]; n != 0 && n%u.mult == 0 {
			return strconv.Itoa(n/u.mult) + u.suffix
		}
	}
	return strconv.Itoa(n)
}

// parseBool accepts true and false in any case, as the OpenTelemetry
// specification asks for boolean variables; strconv.ParseBool would also take
// "1", "t" and so on, but not "tRUE".
func parseBool(s string) (bool, error) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, nil
	case strings.EqualFold(s, "false"):
		return false, nil
	}
	return false, fmt.Errorf("parse boolean %q", s)
}

// Logger returns a logger for the daemon's own diagnostics, writing to w in
// c.LogFormat (JSON for "json", else text) at c.LogLevel and above.
func (c Config) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
