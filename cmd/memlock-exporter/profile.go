package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startCPUProfile profiles the daemon into path until stop is called; the
// profile is complete only then, so the daemon must exit cleanly (SIGTERM).
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
