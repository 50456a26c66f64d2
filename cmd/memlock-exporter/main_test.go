package main

import (
	"bytes"
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/memlock-exporter/memlock-exporter/config"
	"github.com/memlock-exporter/memlock-exporter/exporter"
)

func TestRunUsageAndConfigErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantStdout []string
		wantStderr []string
		oneLineErr bool
	}{
		{name: "help", args: []string{"--help"}, wantCode: exitOK,
			wantStdout: []string{"Usage: memlock-exporter", "-check", "MEMLOCK_EXPORTER_RINGBUF_SIZE", "1MiB", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317"}},
		{name: "version", args: []string{"--version"}, wantCode: exitOK, wantStdout: []string{"memlock-exporter " + version}},
		{name: "unknown flag", args: []string{"--bogus"}, wantCode: exitUsage, wantStderr: []string{"-bogus", "--help"}},
		{name: "positional argument", args: []string{"extra"}, wantCode: exitUsage, wantStderr: []string{`unexpected argument "extra"`}, oneLineErr: true},
		{name: "bad ring buffer size", env: map[string]string{"MEMLOCK_EXPORTER_RINGBUF_SIZE": "3000"}, wantCode: exitUsage,
			wantStderr: []string{`MEMLOCK_EXPORTER_RINGBUF_SIZE="3000"`, "power of two"}, oneLineErr: true},
		{name: "bad flush interval", env: map[string]string{"MEMLOCK_EXPORTER_FLUSH_INTERVAL": "soon"}, wantCode: exitUsage,
			wantStderr: []string{`MEMLOCK_EXPORTER_FLUSH_INTERVAL="soon"`}, oneLineErr: true},
		{name: "misspelt variable", env: map[string]string{"MEMLOCK_EXPORTER_LOGLEVEL": "debug"}, wantCode: exitUsage,
			wantStderr: []string{"MEMLOCK_EXPORTER_LOGLEVEL", "MEMLOCK_EXPORTER_LOG_LEVEL"}, oneLineErr: true},
		{name: "bad OTLP compression", env: map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, wantCode: exitUsage,
			wantStderr: []string{`OTEL_EXPORTER_OTLP_COMPRESSION="zstd"`, "none or gzip"}, oneLineErr: true},
		{name: "bad metrics exporter", env: map[string]string{"OTEL_METRICS_EXPORTER": "statsd"}, wantCode: exitUsage,
			wantStderr: []string{`OTEL_METRICS_EXPORTER="statsd"`, "prometheus"}, oneLineErr: true},
		{name: "bad resource attributes", env: map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "team"}, wantCode: exitUsage,
			wantStderr: []string{`OTEL_RESOURCE_ATTRIBUTES="team"`, "entry 1"}, oneLineErr: true},
		{name: "bad health address", env: map[string]string{"MEMLOCK_EXPORTER_HEALTH_ADDR": "8686"}, wantCode: exitUsage,
			wantStderr: []string{`MEMLOCK_EXPORTER_HEALTH_ADDR="8686"`, "host:port"}, oneLineErr: true},
		{name: "bad sampler ratio", env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, wantCode: exitUsage,
			wantStderr: []string{`OTEL_TRACES_SAMPLER_ARG="2"`}, oneLineErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, &stdout, &stderr)
			}
			for _, s := range tt.wantStdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, &stdout)
				}
			}
			for _, s := range tt.wantStderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, &stderr)
				}
			}
			if tt.oneLineErr && strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
				t.Errorf("error is not one line:\n%s", &stderr)
			}
		})
	}
}

// TestRemovedVariableWarns: a variable we no longer read is named in a
// warning at start, not refused. --check stops the daemon early: with 0
// when the hooks attach (as root), else 1, never 2.
func TestRemovedVariableWarns(t *testing.T) {
	t.Setenv("MEMLOCK_EXPORTER_OTLP_ENCODER", "sdk")
	var stdout, stderr bytes.Buffer
	code := run([]string{"--check"}, &stdout, &stderr)
	if code == exitUsage {
		t.Fatalf("exit code %d: the removed variable stopped the daemon\nstderr: %s", code, &stderr)
	}
	const warning = "MEMLOCK_EXPORTER_OTLP_ENCODER is no longer used"
	if !strings.Contains(stderr.String(), warning) {
		t.Errorf("stderr lacks %q:\n%s", warning, &stderr)
	}
}

// TestListedDefaults: the defaults --help lists for what config does not
// apply itself are the ones the daemon applies.
func TestListedDefaults(t *testing.T) {
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatalf("load the defaults: %v", err)
	}
	want := map[string]string{
		"GOMEMLIMIT":        config.Bytes(defaultMemoryLimit(&cfg.Telemetry)).String(),
		"OTEL_SERVICE_NAME": exporter.DefaultServiceName,
	}
	for _, v := range config.Variables() {
		if def, ok := want[v.Name]; ok {
			if v.Default != def {
				t.Errorf("--help lists %s=%q, the daemon uses %q", v.Name, v.Default, def)
			}
			delete(want, v.Name)
		}
	}
	for name := range want {
		t.Errorf("%s is not listed by config.Variables", name)
	}
}

// TestDefaultMemoryLimit: our soft memory limit applies only when
// GOMEMLIMIT set none.
func TestDefaultMemoryLimit(t *testing.T) {
	saved := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(saved) })
	var tel config.Telemetry
	tel.LogBatch.MaxQueueSize, tel.SpanBatch.MaxQueueSize = 8192, 8192
	var big config.Telemetry
	big.LogBatch.MaxQueueSize, big.SpanBatch.MaxQueueSize = 262144, 1
	for _, tc := range []struct {
		name      string
		tel       *config.Telemetry
		set, want int64
	}{
		{"unset, default queues", &tel, math.MaxInt64, 24 << 20},
		{"unset, a large log queue", &big, math.MaxInt64, 12<<20 + 768*262145},
		{"set by GOMEMLIMIT", &tel, 100 << 20, 100 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(tc.set)
			setDefaultMemoryLimit(tc.tel)
			if got := debug.SetMemoryLimit(-1); got != tc.want {
				t.Errorf("memory limit = %d, want %d", got, tc.want)
			}
		})
	}
}
