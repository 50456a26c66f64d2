package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memlock-exporter/memlock-exporter/bpf"
)

var allSyscalls = Syscalls{bpf.SyscallMlock, bpf.SyscallMlock2, bpf.SyscallMunlock, bpf.SyscallMlockall, bpf.SyscallMunlockall}

func defaults() Config {
	return Config{
		LogLevel:           LogLevel(slog.LevelInfo),
		LogFormat:          LogFormatText,
		RingbufSize:        1 << 20,
		WakeupBytes:        1 << 18,
		FlushInterval:      200 * time.Millisecond,
		ShutdownTimeout:    5 * time.Second,
		Syscalls:           allSyscalls,
		KernelHook:         HookAuto,
		CallDuration:       true,
		KernelFunctionHook: false,
		Uprobes:            false,
		LibcPaths:          nil,
		ProcessCacheSize:   4096,
		CommandArgs:        false,
		ProcessMetrics:     false,
		ProcessMetricsMax:  1000,
		LimitWarnFraction:  0.9,
		FoldWindow:         time.Second,
		FoldAfter:          1000,
		QueueMaxBytes:      256 << 20,
		Telemetry:          telemetryDefaults(),
	}
}

func load(t *testing.T, environ ...string) Config {
	t.Helper()
	c, err := Load(environ)
	if err != nil {
		t.Fatalf("Load(%q): %v", environ, err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	for _, environ := range [][]string{
		nil,
		{"PATH=/usr/bin", "HOME=/root", "MEMLOCK=1", "MEMLOCK_EXPORTER=1", "garbage", "=x"},
	} {
		if got, want := load(t, environ...), defaults(); !reflect.DeepEqual(got, want) {
			t.Errorf("Load(%q) =\n%+v, want\n%+v", environ, got, want)
		}
	}
}

// TestEmptyMeansDefault: a variable set to the empty string takes its
// default, ours as the standard ones.
func TestEmptyMeansDefault(t *testing.T) {
	var environ []string
	for _, v := range Variables() {
		environ = append(environ, v.Name+"=")
	}
	if got, want := load(t, environ...), defaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("all variables empty:\n%+v, want\n%+v", got, want)
	}
}

// TestDefaultSyscallsAgree: a tracer given no list traces what the daemon
// traces by default.
func TestDefaultSyscallsAgree(t *testing.T) {
	if got := load(t).Syscalls; !slices.Equal(got, bpf.DefaultSyscalls) {
		t.Errorf("config's default syscalls %v, bpf.DefaultSyscalls %v", got, bpf.DefaultSyscalls)
	}
}

func TestGoodValues(t *testing.T) {
	level := func(l slog.Level) func(*Config) { return func(c *Config) { c.LogLevel = LogLevel(l) } }
	ring := func(size, wakeup Bytes) func(*Config) {
		return func(c *Config) { c.RingbufSize, c.WakeupBytes = size, wakeup }
	}
	tests := []struct {
		env  string
		want func(*Config)
	}{
		{"MEMLOCK_EXPORTER_LOG_LEVEL=debug", level(slog.LevelDebug)},
		{"MEMLOCK_EXPORTER_LOG_LEVEL=DEBUG", level(slog.LevelDebug)},
		{"MEMLOCK_EXPORTER_LOG_LEVEL=Info", level(slog.LevelInfo)},
		{"MEMLOCK_EXPORTER_LOG_LEVEL=warn", level(slog.LevelWarn)},
		{"MEMLOCK_EXPORTER_LOG_LEVEL=WaRn", level(slog.LevelWarn)},
		{"MEMLOCK_EXPORTER_LOG_LEVEL=error", level(slog.LevelError)},
		{"MEMLOCK_EXPORTER_LOG_LEVEL=ERROR", level(slog.LevelError)},

		{"MEMLOCK_EXPORTER_LOG_FORMAT=text", func(*Config) {}},
		{"MEMLOCK_EXPORTER_LOG_FORMAT=json", func(c *Config) { c.LogFormat = LogFormatJSON }},
		{"MEMLOCK_EXPORTER_LOG_FORMAT=JSON", func(c *Config) { c.LogFormat = LogFormatJSON }},

		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=4096", ring(4096, 1024)},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=4KiB", ring(4096, 1024)},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=65536", ring(65536, 16384)},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=64KiB", ring(65536, 16384)},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=64kib", ring(65536, 16384)},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=4MiB", ring(4<<20, 1<<20)},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=4MIB", ring(4<<20, 1<<20)},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=1024KiB", ring(1<<20, 256<<10)},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=1GiB", ring(1<<30, 256<<20)},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=1gib", ring(1<<30, 256<<20)},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=1073741824", ring(1<<30, 256<<20)},

		{"MEMLOCK_EXPORTER_WAKEUP_BYTES=0", func(*Config) {}},
		{"MEMLOCK_EXPORTER_WAKEUP_BYTES=1", func(c *Config) { c.WakeupBytes = 1 }},
		{"MEMLOCK_EXPORTER_WAKEUP_BYTES=4096", func(c *Config) { c.WakeupBytes = 4096 }},
		{"MEMLOCK_EXPORTER_WAKEUP_BYTES=256KiB", func(c *Config) { c.WakeupBytes = 256 << 10 }},
		{"MEMLOCK_EXPORTER_WAKEUP_BYTES=1048575", func(c *Config) { c.WakeupBytes = 1<<20 - 1 }},

		{"MEMLOCK_EXPORTER_FLUSH_INTERVAL=1ms", func(c *Config) { c.FlushInterval = time.Millisecond }},
		{"MEMLOCK_EXPORTER_FLUSH_INTERVAL=1.5s", func(c *Config) { c.FlushInterval = 1500 * time.Millisecond }},
		{"MEMLOCK_EXPORTER_FLUSH_INTERVAL=1m", func(c *Config) { c.FlushInterval = time.Minute }},
		{"MEMLOCK_EXPORTER_FLUSH_INTERVAL=60s", func(c *Config) { c.FlushInterval = time.Minute }},
		{"MEMLOCK_EXPORTER_FLUSH_INTERVAL=1000us", func(c *Config) { c.FlushInterval = time.Millisecond }},

		{"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT=1ns", func(c *Config) { c.ShutdownTimeout = time.Nanosecond }},
		{"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT=30s", func(c *Config) { c.ShutdownTimeout = 30 * time.Second }},
		{"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT=5m", func(c *Config) { c.ShutdownTimeout = 5 * time.Minute }},
		{"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT=4m59s", func(c *Config) { c.ShutdownTimeout = 299 * time.Second }},

		{"MEMLOCK_EXPORTER_SYSCALLS=mlock", func(c *Config) { c.Syscalls = Syscalls{bpf.SyscallMlock} }},
		{"MEMLOCK_EXPORTER_SYSCALLS=munlockall", func(c *Config) { c.Syscalls = Syscalls{bpf.SyscallMunlockall} }},
		{"MEMLOCK_EXPORTER_SYSCALLS=mlock2,mlock", func(c *Config) { c.Syscalls = Syscalls{bpf.SyscallMlock2, bpf.SyscallMlock} }},
		{"MEMLOCK_EXPORTER_SYSCALLS=MLOCK, Mlock2 ,munlock", func(c *Config) {
			c.Syscalls = Syscalls{bpf.SyscallMlock, bpf.SyscallMlock2, bpf.SyscallMunlock}
		}},
		{"MEMLOCK_EXPORTER_SYSCALLS=mlock,munlock,MLOCK", func(c *Config) { c.Syscalls = Syscalls{bpf.SyscallMlock, bpf.SyscallMunlock} }},
		{"MEMLOCK_EXPORTER_SYSCALLS=munlockall,mlockall,munlock,mlock2,mlock", func(c *Config) {
			c.Syscalls = Syscalls{bpf.SyscallMunlockall, bpf.SyscallMlockall, bpf.SyscallMunlock, bpf.SyscallMlock2, bpf.SyscallMlock}
		}},

		{"MEMLOCK_EXPORTER_KERNEL_HOOK=auto", func(*Config) {}},
		{"MEMLOCK_EXPORTER_KERNEL_HOOK=fentry", func(c *Config) { c.KernelHook = HookFentry }},
		{"MEMLOCK_EXPORTER_KERNEL_HOOK=kprobe", func(c *Config) { c.KernelHook = HookKprobe }},
		{"MEMLOCK_EXPORTER_KERNEL_HOOK=Tracepoint", func(c *Config) { c.KernelHook = HookTracepoint }},
		{"MEMLOCK_EXPORTER_KERNEL_HOOK=AUTO", func(*Config) {}},

		{"MEMLOCK_EXPORTER_CALL_DURATION=off", func(c *Config) { c.CallDuration = false }},
		{"MEMLOCK_EXPORTER_CALL_DURATION=ON", func(*Config) {}},
		{"MEMLOCK_EXPORTER_KERNEL_FUNCTION_HOOK=on", func(c *Config) { c.KernelFunctionHook = true }},
		{"MEMLOCK_EXPORTER_KERNEL_FUNCTION_HOOK=OFF", func(*Config) {}},
		{"MEMLOCK_EXPORTER_UPROBES=On", func(c *Config) { c.Uprobes = true }},
		{"MEMLOCK_EXPORTER_UPROBES=off", func(*Config) {}},
		{"MEMLOCK_EXPORTER_LIBC_PATHS=/lib/libc.so.6", func(c *Config) { c.LibcPaths = LibcPaths{"/lib/libc.so.6"} }},
		{"MEMLOCK_EXPORTER_LIBC_PATHS=/a/libc.so.6:/proc/1/root/lib/ld-musl-x86_64.so.1", func(c *Config) {
			c.LibcPaths = LibcPaths{"/a/libc.so.6", "/proc/1/root/lib/ld-musl-x86_64.so.1"}
		}},

		{"MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE=1", func(c *Config) { c.ProcessCacheSize = 1 }},
		{"MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE=65536", func(c *Config) { c.ProcessCacheSize = 65536 }},
		{"MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE=1048576", func(c *Config) { c.ProcessCacheSize = 1 << 20 }},
		{"MEMLOCK_EXPORTER_COMMAND_ARGS=on", func(c *Config) { c.CommandArgs = true }},
		{"MEMLOCK_EXPORTER_COMMAND_ARGS=OFF", func(*Config) {}},
		{"MEMLOCK_EXPORTER_PROCESS_METRICS=ON", func(c *Config) { c.ProcessMetrics = true }},
		{"MEMLOCK_EXPORTER_PROCESS_METRICS=Off", func(*Config) {}},
		{"MEMLOCK_EXPORTER_PROCESS_METRICS_MAX=1", func(c *Config) { c.ProcessMetricsMax = 1 }},
		{"MEMLOCK_EXPORTER_PROCESS_METRICS_MAX=100000", func(c *Config) { c.ProcessMetricsMax = 100000 }},
		{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION=1", func(c *Config) { c.LimitWarnFraction = 1 }},
		{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION=0.5", func(c *Config) { c.LimitWarnFraction = 0.5 }},
		{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION=.75", func(c *Config) { c.LimitWarnFraction = 0.75 }},
		{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION=1e-3", func(c *Config) { c.LimitWarnFraction = 0.001 }},
		{"MEMLOCK_EXPORTER_FOLD_WINDOW=0s", func(c *Config) { c.FoldWindow = 0 }},
		{"MEMLOCK_EXPORTER_FOLD_WINDOW=250ms", func(c *Config) { c.FoldWindow = 250 * time.Millisecond }},
		{"MEMLOCK_EXPORTER_FOLD_WINDOW=1h", func(c *Config) { c.FoldWindow = time.Hour }},
		{"MEMLOCK_EXPORTER_FOLD_AFTER=1", func(c *Config) { c.FoldAfter = 1 }},
		{"MEMLOCK_EXPORTER_FOLD_AFTER=1000000000", func(c *Config) { c.FoldAfter = 1000000000 }},
		{"MEMLOCK_EXPORTER_QUEUE_DIR=/var/lib/q/", func(c *Config) { c.QueueDir = "/var/lib/q" }},
		{"MEMLOCK_EXPORTER_QUEUE_MAX_BYTES=1MiB", func(c *Config) { c.QueueMaxBytes = 1 << 20 }},
		{"MEMLOCK_EXPORTER_QUEUE_MAX_BYTES=8GiB", func(c *Config) { c.QueueMaxBytes = 8 << 30 }},
		{"MEMLOCK_EXPORTER_HEALTH_ADDR=:8686", func(c *Config) { c.HealthAddr = ":8686" }},
		{"MEMLOCK_EXPORTER_HEALTH_ADDR=127.0.0.1:8686", func(c *Config) { c.HealthAddr = "127.0.0.1:8686" }},
		{"MEMLOCK_EXPORTER_HEALTH_ADDR=localhost:1", func(c *Config) { c.HealthAddr = "localhost:1" }},
		{"MEMLOCK_EXPORTER_HEALTH_ADDR=[::1]:65535", func(c *Config) { c.HealthAddr = "[::1]:65535" }},
		{"MEMLOCK_EXPORTER_HEALTH_ADDR=[fe80::1%eth0]:8686", func(c *Config) { c.HealthAddr = "[fe80::1%eth0]:8686" }},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			want := defaults()
			tt.want(&want)
			if got := load(t, tt.env); !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%+v, want\n%+v", got, want)
			}
		})
	}
}

func TestAllTogether(t *testing.T) {
	got := load(t,
		"MEMLOCK_EXPORTER_LOG_LEVEL=warn",
		"MEMLOCK_EXPORTER_LOG_FORMAT=json",
		"MEMLOCK_EXPORTER_RINGBUF_SIZE=16MiB",
		"MEMLOCK_EXPORTER_WAKEUP_BYTES=2MiB",
		"MEMLOCK_EXPORTER_FLUSH_INTERVAL=50ms",
		"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT=10s",
		"MEMLOCK_EXPORTER_SYSCALLS=MLOCK, mlock2",
		"MEMLOCK_EXPORTER_KERNEL_HOOK=kprobe",
		"MEMLOCK_EXPORTER_KERNEL_FUNCTION_HOOK=ON",
		"MEMLOCK_EXPORTER_UPROBES=on",
		"MEMLOCK_EXPORTER_LIBC_PATHS=/a/libc.so.6:/b/libc.so",
		"MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE=100",
		"MEMLOCK_EXPORTER_COMMAND_ARGS=On",
		"MEMLOCK_EXPORTER_PROCESS_METRICS=ON",
		"MEMLOCK_EXPORTER_PROCESS_METRICS_MAX=50",
		"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION=0.8",
		"MEMLOCK_EXPORTER_FOLD_WINDOW=2s",
		"MEMLOCK_EXPORTER_FOLD_AFTER=10",
		"MEMLOCK_EXPORTER_QUEUE_DIR=/var/q",
		"MEMLOCK_EXPORTER_QUEUE_MAX_BYTES=1GiB",
		"MEMLOCK_EXPORTER_HEALTH_ADDR=0.0.0.0:8686",
		"OTEL_SDK_DISABLED=true",
	)
	want := Config{
		LogLevel:           LogLevel(slog.LevelWarn),
		LogFormat:          LogFormatJSON,
		RingbufSize:        16 << 20,
		WakeupBytes:        2 << 20,
		FlushInterval:      50 * time.Millisecond,
		ShutdownTimeout:    10 * time.Second,
		Syscalls:           Syscalls{bpf.SyscallMlock, bpf.SyscallMlock2},
		KernelHook:         HookKprobe,
		CallDuration:       true, // the kernel-function hook needs it
		KernelFunctionHook: true,
		Uprobes:            true,
		LibcPaths:          LibcPaths{"/a/libc.so.6", "/b/libc.so"},
		ProcessCacheSize:   100,
		CommandArgs:        true,
		ProcessMetrics:     true,
		ProcessMetricsMax:  50,
		LimitWarnFraction:  0.8,
		FoldWindow:         2 * time.Second,
		FoldAfter:          10,
		QueueDir:           "/var/q",
		QueueMaxBytes:      1 << 30,
		HealthAddr:         "0.0.0.0:8686",
		Telemetry:          telemetryDefaults(),
	}
	want.Telemetry.Disabled = true
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v, want\n%+v", got, want)
	}
}

func TestLastEntryWins(t *testing.T) {
	got := load(t, "MEMLOCK_EXPORTER_LOG_LEVEL=bogus", "MEMLOCK_EXPORTER_LOG_LEVEL=debug",
		"OTEL_EXPORTER_OTLP_COMPRESSION=zstd", "OTEL_EXPORTER_OTLP_COMPRESSION=gzip")
	if got.LogLevel.Level() != slog.LevelDebug || got.Telemetry.Logs.Compression != CompressionGzip {
		t.Errorf("LogLevel, compression = %v, %v; want debug, gzip", got.LogLevel, got.Telemetry.Logs.Compression)
	}
}

// The errors of our variables, whole.
const (
	errLevel      = "must be debug, info, warn or error (case-insensitive)"
	errFormat     = "must be text or json (case-insensitive)"
	errRingbuf    = "must be a byte count (digits, with an optional KiB, MiB or GiB suffix in any case) from 4KiB to 1GiB, a power of two (e.g. 1MiB)"
	errWakeup     = "must be a byte count (digits, with an optional KiB, MiB or GiB suffix in any case), below the ring buffer size 1MiB, or 0 for a quarter of it (e.g. 256KiB)"
	errFlush      = "must be a duration with a unit from 1ms to 1m (e.g. 200ms)"
	errShutdown   = "must be a duration with a unit above 0s and at most 5m (e.g. 5s)"
	errSyscalls   = "must be a comma-separated subset of mlock, mlock2, munlock, mlockall and munlockall (case-insensitive), with mlock wherever mlock2 is (e.g. mlock,mlock2,munlock,mlockall,munlockall)"
	errHook       = "must be auto, fentry, kprobe or tracepoint (case-insensitive)"
	errSwitch     = "must be on or off (case-insensitive)"
	errFnHook     = "must be on or off (case-insensitive), off while MEMLOCK_EXPORTER_CALL_DURATION is off"
	errLibc       = "must be absolute paths separated by colons (e.g. /lib/x86_64-linux-gnu/libc.so.6)"
	errCacheSize  = "must be a whole number from 1 to 1048576 (e.g. 4096)"
	errMetricsMax = "must be a whole number from 1 to 100000 (e.g. 1000)"
	errFraction   = "must be a number above 0 and at most 1 (e.g. 0.9)"
	errFoldWindow = "must be a duration with a unit from 0s to 1h (e.g. 1s)"
	errFoldAfter  = "must be a whole number from 1 to 1000000000 (e.g. 1000)"
	errQueueDir   = "must be an absolute directory path (e.g. /var/lib/memlock-exporter/queue), or empty to queue in memory"
	errQueueBytes = "must be a byte count (digits, with an optional KiB, MiB or GiB suffix in any case) from 1MiB to 1024GiB (e.g. 256MiB)"
	errHealthAddr = "must be host:port with a port number from 1 to 65535 and an empty host for every address (e.g. :8686 or 127.0.0.1:8686), or empty for no health endpoint"
)

func TestBadValues(t *testing.T) {
	bad := map[string]struct {
		allowed string
		values  []string
	}{
		"MEMLOCK_EXPORTER_LOG_LEVEL":  {errLevel, []string{"verbose", "warning", "info+2", "-4", " info", "trace"}},
		"MEMLOCK_EXPORTER_LOG_FORMAT": {errFormat, []string{"logfmt", "text\njson", " json"}},
		"MEMLOCK_EXPORTER_RINGBUF_SIZE": {errRingbuf, []string{"3000", "3MiB", "0", "2048", "2GiB", "-1MiB", "+1MiB", "4MB", "4M",
			"MiB", "4 MiB", "1.5MiB", "0x100000", "lots", "99999999999999999999", "9007199254740992GiB", "1MiB "}},
		"MEMLOCK_EXPORTER_WAKEUP_BYTES":     {errWakeup, []string{"1MiB", "2MiB", "-1", "some", "1e3"}},
		"MEMLOCK_EXPORTER_FLUSH_INTERVAL":   {errFlush, []string{"200", "0", "999us", "61s", "-200ms", "soon", "200 ms"}},
		"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT": {errShutdown, []string{"5", "0", "0s", "-5s", "5m1s", "1h", "forever"}},
		"MEMLOCK_EXPORTER_SYSCALLS": {errSyscalls, []string{"mlock,mlock3", "mlock2", "mlock2,munlock", ",", "mlock,", "mlock;mlock2",
			"MLOCK2 , munlockall"}},
		"MEMLOCK_EXPORTER_KERNEL_HOOK":          {errHook, []string{"kprobes", "uprobe", "fexit", " auto"}},
		"MEMLOCK_EXPORTER_CALL_DURATION":        {errSwitch, []string{"no", "false", "0", "exit"}},
		"MEMLOCK_EXPORTER_KERNEL_FUNCTION_HOOK": {errFnHook, []string{"yes", "true", "1", "enabled"}},
		"MEMLOCK_EXPORTER_UPROBES":              {errSwitch, []string{"1", "no", "on "}},
		"MEMLOCK_EXPORTER_LIBC_PATHS":           {errLibc, []string{"libc.so.6", "/a/libc.so:libc.so", "/a::/b", "/a:", ":/a", "./libc.so.6"}},
		"MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE":   {errCacheSize, []string{"0", "-1", "1048577", "4KiB", "many", "1e3", "99999999999"}},
		"MEMLOCK_EXPORTER_COMMAND_ARGS":         {errSwitch, []string{"true", "yes"}},
		"MEMLOCK_EXPORTER_PROCESS_METRICS":      {errSwitch, []string{"1", "enable"}},
		"MEMLOCK_EXPORTER_PROCESS_METRICS_MAX":  {errMetricsMax, []string{"0", "100001", "-5", "1e3", "1k"}},
		"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION":  {errFraction, []string{"0", "1.01", "-0.5", "90%", "NaN", "Inf", "-Inf", "half"}},
		"MEMLOCK_EXPORTER_FOLD_WINDOW":          {errFoldWindow, []string{"1", "-1s", "1h1s", "off", "1 s"}},
		"MEMLOCK_EXPORTER_FOLD_AFTER":           {errFoldAfter, []string{"0", "-1", "1000000001", "1e3", "many"}},
		"MEMLOCK_EXPORTER_QUEUE_DIR":            {errQueueDir, []string{"queue", "./queue", "~/queue"}},
		"MEMLOCK_EXPORTER_QUEUE_MAX_BYTES":      {errQueueBytes, []string{"1KiB", "1025GiB", "-1MiB", "lots", "0"}},
		"MEMLOCK_EXPORTER_HEALTH_ADDR": {errHealthAddr, []string{"8686", ":0", ":65536", ":-1", ":+80", ":http", "localhost", "localhost:",
			"::1:8686", "http://localhost:8686", ":8686/livez", " :8686", "local host:8686", "[::1]", "1.2.3.4:99999"}},
	}
	for _, f := range fields() {
		if len(bad[f.name].values) == 0 {
			t.Errorf("no bad values tested for %s", f.name)
		}
	}
	for name, b := range bad {
		for _, value := range b.values {
			t.Run(name+"="+value, func(t *testing.T) {
				_, err := Load([]string{name + "=" + value})
				checkError(t, err, name, value, b.allowed)
			})
		}
	}

	// do_mlock's time needs the call in flight, which exit-only tracing
	// does not keep: the two cannot go together.
	_, err := Load([]string{"MEMLOCK_EXPORTER_CALL_DURATION=off", "MEMLOCK_EXPORTER_KERNEL_FUNCTION_HOOK=on"})
	checkError(t, err, "MEMLOCK_EXPORTER_KERNEL_FUNCTION_HOOK", "on", errFnHook)

	// The ring buffer size in the wakeup error is the one in effect.
	_, err = Load([]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=64KiB", "MEMLOCK_EXPORTER_WAKEUP_BYTES=64KiB"})
	checkError(t, err, "MEMLOCK_EXPORTER_WAKEUP_BYTES", "64KiB",
		"must be a byte count (digits, with an optional KiB, MiB or GiB suffix in any case), below the ring buffer size 64KiB, or 0 for a quarter of it (e.g. 16KiB)")
}

// TestFirstProblem: with several problems, the first in the documented
// order is reported, whatever the order of environ.
func TestFirstProblem(t *testing.T) {
	tests := []struct {
		environ        []string
		varName, value string
		allowed        string
	}{
		{[]string{"OTEL_SDK_DISABLED=maybe", "MEMLOCK_EXPORTER_FLUSH_INTERVAL=5", "MEMLOCK_EXPORTER_RINGBUF_SIZE=3000", "MEMLOCK_EXPORTER_LOG_FORMAT=xml"},
			"MEMLOCK_EXPORTER_LOG_FORMAT", "xml", errFormat},
		{[]string{"OTEL_SDK_DISABLED=maybe", "MEMLOCK_EXPORTER_FLUSH_INTERVAL=5", "MEMLOCK_EXPORTER_WAKEUP_BYTES=x", "MEMLOCK_EXPORTER_RINGBUF_SIZE=3000"},
			"MEMLOCK_EXPORTER_RINGBUF_SIZE", "3000", errRingbuf},
		{[]string{"OTEL_SDK_DISABLED=maybe", "MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT=0", "MEMLOCK_EXPORTER_FLUSH_INTERVAL=5"},
			"MEMLOCK_EXPORTER_FLUSH_INTERVAL", "5", errFlush},
		{[]string{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION=2", "MEMLOCK_EXPORTER_SYSCALLS=mlock2", "MEMLOCK_EXPORTER_KERNEL_HOOK=x"},
			"MEMLOCK_EXPORTER_SYSCALLS", "mlock2", errSyscalls},
		{[]string{"OTEL_LOGS_EXPORTER=x", "MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION=2"},
			"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION", "2", errFraction},
		{[]string{"OTEL_LOGS_EXPORTER=x", "OTEL_SDK_DISABLED=maybe"},
			"OTEL_SDK_DISABLED", "maybe", "must be true or false (case-insensitive)"},
		{[]string{"MEMLOCK_EXPORTER_LOG_LEVEL=loud", "MEMLOCK_EXPORTER_ZZZ=1", "MEMLOCK_EXPORTER_TYPO=1"},
			"MEMLOCK_EXPORTER_TYPO", "1", "unknown variable; known: " + strings.Join(knownNames(), ", ")},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.environ, ","), func(t *testing.T) {
			for range 5 { // map iteration order must not matter
				environ := slices.Clone(tt.environ)
				slices.Reverse(environ)
				for _, e := range [][]string{tt.environ, environ} {
					_, err := Load(e)
					checkError(t, err, tt.varName, tt.value, tt.allowed)
				}
			}
		})
	}
}

func knownNames() []string {
	var names []string
	for _, f := range fields() {
		names = append(names, f.name)
	}
	return names
}

func TestUnknownVariable(t *testing.T) {
	known := "known: MEMLOCK_EXPORTER_LOG_LEVEL, MEMLOCK_EXPORTER_LOG_FORMAT, MEMLOCK_EXPORTER_RINGBUF_SIZE, " +
		"MEMLOCK_EXPORTER_WAKEUP_BYTES, MEMLOCK_EXPORTER_FLUSH_INTERVAL, MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT, " +
		"MEMLOCK_EXPORTER_SYSCALLS, MEMLOCK_EXPORTER_KERNEL_HOOK, MEMLOCK_EXPORTER_CALL_DURATION, MEMLOCK_EXPORTER_KERNEL_FUNCTION_HOOK, " +
		"MEMLOCK_EXPORTER_UPROBES, MEMLOCK_EXPORTER_LIBC_PATHS, MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE, " +
		"MEMLOCK_EXPORTER_COMMAND_ARGS, MEMLOCK_EXPORTER_PROCESS_METRICS, " +
		"MEMLOCK_EXPORTER_PROCESS_METRICS_MAX, MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION, " +
		"MEMLOCK_EXPORTER_FOLD_WINDOW, MEMLOCK_EXPORTER_FOLD_AFTER, MEMLOCK_EXPORTER_QUEUE_DIR, " +
		"MEMLOCK_EXPORTER_QUEUE_MAX_BYTES, MEMLOCK_EXPORTER_HEALTH_ADDR"
	tests := []struct {
		environ        []string
		varName, value string
		allowed        string
	}{
		{[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZ=4MiB"}, "MEMLOCK_EXPORTER_RINGBUF_SIZ", "4MiB",
			"unknown variable (did you mean MEMLOCK_EXPORTER_RINGBUF_SIZE?); " + known},
		{[]string{"MEMLOCK_EXPORTER_LOGLEVEL=debug"}, "MEMLOCK_EXPORTER_LOGLEVEL", "debug",
			"unknown variable (did you mean MEMLOCK_EXPORTER_LOG_LEVEL?); " + known},
		{[]string{"memlock_exporter_log_level=debug"}, "memlock_exporter_log_level", "debug",
			"unknown variable (did you mean MEMLOCK_EXPORTER_LOG_LEVEL?); " + known},
		{[]string{"MEMLOCK_EXPORTER_UPROBE=on"}, "MEMLOCK_EXPORTER_UPROBE", "on",
			"unknown variable (did you mean MEMLOCK_EXPORTER_UPROBES?); " + known},
		{[]string{"MEMLOCK_EXPORTER_ENDPOINT=http://x:4317"}, "MEMLOCK_EXPORTER_ENDPOINT", "http://x:4317",
			"unknown variable; " + known},
		{[]string{"MEMLOCK_EXPORTER_=1"}, "MEMLOCK_EXPORTER_", "1", "unknown variable; " + known},
		{[]string{"MEMLOCK_EXPORTER_TYPO="}, "MEMLOCK_EXPORTER_TYPO", "", "unknown variable; " + known},
		// Alphabetically first unknown, whatever the order given.
		{[]string{"MEMLOCK_EXPORTER_ZZZ=1", "MEMLOCK_EXPORTER_LOG_LEVEL=debug", "MEMLOCK_EXPORTER_AAA=2"},
			"MEMLOCK_EXPORTER_AAA", "2", "unknown variable; " + known},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.environ, ","), func(t *testing.T) {
			_, err := Load(tt.environ)
			checkError(t, err, tt.varName, tt.value, tt.allowed)
		})
	}
}

func TestRemovedVariable(t *testing.T) {
	const warning = "MEMLOCK_EXPORTER_OTLP_ENCODER is no longer used: log records and spans are always encoded by the daemon; unset it"
	for _, value := range []string{"direct", "sdk", "bogus", ""} {
		got := load(t, "MEMLOCK_EXPORTER_OTLP_ENCODER="+value)
		if !slices.Equal(got.Warnings, []string{warning}) {
			t.Errorf("%q: Warnings = %q, want %q", value, got.Warnings, warning)
		}
		got.Warnings = nil
		if !reflect.DeepEqual(got, defaults()) {
			t.Errorf("%q: other settings changed: %+v", value, got)
		}
	}
	// Not a known variable for the suggestions either.
	_, err := Load([]string{"MEMLOCK_EXPORTER_OTLP_ENCODR=sdk"})
	var e *Error
	if !errors.As(err, &e) || strings.Contains(e.Allowed, "OTLP_ENCODER") {
		t.Errorf("misspelt removed variable: %v", err)
	}
}

// checkError asserts err is a one-line *Error for varName and value whose
// Allowed is allowed.
func checkError(t *testing.T, err error, varName, value, allowed string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Load succeeded, want an error for %s=%q", varName, value)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is %T, want *Error", err, err)
	}
	if e.Var != varName || e.Value != value || e.Allowed != allowed {
		t.Errorf("error\n%s\nwant\n%s", err, &Error{varName, value, allowed})
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	if want := varName + "=" + strconv.Quote(value) + ": " + e.Allowed; msg != want {
		t.Errorf("error = %q, want %q", msg, want)
	}
	for _, raw := range []string{"env:", "parse error on field", "strconv.", "time: "} {
		if strings.Contains(msg, raw) {
			t.Errorf("error %q leaks a library's text %q", msg, raw)
		}
	}
}

// TestFieldTags keeps Config the one table: every variable field has a
// name, a default (empty only for LibcPaths), a description and a type
// that describes itself; bounds parse; rules name fields.
func TestFieldTags(t *testing.T) {
	typ := reflect.TypeFor[Config]()
	seen := map[string]bool{}
	for i := range typ.NumField() {
		sf := typ.Field(i)
		name := sf.Tag.Get("env")
		if sf.Name == "Telemetry" || sf.Name == "Warnings" {
			if name != "-" {
				t.Errorf("%s: env tag %q, want \"-\"", sf.Name, name)
			}
			continue
		}
		if !strings.HasPrefix(name, Prefix) || seen[name] {
			t.Errorf("%s: env tag %q is not a new %s* name", sf.Name, name, Prefix)
		}
		seen[name] = true
		def, ok := sf.Tag.Lookup("envDefault")
		if emptyOK := sf.Name == "LibcPaths" || sf.Name == "QueueDir" || sf.Name == "HealthAddr"; !ok || (def == "") != emptyOK {
			t.Errorf("%s: envDefault %q (present %v); only LibcPaths, QueueDir and HealthAddr may have an empty one", sf.Name, def, ok)
		}
		help := sf.Tag.Get("help")
		if help == "" || !strings.HasSuffix(help, ".") || strings.ContainsAny(help, "\t\n|") {
			t.Errorf("%s: help %q must be one sentence ending with a full stop, without tabs, newlines or |", sf.Name, help)
		}
		if _, ok := reflect.Zero(sf.Type).Interface().(interface{ Allowed() string }); !ok {
			if _, basic := basicAllowed[sf.Type]; !basic {
				t.Errorf("%s: type %s has no Allowed method", sf.Name, sf.Type)
			}
		}
	}
	for _, f := range fields() {
		for _, b := range []string{f.min, f.gt, f.max} {
			if b != "" {
				f.bound(b) // panics on a bad tag
			}
		}
	}
	for name := range rules {
		if !seen[name] {
			t.Errorf("rule for %s, which is no field's variable", name)
		}
	}
	for name := range removed {
		if seen[name] {
			t.Errorf("%s is both removed and read", name)
		}
	}
}

func TestTypes(t *testing.T) {
	for s, want := range map[string]Bytes{"0": 0, "1": 1, "007": 7, "1KiB": 1024, "1kib": 1024, "3MiB": 3 << 20, "2GiB": 2 << 30, "2gIb": 2 << 30} {
		var got Bytes
		if err := got.UnmarshalText([]byte(s)); err != nil || got != want {
			t.Errorf("Bytes(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "KiB", "1KB", "1 KiB", "-1", "+1", "1e6", "8589934592GiB", "9223372036854775808"} {
		var got Bytes
		if err := got.UnmarshalText([]byte(s)); err == nil {
			t.Errorf("Bytes(%q) = %d, want an error", s, got)
		}
	}
	for n, want := range map[Bytes]string{0: "0", 256: "256", 4096: "4KiB", 65536: "64KiB", 1 << 20: "1MiB", 3 << 29: "1536MiB", 1 << 30: "1GiB"} {
		if got := n.String(); got != want {
			t.Errorf("Bytes(%d).String() = %q, want %q", n, got, want)
		}
	}
	for _, tt := range []struct {
		got, want string
	}{
		{LogLevel(slog.LevelWarn).String(), "warn"},
		{LogFormatJSON.String(), "json"},
		{LogFormat(9).String(), "LogFormat(9)"},
		{HookTracepoint.String(), "tracepoint"},
		{KernelHook(7).String(), "KernelHook(7)"},
		{Switch(true).String(), "on"},
		{Switch(false).String(), "off"},
	} {
		if tt.got != tt.want {
			t.Errorf("String() = %q, want %q", tt.got, tt.want)
		}
	}
	for h, want := range map[KernelHook][]bpf.Probe{
		HookAuto:       bpf.HookPreference,
		HookFentry:     {bpf.ProbeFentry},
		HookKprobe:     {bpf.ProbeKprobe},
		HookTracepoint: {bpf.ProbeTracepoint},
	} {
		if got := h.Probes(); !slices.Equal(got, want) {
			t.Errorf("%s.Probes() = %v, want %v", h, got, want)
		}
	}
	HookAuto.Probes()[0] = bpf.ProbeUprobe
	if bpf.HookPreference[0] == bpf.ProbeUprobe {
		t.Error("HookAuto.Probes shares bpf.HookPreference")
	}
}

func TestLogger(t *testing.T) {
	for _, tt := range []struct {
		format LogFormat
		json   bool
	}{{LogFormatText, false}, {LogFormatJSON, true}} {
		var buf bytes.Buffer
		c := Config{LogLevel: LogLevel(slog.LevelWarn), LogFormat: tt.format}
		log := c.Logger(&buf)
		log.Info("hidden")
		log.Warn("shown", "k", 1)
		out := buf.String()
		if strings.Contains(out, "hidden") || !strings.Contains(out, "shown") {
			t.Errorf("format %s: level not applied: %q", tt.format, out)
		}
		if isJSON := json.Valid(bytes.TrimSpace(buf.Bytes())); isJSON != tt.json {
			t.Errorf("format %s: JSON = %v, want %v: %q", tt.format, isJSON, tt.json, out)
		}
	}
}
