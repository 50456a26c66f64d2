package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	startTimeout = 30 * time.Second
	stopTimeout  = 15 * time.Second
)

// child is a process the benchmark started, with its stdout and stderr
// collected in memory or in a file.
type child struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has been waited for
	err    error         // Wait's result, valid once exited is closed
}

func startChild(name string, cmd *exec.Cmd) (*child, error) {
	// If the benchmark dies, so do its children: nothing keeps tracing or
	// listening behind it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, exited: make(chan struct{})}
	addChild(cmd.Process.Pid)
	go func() { c.err = cmd.Wait(); removeChild(cmd.Process.Pid); close(c.exited) }()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, which makes both the exporter and the collector flush
// what they hold, and waits for a clean exit; it kills the process after
// stopTimeout. Calling it on a process that has exited returns how it
// exited.
func (c *child) stop() error {
	if c.running() {
		if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("signal %s: %w", c.name, err)
		}
	}
	select {
	case <-c.exited:
	case <-time.After(stopTimeout):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("stop %s: no exit within %v of SIGTERM; killed it", c.name, stopTimeout)
	}
	if c.err != nil {
		return fmt.Errorf("stop %s: %w", c.name, c.err)
	}
	return nil
}

// kill ends the process at once; for clean-up after a failure.
func (c *child) kill() {
	if c.running() {
		_ = c.cmd.Process.Kill()
	}
	<-c.exited
}

// collector is the test-only OpenTelemetry Collector (e2e/otelcol) on free
// loopback ports, writing what it receives into a temporary directory.
type collector struct {
	*child
	grpcAddr string
	httpAddr string
	dir      string
}

// collectorOutput is where the collector's stdout and stderr go, inside its
// directory.
const collectorOutput = "collector.log"

// startCollector starts bin with config (e2e/otelcol/config.yaml, steered
// by its OTELCOL_E2E_* variables) and returns once its OTLP/gRPC port
// accepts connections and the process is still alive, for the port might
// belong to someone else. It listens for OTLP/gRPC on grpcAddr, or on a
// free loopback port if grpcAddr is "".
func startCollector(bin, config, dir, grpcAddr string, args ...string) (*collector, error) {
	var err error
	if grpcAddr == "" {
		if grpcAddr, err = freeLoopbackAddr(); err != nil {
			return nil, err
		}
	}
	httpAddr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(dir, collectorOutput))
	if err != nil {
		return nil, fmt.Errorf("create collector output: %w", err)
	}
	defer out.Close() // the child has its own descriptor

	cmd := exec.Command(bin, append([]string{"--config=file:" + config}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"OTELCOL_E2E_GRPC_ENDPOINT="+grpcAddr,
		"OTELCOL_E2E_HTTP_ENDPOINT="+httpAddr,
		"OTELCOL_E2E_OUTPUT_DIR="+dir,
		// basic prints one line per request with its record count,
		// which is how we learn what arrived without parsing the files.
		"OTELCOL_E2E_VERBOSITY=basic",
	)
	cmd.Stdout, cmd.Stderr = out, out
	ch, err := startChild("collector", cmd)
	if err != nil {
		return nil, err
	}
	c := &collector{child: ch, grpcAddr: grpcAddr, httpAddr: httpAddr, dir: dir}
	if err := c.waitReady(); err != nil {
		c.kill()
		return nil, err
	}
	return c, nil
}

func (c *collector) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	for !acceptsTCP(c.grpcAddr) {
		if !c.running() {
			return fmt.Errorf("start collector: exited (%v):\n%s", c.err, c.output())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("start collector: not listening on %s after %v:\n%s", c.grpcAddr, startTimeout, c.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-c.exited:
		return fmt.Errorf("start collector: exited (%v):\n%s", c.err, c.output())
	case <-time.After(100 * time.Millisecond):
		return nil
	}
}

// endpoint is the OTLP/gRPC endpoint for OTEL_EXPORTER_OTLP_ENDPOINT; the
// http:// scheme makes the SDK speak plaintext.
func (c *collector) endpoint() string { return "http://" + c.grpcAddr }

// httpEndpoint is the OTLP/HTTP endpoint, for OTEL_EXPORTER_OTLP_ENDPOINT
// with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf.
func (c *collector) httpEndpoint() string { return "http://" + c.httpAddr }

func (c *collector) output() string {
	b, err := os.ReadFile(filepath.Join(c.dir, collectorOutput))
	if err != nil {
		return fmt.Sprintf("(read collector output: %v)", err)
	}
	return string(b)
}

// received adds up the counts the debug exporter printed for one signal
// ("logs", "traces"), one line per export request, under key ("log
// records", "spans"): what the collector received.
func (c *collector) received(signal, key string) (uint64, error) {
	var total uint64
	for line := range strings.Lines(c.output()) {
		if !strings.Contains(line, `"otelcol.signal": "`+signal+`"`) {
			continue
		}
		_, rest, ok := strings.Cut(line, `"`+key+`": `)
		if !ok {
			continue
		}
		digits, _, _ := strings.Cut(rest, "}")
		n, err := strconv.ParseUint(strings.TrimSpace(digits), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse collector output %q: %w", line, err)
		}
		total += n
	}
	return total, nil
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func acceptsTCP(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// daemon is a running memlock-exporter.
type daemon struct {
	*child
	stderr *lockedBuffer
}

// startDaemon starts the exporter binary with its defaults except for env
// (and flags args) and waits until it has attached and started reading.
func startDaemon(bin string, env []string, args ...string) (*daemon, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(withoutConfig(os.Environ()), env...)
	d := &daemon{stderr: &lockedBuffer{}}
	cmd.Stdout, cmd.Stderr = d.stderr, d.stderr
	ch, err := startChild("memlock-exporter", cmd)
	if err != nil {
		return nil, err
	}
	d.child = ch
	deadline := time.Now().Add(startTimeout)
	for !strings.Contains(d.stderr.String(), "memlock-exporter started") {
		if !d.running() {
			return nil, fmt.Errorf("start memlock-exporter: exited (%v):\n%s", d.err, d.stderr)
		}
		if time.Now().After(deadline) {
			d.kill()
			return nil, fmt.Errorf("start memlock-exporter: not started after %v:\n%s", startTimeout, d.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d, nil
}

// withoutConfig drops OTEL_* and MEMLOCK_EXPORTER_* from environ, so that
// the numbers are those of the defaults, not of whatever the shell running
// the benchmark happens to export.
func withoutConfig(environ []string) []string {
	var out []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "OTEL_") && !strings.HasPrefix(kv, "MEMLOCK_EXPORTER_") {
			out = append(out, kv)
		}
	}
	return out
}

// daemonCounts are the totals the exporter logs when it stops.
type daemonCounts struct {
	events, malformed, exportFailures uint64
	lostRingbufFull, lostMissedEntry  uint64
	lostEntryMapFull, lostProgramBusy uint64
	lostRepeatShed                    uint64
}

func (c daemonCounts) lost() uint64 {
	return c.malformed + c.lostRingbufFull + c.lostMissedEntry + c.lostEntryMapFull + c.lostProgramBusy + c.lostRepeatShed
}

// counts parses the key=value pairs of the exporter's "memlock-exporter
// stopped" line (log/slog's text format, the default).
func (d *daemon) counts() (daemonCounts, error) {
	var line string
	for l := range strings.Lines(d.stderr.String()) {
		if strings.Contains(l, `msg="memlock-exporter stopped"`) {
			line = l
		}
	}
	if line == "" {
		return daemonCounts{}, fmt.Errorf("read memlock-exporter totals: no \"stopped\" line in its output:\n%s", d.stderr)
	}
	var c daemonCounts
	fields := map[string]*uint64{
		"events": &c.events, "malformed": &c.malformed, "export_failures": &c.exportFailures,
		"lost_ringbuf_full": &c.lostRingbufFull, "lost_missed_entry": &c.lostMissedEntry,
		"lost_entry_map_full": &c.lostEntryMapFull, "lost_program_busy": &c.lostProgramBusy,
		"lost_repeat_shed": &c.lostRepeatShed,
	}
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		p, ok := fields[k]
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return daemonCounts{}, fmt.Errorf("parse memlock-exporter totals %q: %w", f, err)
		}
		*p = n
		delete(fields, k)
	}
	// Builds from before program_busy was counted do not print it; the
	// bench compares them with newer ones.
	delete(fields, "lost_program_busy")
	if len(fields) > 0 {
		return daemonCounts{}, fmt.Errorf("read memlock-exporter totals: %d fields missing from %q", len(fields), line)
	}
	return c, nil
}

// warnings returns the exporter's WARN and ERROR lines: dropped records
// and an unreachable collector are reported there.
func (d *daemon) warnings() []string {
	var out []string
	for l := range strings.Lines(d.stderr.String()) {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// lockedBuffer collects a child's output; exec writes into it from its own
// goroutine while we poll it. With keep above 0 it holds only about the
// last keep bytes, for a child that prints a line per call.
type lockedBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	keep int
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if b.keep > 0 && b.buf.Len() > 2*b.keep {
		b.buf.Next(b.buf.Len() - b.keep)
	}
	return n, err
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
