package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var page = os.Getpagesize()

func defaults() Config {
	return Config{
		LogLevel:           slog.LevelInfo,
		LogFormat:          "text",
		RingbufSize:        1 << 20,
		WakeupBytes:        1 << 18,
		FlushInterval:      200 * time.Millisecond,
		ShutdownTimeout:    5 * time.Second,
		Syscalls:           []string{"mlock", "mlock2", "munlock", "mlockall", "munlockall"},
		KernelHook:         "auto",
		KernelFunctionHook: "off",
		Uprobes:            "off",
		ProcessCacheSize:   4096,
		ProcessCacheTTL:    30 * time.Second,
		CommandArgs:        "off",
		ProcessMetrics:     "off",
		ProcessMetricsMax:  1000,
		LimitWarnFraction:  0.9,
		OTLPEncoder:        "direct",
		SDKDisabled:        false,
	}
}

func TestDefaults(t *testing.T) {
	for _, environ := range [][]string{
		nil,
		{"PATH=/usr/bin", "HOME=/root", "OTEL_SERVICE_NAME=x", "MEMLOCK=1", "MEMLOCK_EXPORTER=1", "garbage", "=x"},
		{"OTEL_SDK_DISABLED="}, // empty counts as unset for the standard variable
	} {
		got, err := Load(environ)
		if err != nil {
			t.Fatalf("Load(%q): %v", environ, err)
		}
		if want := defaults(); !reflect.DeepEqual(got, want) {
			t.Errorf("Load(%q) = %+v, want %+v", environ, got, want)
		}
	}
}

func TestGoodValues(t *testing.T) {
	tests := []struct {
		env  string
		want func(*Config)
	}{
		{"MEMLOCK_EXPORTER_LOG_LEVEL=debug", func(c *Config) { c.LogLevel = slog.LevelDebug }},
		{"MEMLOCK_EXPORTER_LOG_LEVEL=DEBUG", func(c *Config) { c.LogLevel = slog.LevelDebug }},
		{"MEMLOCK_EXPORTER_LOG_LEVEL=Info", func(c *Config) { c.LogLevel = slog.LevelInfo }},
		{"MEMLOCK_EXPORTER_LOG_LEVEL=warn", func(c *Config) { c.LogLevel = slog.LevelWarn }},
		{"MEMLOCK_EXPORTER_LOG_LEVEL=WaRn", func(c *Config) { c.LogLevel = slog.LevelWarn }},
		{"MEMLOCK_EXPORTER_LOG_LEVEL=error", func(c *Config) { c.LogLevel = slog.LevelError }},
		{"MEMLOCK_EXPORTER_LOG_LEVEL=ERROR", func(c *Config) { c.LogLevel = slog.LevelError }},

		{"MEMLOCK_EXPORTER_LOG_FORMAT=text", func(c *Config) { c.LogFormat = "text" }},
		{"MEMLOCK_EXPORTER_LOG_FORMAT=json", func(c *Config) { c.LogFormat = "json" }},
		{"MEMLOCK_EXPORTER_LOG_FORMAT=JSON", func(c *Config) { c.LogFormat = "json" }},

		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=" + strconv.Itoa(page), func(c *Config) { c.RingbufSize, c.WakeupBytes = page, page/4 }},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=65536", func(c *Config) { c.RingbufSize, c.WakeupBytes = 65536, 16384 }},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=64KiB", func(c *Config) { c.RingbufSize, c.WakeupBytes = 65536, 16384 }},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=64kib", func(c *Config) { c.RingbufSize, c.WakeupBytes = 65536, 16384 }},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=4MiB", func(c *Config) { c.RingbufSize, c.WakeupBytes = 4<<20, 1<<20 }},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=4MIB", func(c *Config) { c.RingbufSize, c.WakeupBytes = 4<<20, 1<<20 }},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=1024KiB", func(c *Config) { c.RingbufSize, c.WakeupBytes = 1<<20, 256<<10 }},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=1GiB", func(c *Config) { c.RingbufSize, c.WakeupBytes = 1<<30, 256<<20 }},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE=1073741824", func(c *Config) { c.RingbufSize, c.WakeupBytes = 1<<30, 256<<20 }},

		{"MEMLOCK_EXPORTER_WAKEUP_BYTES=0", func(c *Config) { c.WakeupBytes = 1 << 18 }},
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

		{"MEMLOCK_EXPORTER_KERNEL_HOOK=auto", func(c *Config) { c.KernelHook = "auto" }},
		{"MEMLOCK_EXPORTER_KERNEL_HOOK=fentry", func(c *Config) { c.KernelHook = "fentry" }},
		{"MEMLOCK_EXPORTER_KERNEL_HOOK=kprobe", func(c *Config) { c.KernelHook = "kprobe" }},
		{"MEMLOCK_EXPORTER_KERNEL_HOOK=Tracepoint", func(c *Config) { c.KernelHook = "tracepoint" }},

		{"MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE=1", func(c *Config) { c.ProcessCacheSize = 1 }},
		{"MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE=65536", func(c *Config) { c.ProcessCacheSize = 65536 }},
		{"MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE=1048576", func(c *Config) { c.ProcessCacheSize = 1 << 20 }},
		{"MEMLOCK_EXPORTER_PROCESS_CACHE_TTL=1s", func(c *Config) { c.ProcessCacheTTL = time.Second }},
		{"MEMLOCK_EXPORTER_PROCESS_CACHE_TTL=5m", func(c *Config) { c.ProcessCacheTTL = 5 * time.Minute }},
		{"MEMLOCK_EXPORTER_PROCESS_CACHE_TTL=1h", func(c *Config) { c.ProcessCacheTTL = time.Hour }},
		{"MEMLOCK_EXPORTER_COMMAND_ARGS=on", func(c *Config) { c.CommandArgs = "on" }},
		{"MEMLOCK_EXPORTER_COMMAND_ARGS=OFF", func(c *Config) { c.CommandArgs = "off" }},
		{"MEMLOCK_EXPORTER_PROCESS_METRICS=on", func(c *Config) { c.ProcessMetrics = "on" }},
		{"MEMLOCK_EXPORTER_PROCESS_METRICS=Off", func(c *Config) { c.ProcessMetrics = "off" }},
		{"MEMLOCK_EXPORTER_PROCESS_METRICS_MAX=1", func(c *Config) { c.ProcessMetricsMax = 1 }},
		{"MEMLOCK_EXPORTER_PROCESS_METRICS_MAX=100000", func(c *Config) { c.ProcessMetricsMax = 100000 }},
		{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION=1", func(c *Config) { c.LimitWarnFraction = 1 }},
		{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION=0.5", func(c *Config) { c.LimitWarnFraction = 0.5 }},
		{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION=.75", func(c *Config) { c.LimitWarnFraction = 0.75 }},
		{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION=0.001", func(c *Config) { c.LimitWarnFraction = 0.001 }},

		{"MEMLOCK_EXPORTER_OTLP_ENCODER=direct", func(c *Config) { c.OTLPEncoder = "direct" }},
		{"MEMLOCK_EXPORTER_OTLP_ENCODER=sdk", func(c *Config) { c.OTLPEncoder = "sdk" }},
		{"MEMLOCK_EXPORTER_OTLP_ENCODER=SDK", func(c *Config) { c.OTLPEncoder = "sdk" }},
		{"MEMLOCK_EXPORTER_OTLP_ENCODER=Direct", func(c *Config) { c.OTLPEncoder = "direct" }},

		{"OTEL_SDK_DISABLED=true", func(c *Config) { c.SDKDisabled = true }},
		{"OTEL_SDK_DISABLED=TRUE", func(c *Config) { c.SDKDisabled = true }},
		{"OTEL_SDK_DISABLED=True", func(c *Config) { c.SDKDisabled = true }},
		{"OTEL_SDK_DISABLED=tRuE", func(c *Config) { c.SDKDisabled = true }},
		{"OTEL_SDK_DISABLED=false", func(c *Config) { c.SDKDisabled = false }},
		{"OTEL_SDK_DISABLED=FALSE", func(c *Config) { c.SDKDisabled = false }},
		{"OTEL_SDK_DISABLED=", func(c *Config) { c.SDKDisabled = false }},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			got, err := Load([]string{tt.env})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := defaults()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestAllTogether(t *testing.T) {
	got, err := Load([]string{
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
		"MEMLOCK_EXPORTER_PROCESS_CACHE_TTL=2m",
		"MEMLOCK_EXPORTER_COMMAND_ARGS=On",
		"MEMLOCK_EXPORTER_PROCESS_METRICS=ON",
		"MEMLOCK_EXPORTER_PROCESS_METRICS_MAX=50",
		"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION=0.8",
		"MEMLOCK_EXPORTER_OTLP_ENCODER=sdk",
		"OTEL_SDK_DISABLED=true",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		LogLevel:           slog.LevelWarn,
		LogFormat:          "json",
		RingbufSize:        16 << 20,
		WakeupBytes:        2 << 20,
		FlushInterval:      50 * time.Millisecond,
		ShutdownTimeout:    10 * time.Second,
		Syscalls:           []string{"mlock", "mlock2"},
		KernelHook:         "kprobe",
		KernelFunctionHook: "on",
		Uprobes:            "on",
		LibcPaths:          []string{"/a/libc.so.6", "/b/libc.so"},
		ProcessCacheSize:   100,
		ProcessCacheTTL:    2 * time.Minute,
		CommandArgs:        "on",
		ProcessMetrics:     "on",
		ProcessMetricsMax:  50,
		LimitWarnFraction:  0.8,
		OTLPEncoder:        "sdk",
		SDKDisabled:        true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestLastEntryWins(t *testing.T) {
	got, err := Load([]string{"MEMLOCK_EXPORTER_LOG_LEVEL=bogus", "MEMLOCK_EXPORTER_LOG_LEVEL=debug"})
	if err != nil {
		t.Fatal(err)
	}
	if got.LogLevel != slog.LevelDebug {
		t.Errorf("LogLevel = %v, want DEBUG", got.LogLevel)
	}
}

func TestBadValues(t *testing.T) {
	level := "must be one of debug, info, warn, error"
	format := "must be text or json"
	ringbuf := fmt.Sprintf("must be a power of two between %d and 1073741824 bytes (e.g. 1MiB)", page)
	wakeup := "must be 0 (ring buffer size / 4) or a byte count below the ring buffer size 1048576 (e.g. 256KiB)"
	flush := "must be a duration with a unit between 1ms and 1m (e.g. 200ms)"
	cacheSize := "must be an integer from 1 to 1048576"
	cacheTTL := "must be a duration with a unit between 1s and 1h (e.g. 30s)"
	metricsMax := "must be an integer from 1 to 100000"
	fraction := "must be a number above 0 and at most 1 (e.g. 0.9)"
	shutdown := "must be a duration with a unit above 0 and at most 5m (e.g. 5s)"
	sdk := "must be true or false (case-insensitive)"
	hook := "must be auto, fentry, kprobe or tracepoint"
	syscalls := "must be a comma-separated subset of mlock, mlock2, munlock, mlockall, munlockall, with mlock wherever mlock2 is"

	tests := []struct {
		environ []string
		varName string // want Error.Var
		value   string // want Error.Value
		allowed string // want in Error.Allowed
	}{
		{[]string{"MEMLOCK_EXPORTER_LOG_LEVEL="}, "MEMLOCK_EXPORTER_LOG_LEVEL", "", level},
		{[]string{"MEMLOCK_EXPORTER_LOG_LEVEL=verbose"}, "MEMLOCK_EXPORTER_LOG_LEVEL", "verbose", level},
		{[]string{"MEMLOCK_EXPORTER_LOG_LEVEL=warning"}, "MEMLOCK_EXPORTER_LOG_LEVEL", "warning", level},
		{[]string{"MEMLOCK_EXPORTER_LOG_LEVEL=info+2"}, "MEMLOCK_EXPORTER_LOG_LEVEL", "info+2", level},
		{[]string{"MEMLOCK_EXPORTER_LOG_LEVEL=-4"}, "MEMLOCK_EXPORTER_LOG_LEVEL", "-4", level},
		{[]string{"MEMLOCK_EXPORTER_LOG_LEVEL= info"}, "MEMLOCK_EXPORTER_LOG_LEVEL", " info", level},

		{[]string{"MEMLOCK_EXPORTER_LOG_FORMAT="}, "MEMLOCK_EXPORTER_LOG_FORMAT", "", format},
		{[]string{"MEMLOCK_EXPORTER_LOG_FORMAT=logfmt"}, "MEMLOCK_EXPORTER_LOG_FORMAT", "logfmt", format},
		{[]string{"MEMLOCK_EXPORTER_LOG_FORMAT=text\njson"}, "MEMLOCK_EXPORTER_LOG_FORMAT", "text\njson", format},

		{[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE="}, "MEMLOCK_EXPORTER_RINGBUF_SIZE", "", ringbuf},
		{[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=3000"}, "MEMLOCK_EXPORTER_RINGBUF_SIZE", "3000", ringbuf},
		{[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=3MiB"}, "MEMLOCK_EXPORTER_RINGBUF_SIZE", "3MiB", ringbuf},
		{[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=0"}, "MEMLOCK_EXPORTER_RINGBUF_SIZE", "0", ringbuf},
		{[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=" + strconv.Itoa(page/2)}, "MEMLOCK_EXPORTER_RINGBUF_SIZE", strconv.Itoa(page / 2), ringbuf},
		{[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=2GiB"}, "MEMLOCK_EXPORTER_RINGBUF_SIZE", "2GiB", ringbuf},
		{[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=-1MiB"}, "MEMLOCK_EXPORTER_RINGBUF_SIZE", "-1MiB", ringbuf},
		{[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=+1MiB"}, "MEMLOCK_EXPORTER_RINGBUF_SIZE", "+1MiB", ringbuf},
		{[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=4MB"}, "MEMLOCK_EXPORTER_RINGBUF_SIZE", "4MB", ringbuf},
		{[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=4M"}, "MEMLOCK_EXPORTER_RINGBUF_SIZE", "4M", ringbuf},
		{[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=MiB"}, "MEMLOCK_EXPORTER_RINGBUF_SIZE", "MiB", ringbuf},
		{[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=4 MiB"}, "MEMLOCK_EXPORTER_RINGBUF_SIZE", "4 MiB", ringbuf},
		{[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=1.5MiB"}, "MEMLOCK_EXPORTER_RINGBUF_SIZE", "1.5MiB", ringbuf},
		{[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=0x100000"}, "MEMLOCK_EXPORTER_RINGBUF_SIZE", "0x100000", ringbuf},
		{[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=lots"}, "MEMLOCK_EXPORTER_RINGBUF_SIZE", "lots", ringbuf},
		{[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=99999999999999999999"}, "MEMLOCK_EXPORTER_RINGBUF_SIZE", "99999999999999999999", ringbuf},
		{[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=9007199254740992GiB"}, "MEMLOCK_EXPORTER_RINGBUF_SIZE", "9007199254740992GiB", ringbuf},

		{[]string{"MEMLOCK_EXPORTER_WAKEUP_BYTES="}, "MEMLOCK_EXPORTER_WAKEUP_BYTES", "", wakeup},
		{[]string{"MEMLOCK_EXPORTER_WAKEUP_BYTES=1MiB"}, "MEMLOCK_EXPORTER_WAKEUP_BYTES", "1MiB", wakeup},
		{[]string{"MEMLOCK_EXPORTER_WAKEUP_BYTES=2MiB"}, "MEMLOCK_EXPORTER_WAKEUP_BYTES", "2MiB", wakeup},
		{[]string{"MEMLOCK_EXPORTER_WAKEUP_BYTES=-1"}, "MEMLOCK_EXPORTER_WAKEUP_BYTES", "-1", wakeup},
		{[]string{"MEMLOCK_EXPORTER_WAKEUP_BYTES=some"}, "MEMLOCK_EXPORTER_WAKEUP_BYTES", "some", wakeup},
		{
			[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=64KiB", "MEMLOCK_EXPORTER_WAKEUP_BYTES=64KiB"},
			"MEMLOCK_EXPORTER_WAKEUP_BYTES", "64KiB",
			"must be 0 (ring buffer size / 4) or a byte count below the ring buffer size 65536 (e.g. 16KiB)",
		},

		{[]string{"MEMLOCK_EXPORTER_FLUSH_INTERVAL="}, "MEMLOCK_EXPORTER_FLUSH_INTERVAL", "", flush},
		{[]string{"MEMLOCK_EXPORTER_FLUSH_INTERVAL=200"}, "MEMLOCK_EXPORTER_FLUSH_INTERVAL", "200", flush},
		{[]string{"MEMLOCK_EXPORTER_FLUSH_INTERVAL=0"}, "MEMLOCK_EXPORTER_FLUSH_INTERVAL", "0", flush},
		{[]string{"MEMLOCK_EXPORTER_FLUSH_INTERVAL=999us"}, "MEMLOCK_EXPORTER_FLUSH_INTERVAL", "999us", flush},
		{[]string{"MEMLOCK_EXPORTER_FLUSH_INTERVAL=61s"}, "MEMLOCK_EXPORTER_FLUSH_INTERVAL", "61s", flush},
		{[]string{"MEMLOCK_EXPORTER_FLUSH_INTERVAL=-200ms"}, "MEMLOCK_EXPORTER_FLUSH_INTERVAL", "-200ms", flush},
		{[]string{"MEMLOCK_EXPORTER_FLUSH_INTERVAL=soon"}, "MEMLOCK_EXPORTER_FLUSH_INTERVAL", "soon", flush},
		{[]string{"MEMLOCK_EXPORTER_FLUSH_INTERVAL=200 ms"}, "MEMLOCK_EXPORTER_FLUSH_INTERVAL", "200 ms", flush},

		{[]string{"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT="}, "MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT", "", shutdown},
		{[]string{"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT=5"}, "MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT", "5", shutdown},
		{[]string{"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT=0"}, "MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT", "0", shutdown},
		{[]string{"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT=0s"}, "MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT", "0s", shutdown},
		{[]string{"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT=-5s"}, "MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT", "-5s", shutdown},
		{[]string{"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT=5m1s"}, "MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT", "5m1s", shutdown},
		{[]string{"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT=1h"}, "MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT", "1h", shutdown},
		{[]string{"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT=forever"}, "MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT", "forever", shutdown},

		{[]string{"MEMLOCK_EXPORTER_KERNEL_HOOK="}, "MEMLOCK_EXPORTER_KERNEL_HOOK", "", hook},
		{[]string{"MEMLOCK_EXPORTER_KERNEL_HOOK=kprobes"}, "MEMLOCK_EXPORTER_KERNEL_HOOK", "kprobes", hook},
		{[]string{"MEMLOCK_EXPORTER_KERNEL_HOOK=uprobe"}, "MEMLOCK_EXPORTER_KERNEL_HOOK", "uprobe", hook},

		{[]string{"MEMLOCK_EXPORTER_SYSCALLS=mlock,mlock3"}, "MEMLOCK_EXPORTER_SYSCALLS", "mlock,mlock3", syscalls},
		{[]string{"MEMLOCK_EXPORTER_SYSCALLS=mlock2"}, "MEMLOCK_EXPORTER_SYSCALLS", "mlock2", syscalls},
		{[]string{"MEMLOCK_EXPORTER_SYSCALLS=,"}, "MEMLOCK_EXPORTER_SYSCALLS", ",", syscalls},
		{[]string{"MEMLOCK_EXPORTER_SYSCALLS="}, "MEMLOCK_EXPORTER_SYSCALLS", "", syscalls},
		{[]string{"MEMLOCK_EXPORTER_KERNEL_FUNCTION_HOOK=yes"}, "MEMLOCK_EXPORTER_KERNEL_FUNCTION_HOOK", "yes", "must be on or off"},
		{[]string{"MEMLOCK_EXPORTER_UPROBES=1"}, "MEMLOCK_EXPORTER_UPROBES", "1", "must be on or off"},
		{[]string{"MEMLOCK_EXPORTER_UPROBES="}, "MEMLOCK_EXPORTER_UPROBES", "", "must be on or off"},
		{[]string{"MEMLOCK_EXPORTER_LIBC_PATHS=libc.so.6"}, "MEMLOCK_EXPORTER_LIBC_PATHS", "libc.so.6", "must be absolute paths separated by colons, e.g. /lib/x86_64-linux-gnu/libc.so.6"},

		{[]string{"MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE=0"}, "MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE", "0", cacheSize},
		{[]string{"MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE=-1"}, "MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE", "-1", cacheSize},
		{[]string{"MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE=1048577"}, "MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE", "1048577", cacheSize},
		{[]string{"MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE=4KiB"}, "MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE", "4KiB", cacheSize},
		{[]string{"MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE="}, "MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE", "", cacheSize},
		{[]string{"MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE=many"}, "MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE", "many", cacheSize},
		{[]string{"MEMLOCK_EXPORTER_PROCESS_CACHE_TTL=30"}, "MEMLOCK_EXPORTER_PROCESS_CACHE_TTL", "30", cacheTTL},
		{[]string{"MEMLOCK_EXPORTER_PROCESS_CACHE_TTL=999ms"}, "MEMLOCK_EXPORTER_PROCESS_CACHE_TTL", "999ms", cacheTTL},
		{[]string{"MEMLOCK_EXPORTER_PROCESS_CACHE_TTL=0s"}, "MEMLOCK_EXPORTER_PROCESS_CACHE_TTL", "0s", cacheTTL},
		{[]string{"MEMLOCK_EXPORTER_PROCESS_CACHE_TTL=-30s"}, "MEMLOCK_EXPORTER_PROCESS_CACHE_TTL", "-30s", cacheTTL},
		{[]string{"MEMLOCK_EXPORTER_PROCESS_CACHE_TTL=61m"}, "MEMLOCK_EXPORTER_PROCESS_CACHE_TTL", "61m", cacheTTL},
		{[]string{"MEMLOCK_EXPORTER_PROCESS_CACHE_TTL="}, "MEMLOCK_EXPORTER_PROCESS_CACHE_TTL", "", cacheTTL},
		{[]string{"MEMLOCK_EXPORTER_COMMAND_ARGS=true"}, "MEMLOCK_EXPORTER_COMMAND_ARGS", "true", "must be on or off"},
		{[]string{"MEMLOCK_EXPORTER_COMMAND_ARGS="}, "MEMLOCK_EXPORTER_COMMAND_ARGS", "", "must be on or off"},
		{[]string{"MEMLOCK_EXPORTER_PROCESS_METRICS=1"}, "MEMLOCK_EXPORTER_PROCESS_METRICS", "1", "must be on or off"},
		{[]string{"MEMLOCK_EXPORTER_PROCESS_METRICS="}, "MEMLOCK_EXPORTER_PROCESS_METRICS", "", "must be on or off"},
		{[]string{"MEMLOCK_EXPORTER_PROCESS_METRICS_MAX=0"}, "MEMLOCK_EXPORTER_PROCESS_METRICS_MAX", "0", metricsMax},
		{[]string{"MEMLOCK_EXPORTER_PROCESS_METRICS_MAX=100001"}, "MEMLOCK_EXPORTER_PROCESS_METRICS_MAX", "100001", metricsMax},
		{[]string{"MEMLOCK_EXPORTER_PROCESS_METRICS_MAX=-5"}, "MEMLOCK_EXPORTER_PROCESS_METRICS_MAX", "-5", metricsMax},
		{[]string{"MEMLOCK_EXPORTER_PROCESS_METRICS_MAX=1e3"}, "MEMLOCK_EXPORTER_PROCESS_METRICS_MAX", "1e3", metricsMax},
		{[]string{"MEMLOCK_EXPORTER_PROCESS_METRICS_MAX="}, "MEMLOCK_EXPORTER_PROCESS_METRICS_MAX", "", metricsMax},
		{[]string{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION=0"}, "MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION", "0", fraction},
		{[]string{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION=1.01"}, "MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION", "1.01", fraction},
		{[]string{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION=-0.5"}, "MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION", "-0.5", fraction},
		{[]string{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION=90%"}, "MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION", "90%", fraction},
		{[]string{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION=NaN"}, "MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION", "NaN", fraction},
		{[]string{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION=Inf"}, "MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION", "Inf", fraction},
		{[]string{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION="}, "MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION", "", fraction},

		{[]string{"MEMLOCK_EXPORTER_OTLP_ENCODER="}, "MEMLOCK_EXPORTER_OTLP_ENCODER", "", "must be direct or sdk (case-insensitive)"},
		{[]string{"MEMLOCK_EXPORTER_OTLP_ENCODER=otel"}, "MEMLOCK_EXPORTER_OTLP_ENCODER", "otel", "must be direct or sdk (case-insensitive)"},
		{[]string{"MEMLOCK_EXPORTER_OTLP_ENCODER=fast"}, "MEMLOCK_EXPORTER_OTLP_ENCODER", "fast", "must be direct or sdk (case-insensitive)"},

		{[]string{"OTEL_SDK_DISABLED=1"}, "OTEL_SDK_DISABLED", "1", sdk},
		{[]string{"OTEL_SDK_DISABLED=0"}, "OTEL_SDK_DISABLED", "0", sdk},
		{[]string{"OTEL_SDK_DISABLED=yes"}, "OTEL_SDK_DISABLED", "yes", sdk},
		{[]string{"OTEL_SDK_DISABLED=t"}, "OTEL_SDK_DISABLED", "t", sdk},
		{[]string{"OTEL_SDK_DISABLED= true"}, "OTEL_SDK_DISABLED", " true", sdk},

		// Several bad: the first in the documented order is reported.
		{
			[]string{"OTEL_SDK_DISABLED=maybe", "MEMLOCK_EXPORTER_FLUSH_INTERVAL=5", "MEMLOCK_EXPORTER_RINGBUF_SIZE=3000", "MEMLOCK_EXPORTER_LOG_FORMAT=xml"},
			"MEMLOCK_EXPORTER_LOG_FORMAT", "xml", format,
		},
		{
			[]string{"OTEL_SDK_DISABLED=maybe", "MEMLOCK_EXPORTER_FLUSH_INTERVAL=5", "MEMLOCK_EXPORTER_WAKEUP_BYTES=x", "MEMLOCK_EXPORTER_RINGBUF_SIZE=3000"},
			"MEMLOCK_EXPORTER_RINGBUF_SIZE", "3000", ringbuf,
		},
		{
			[]string{"OTEL_SDK_DISABLED=maybe", "MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT=0", "MEMLOCK_EXPORTER_FLUSH_INTERVAL=5"},
			"MEMLOCK_EXPORTER_FLUSH_INTERVAL", "5", flush,
		},
		{
			[]string{"MEMLOCK_EXPORTER_LOG_LEVEL=loud", "MEMLOCK_EXPORTER_TYPO=1"},
			"MEMLOCK_EXPORTER_TYPO", "1", "unknown variable",
		},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.environ, ","), func(t *testing.T) {
			for range 3 { // map iteration order must not matter
				_, err := Load(tt.environ)
				checkError(t, err, tt.varName, tt.value, tt.allowed)
			}
		})
	}
}

// checkError asserts err is a one-line *Error for varName and value whose
// Allowed contains allowed, and whose text holds all three.
func checkError(t *testing.T, err error, varName, value, allowed string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Load succeeded, want an error for %s=%q", varName, value)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is %T, want *Error", err, err)
	}
	if e.Var != varName || e.Value != value {
		t.Errorf("Var, Value = %q, %q, want %q, %q", e.Var, e.Value, varName, value)
	}
	if !strings.Contains(e.Allowed, allowed) {
		t.Errorf("Allowed = %q, want it to contain %q", e.Allowed, allowed)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	for _, part := range []string{varName, strconv.Quote(value), e.Allowed} {
		if !strings.Contains(msg, part) {
			t.Errorf("error %q does not contain %q", msg, part)
		}
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

func TestErrorText(t *testing.T) {
	if page != 4096 {
		t.Skipf("page size is %d, the example assumes 4096", page)
	}
	_, err := Load([]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=3000"})
	want := `MEMLOCK_EXPORTER_RINGBUF_SIZE="3000": must be a power of two between 4096 and 1073741824 bytes (e.g. 1MiB)`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestUnknownVariable(t *testing.T) {
	known := "known: MEMLOCK_EXPORTER_LOG_LEVEL, MEMLOCK_EXPORTER_LOG_FORMAT, MEMLOCK_EXPORTER_RINGBUF_SIZE, " +
		"MEMLOCK_EXPORTER_WAKEUP_BYTES, MEMLOCK_EXPORTER_FLUSH_INTERVAL, MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT, MEMLOCK_EXPORTER_SYSCALLS, MEMLOCK_EXPORTER_KERNEL_HOOK, " +
		"MEMLOCK_EXPORTER_KERNEL_FUNCTION_HOOK, MEMLOCK_EXPORTER_UPROBES, MEMLOCK_EXPORTER_LIBC_PATHS, " +
		"MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE, MEMLOCK_EXPORTER_PROCESS_CACHE_TTL, MEMLOCK_EXPORTER_COMMAND_ARGS, " +
		"MEMLOCK_EXPORTER_PROCESS_METRICS, MEMLOCK_EXPORTER_PROCESS_METRICS_MAX, MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION, " +
		"MEMLOCK_EXPORTER_OTLP_ENCODER"
	tests := []struct {
		environ []string
		varName string
		value   string
		allowed string
	}{
		{
			[]string{"MEMLOCK_EXPORTER_RINGBUF_SIZ=4MiB"},
			"MEMLOCK_EXPORTER_RINGBUF_SIZ", "4MiB",
			"unknown variable (did you mean MEMLOCK_EXPORTER_RINGBUF_SIZE?); " + known,
		},
		{
			[]string{"MEMLOCK_EXPORTER_LOGLEVEL=debug"},
			"MEMLOCK_EXPORTER_LOGLEVEL", "debug",
			"unknown variable (did you mean MEMLOCK_EXPORTER_LOG_LEVEL?); " + known,
		},
		{
			[]string{"memlock_exporter_log_level=debug"},
			"memlock_exporter_log_level", "debug",
			"unknown variable (did you mean MEMLOCK_EXPORTER_LOG_LEVEL?); " + known,
		},
		{
			[]string{"MEMLOCK_EXPORTER_ENDPOINT=http://x:4317"},
			"MEMLOCK_EXPORTER_ENDPOINT", "http://x:4317",
			"unknown variable; " + known,
		},
		{
			[]string{"MEMLOCK_EXPORTER_=1"},
			"MEMLOCK_EXPORTER_", "1",
			"unknown variable; " + known,
		},
		{
			// Alphabetically first unknown, whatever the order given.
			[]string{"MEMLOCK_EXPORTER_ZZZ=1", "MEMLOCK_EXPORTER_LOG_LEVEL=debug", "MEMLOCK_EXPORTER_AAA=2"},
			"MEMLOCK_EXPORTER_AAA", "2",
			"unknown variable; " + known,
		},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.environ, ","), func(t *testing.T) {
			_, err := Load(tt.environ)
			checkError(t, err, tt.varName, tt.value, tt.allowed)
			var e *Error
			if errors.As(err, &e) && e.Allowed != tt.allowed {
				t.Errorf("Allowed = %q, want %q", e.Allowed, tt.allowed)
			}
		})
	}
}

// TestVariablesMatchConfig keeps Variables (what --help prints) and Config's
// env tags (what Load reads) in agreement.
func TestVariablesMatchConfig(t *testing.T) {
	vars := Variables()
	byName := make(map[string]Variable)
	var order []string // Variables' names that are Config fields, in order
	typ := reflect.TypeFor[Config]()
	fields := make(map[string]reflect.StructField)
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, ok := f.Tag.Lookup("env")
		if !ok {
			t.Errorf("field %s has no env tag", f.Name)
			continue
		}
		fields[name] = f
	}
	for _, v := range vars {
		if _, dup := byName[v.Name]; dup {
			t.Errorf("%s listed twice", v.Name)
		}
		byName[v.Name] = v
		if v.Description == "" || v.Allowed == "" {
			t.Errorf("%s: Description and Allowed must be set: %+v", v.Name, v)
		}
		if strings.ContainsAny(v.Name+v.Default+v.Allowed+v.Description, "\t\n") {
			t.Errorf("%s: tab or newline would break the table: %+v", v.Name, v)
		}
		if !strings.HasPrefix(v.Name, Prefix) && !strings.HasPrefix(v.Name, "OTEL_") && v.Name != "GOMEMLIMIT" {
			t.Errorf("%s: neither ours, nor a standard OTEL_ variable, nor GOMEMLIMIT", v.Name)
		}
		f, ok := fields[v.Name]
		if strings.HasPrefix(v.Name, Prefix) && !ok {
			t.Errorf("%s is listed but no Config field reads it", v.Name)
		}
		if ok {
			order = append(order, v.Name)
			if def := f.Tag.Get("envDefault"); def != v.Default {
				t.Errorf("%s: Variables says default %q, field %s's envDefault is %q", v.Name, v.Default, f.Name, def)
			}
		}
	}
	var fieldOrder []string
	for i := range typ.NumField() {
		name := typ.Field(i).Tag.Get("env")
		fieldOrder = append(fieldOrder, name)
		if _, ok := byName[name]; !ok {
			t.Errorf("field %s reads %s, which Variables does not list", typ.Field(i).Name, name)
		}
	}
	if !reflect.DeepEqual(order, fieldOrder) {
		t.Errorf("Variables order %v differs from Config field order %v (Load's documented order)", order, fieldOrder)
	}

	// The standard variables the brief promises, with our defaults.
	for name, def := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4317",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		"OTEL_EXPORTER_OTLP_HEADERS":  "",
		"OTEL_EXPORTER_OTLP_INSECURE": "false",
		"OTEL_LOGS_EXPORTER":          "otlp",
		"OTEL_METRICS_EXPORTER":       "otlp",
		"OTEL_TRACES_EXPORTER":        "otlp",
		"OTEL_METRIC_EXPORT_INTERVAL": "60000",
		"OTEL_SERVICE_NAME":           "memlock-exporter",
		"OTEL_RESOURCE_ATTRIBUTES":    "",
		"OTEL_SDK_DISABLED":           "false",
	} {
		v, ok := byName[name]
		if !ok {
			t.Errorf("%s not listed", name)
		} else if v.Default != def {
			t.Errorf("%s: default %q, want %q", name, v.Default, def)
		}
	}

	// Defaults listed for our variables must load to the defaults.
	var environ []string
	for _, v := range vars {
		if _, ok := fields[v.Name]; ok {
			environ = append(environ, v.Name+"="+v.Default)
		}
	}
	got, err := Load(environ)
	if err != nil {
		t.Fatalf("Load(listed defaults): %v", err)
	}
	if !reflect.DeepEqual(got, defaults()) {
		t.Errorf("Load(listed defaults) = %+v, want %+v", got, defaults())
	}

	// The slice is the caller's.
	vars[0].Name = "changed"
	if Variables()[0].Name == "changed" {
		t.Error("Variables shares its slice")
	}
}

func TestUsage(t *testing.T) {
	var buf bytes.Buffer
	Usage(&buf)
	out := buf.String()
	t.Logf("Usage output:\n%s", out)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	vars := Variables()
	if len(lines) != len(vars)+1 {
		t.Fatalf("%d lines, want a header and %d variables", len(lines), len(vars))
	}
	if !strings.HasPrefix(lines[0], "VARIABLE ") {
		t.Errorf("header = %q", lines[0])
	}
	defCol := strings.Index(lines[0], "DEFAULT")
	descCol := strings.Index(lines[0], "DESCRIPTION")
	for i, v := range vars {
		line := lines[i+1]
		def := v.Default
		if def == "" {
			def = "-"
		}
		if !strings.HasPrefix(line, v.Name+" ") || line[defCol:defCol+len(def)] != def ||
			!strings.HasPrefix(line[descCol:], v.Description+" Allowed: "+v.Allowed+".") {
			t.Errorf("line %q is not aligned name/default/description for %+v", line, v)
		}
	}
}

func TestLogger(t *testing.T) {
	for _, tt := range []struct {
		format string
		json   bool
	}{{"text", false}, {"json", true}, {"", false}} {
		var buf bytes.Buffer
		c := Config{LogLevel: slog.LevelWarn, LogFormat: tt.format}
		log := c.Logger(&buf)
		log.Info("hidden")
		log.Warn("shown", "k", 1)
		out := buf.String()
		if strings.Contains(out, "hidden") || !strings.Contains(out, "shown") {
			t.Errorf("format %q: level not applied: %q", tt.format, out)
		}
		if isJSON := json.Valid(bytes.TrimSpace(buf.Bytes())); isJSON != tt.json {
			t.Errorf("format %q: JSON = %v, want %v: %q", tt.format, isJSON, tt.json, out)
		}
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv("MEMLOCK_EXPORTER_LOG_LEVEL", "debug")
	t.Setenv("OTEL_SDK_DISABLED", "true")
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.LogLevel != slog.LevelDebug || !c.SDKDisabled {
		t.Errorf("FromEnv = %+v", c)
	}
}

func TestParseBytes(t *testing.T) {
	for s, want := range map[string]int{"0": 0, "1": 1, "007": 7, "1KiB": 1024, "1kib": 1024, "3MiB": 3 << 20, "2GiB": 2 << 30} {
		if got, err := parseBytes(s); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "KiB", "1KB", "1 KiB", "-1", "+1", "1e6", "8589934592GiB", "9223372036854775808"} {
		if got, err := parseBytes(s); err == nil {
			t.Errorf("parseBytes(%q) = %d, want an error", s, got)
		}
	}
	for n, want := range map[int]string{0: "0", 256: "256", 4096: "4KiB", 65536: "64KiB", 1 << 20: "1MiB", 3 << 29: "1536MiB", 1 << 30: "1GiB"} {
		if got := formatBytes(n); !reflect.DeepEqual(got, want) {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
