//go:build !race

package exporter

// raceEnabled: the race detector changes allocation counts.
const raceEnabled = false
