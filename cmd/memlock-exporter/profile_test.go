package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStartCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	stop, err := startCPUProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Some work for the profiler to see.
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	stop()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A profile is gzip-compressed protobuf.
	if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		t.Errorf("profile of %d bytes does not start as gzip: % x", len(data), data[:min(len(data), 8)])
	}

	if _, err := startCPUProfile(filepath.Join(t.TempDir(), "missing", "cpu.pprof")); err == nil {
		t.Error("a profile in a missing directory was accepted")
	}
}
