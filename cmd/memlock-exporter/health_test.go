package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
)

// TestHealthEndpoint runs the daemon as root with the health endpoint on a
// free loopback port and no export: once started, /readyz and /livez answer
// 200 "ok", on an idle host too; SIGTERM ends it cleanly. An address that
// cannot be listened on stops start-up with exit code 2 and a line naming
// the variable.
func TestHealthEndpoint(t *testing.T) {
	testutil.RequireRoot(t)
	daemon := buildDaemon(t)

	t.Run("probes answer 200", func(t *testing.T) {
		addr := testutil.FreeLoopbackAddr(t)
		cmd := exec.Command(daemon)
		cmd.Env = append(cmd.Environ(), "MEMLOCK_EXPORTER_HEALTH_ADDR="+addr,
			"MEMLOCK_EXPORTER_FLUSH_INTERVAL=20ms", "OTEL_SDK_DISABLED=true")
		_, stderr := startCommand(t, cmd, "health endpoint listening")
		if !strings.Contains(stderr.String(), "addr="+addr) {
			t.Errorf("the listening line does not name %s:\n%s", addr, stderr)
		}
		// Ready comes once Run has started, a moment after listening.
		var code int
		var body string
		waitFor(t, "200 from /readyz", func() bool {
			code, body = get(t, addr, "/readyz")
			return code == http.StatusOK
		})
		if body != "ok\n" {
			t.Errorf("/readyz: body %q, want %q", body, "ok\n")
		}
		// Many flush intervals later, still healthy: no calls is no stall.
		time.Sleep(200 * time.Millisecond)
		for _, path := range []string{"/livez", "/readyz"} {
			if code, body := get(t, addr, path); code != http.StatusOK || body != "ok\n" {
				t.Errorf("%s: %d %q, want 200 %q", path, code, body, "ok\n")
			}
		}

		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("daemon did not exit cleanly after SIGTERM: %v\n%s", err, stderr)
		}
		if !strings.Contains(stderr.String(), "memlock-exporter stopped") {
			t.Errorf("no shutdown summary:\n%s", stderr)
		}
		// The server went with the daemon.
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after the daemon exited", addr)
		}
	})

	t.Run("address in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addr := ln.Addr().String()
		var stderr strings.Builder
		cmd := exec.Command(daemon)
		cmd.Env = append(cmd.Environ(), "MEMLOCK_EXPORTER_HEALTH_ADDR="+addr, "OTEL_SDK_DISABLED=true")
		cmd.Stderr = &stderr
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("daemon still running 30s after it could not listen on %s:\n%s", addr, &stderr)
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != exitUsage {
			t.Fatalf("exit %v, want code %d:\n%s", err, exitUsage, &stderr)
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		last := lines[len(lines)-1]
		if want := `memlock-exporter: MEMLOCK_EXPORTER_HEALTH_ADDR="` + addr + `": cannot listen: `; !strings.HasPrefix(last, want) {
			t.Errorf("last line of stderr %q, want it to start %q", last, want)
		}
	})
}

// get returns the status and body of GET http://addr/path.
func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, string(b)
}
