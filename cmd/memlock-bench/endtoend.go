package main

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The end-to-end section runs the real daemon against the real collector
// and charges it, from the outside, for everything it does per event: the
// ring-buffer reader, the conversion, the SDK and the OTLP/gRPC export.

// e2eOptions are the flags of the end-to-end section.
type e2eOptions struct {
	exporter  string         // the memlock-exporter binary
	collector string         // the e2e/otelcol binary
	rate      int            // mlock2 calls per second
	duration  time.Duration  // the measured window
	only      bool           // skip every other section
	setups    *regexp.Regexp // if set, only the setups whose label matches
	rounds    int            // measurements of each setup; the median is reported
}

// e2eWarmup runs the load before the window opens so that the exporter's
// gRPC connections, SDK queues and heap are at their steady state.
const e2eWarmup = 2 * time.Second

// collectorConfig is the test collector's configuration, relative to the
// repository's root, where `make bench` runs.
const collectorConfig = "e2e/otelcol/config.yaml"

// Targets from the export issue, printed beside the results.
const (
	targetCPUPerEvent = 2 * time.Microsecond
	targetPeakRSS     = 60 << 20
)

// e2eSetup is one way of running the exporter, its defaults changed by env.
type e2eSetup struct {
	label string
	env   []string
}

// e2eSetups peel the pipeline back one signal at a time, so each signal's
// share of the cost shows as the difference between two rows. The first
// runs the defaults, whatever signals this build of the exporter sends; a
// build without spans ignores OTEL_TRACES_EXPORTER.
var e2eSetups = []e2eSetup{
	{label: "defaults (every signal on)"},
	{label: "logs + metrics (OTEL_TRACES_EXPORTER=none)", env: []string{"OTEL_TRACES_EXPORTER=none"}},
	{label: "metrics only (also OTEL_LOGS_EXPORTER=none)", env: []string{"OTEL_TRACES_EXPORTER=none", "OTEL_LOGS_EXPORTER=none"}},
	{label: "reader only (OTEL_SDK_DISABLED=true)", env: []string{"OTEL_SDK_DISABLED=true"}},
}

// e2eResult is what one setup cost.
type e2eResult struct {
	setup    e2eSetup
	window   time.Duration // as measured
	calls    uint64        // mlock2 calls made in the window
	cpu      cpuTimes      // the exporter's CPU time in the window
	colCPU   cpuTimes      // the collector's, which competes for the same CPUs
	peakRSS  uint64        // bytes, over the exporter's whole life
	made     uint64        // mlock2 calls made over the whole run
	daemon   daemonCounts  // the exporter's own totals
	records  uint64        // log records the collector received
	spans    uint64        // spans the collector received
	warnings []string      // the exporter's WARN and ERROR lines
	// perRound is the exporter's CPU per event in µs in each round, in
	// order; this result is the round with the median.
	perRound []float64
}

// perEvent is the exporter's CPU time per call made in the window.
func (r e2eResult) perEvent(d time.Duration) float64 {
	if r.calls == 0 {
		return 0
	}
	return float64(d.Nanoseconds()) / 1e3 / float64(r.calls)
}

func (r e2eResult) rate() float64 { return float64(r.calls) / r.window.Seconds() }

// missingE2EInputs says what the end-to-end section needs and cannot find,
// or "" when it can run.
func missingE2EInputs(opts e2eOptions) string {
	for _, in := range []struct{ what, path, hint string }{
		{"memlock-exporter binary", opts.exporter, "make bin/memlock-exporter, or -exporter PATH"},
		{"collector binary", opts.collector, "make bin/otelcol, or -collector PATH"},
		{"collector configuration", collectorConfig, "run from the repository's root"},
	} {
		if _, err := os.Stat(in.path); err != nil {
			return fmt.Sprintf("skipped end-to-end measurement: no %s at %s (%s)", in.what, in.path, in.hint)
		}
	}
	return ""
}

// measureEndToEnd measures every setup in turn, each with a fresh collector
// and exporter.
func measureEndToEnd(page []byte, opts e2eOptions) ([]e2eResult, error) {
	// The collector runs in its own directory: relative paths would break.
	for _, p := range []*string{&opts.exporter, &opts.collector} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", *p, err)
		}
		*p = abs
	}
	config, err := filepath.Abs(collectorConfig)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", collectorConfig, err)
	}
	hz := clockTicks()
	var setups []e2eSetup
	for _, s := range e2eSetups {
		if opts.setups == nil || opts.setups.MatchString(s.label) {
			setups = append(setups, s)
		}
	}
	// The rounds go through every setup in turn, so that drift on a noisy
	// machine spreads over all of them.
	rounds := make([][]e2eResult, len(setups))
	for range max(1, opts.rounds) {
		for i, s := range setups {
			r, err := measureSetup(page, opts, config, s, hz)
			if err != nil {
				return medianResults(rounds), fmt.Errorf("measure end to end, %s: %w", s.label, err)
			}
			rounds[i] = append(rounds[i], r)
		}
	}
	return medianResults(rounds), nil
}

// medianResults returns, for each setup's rounds, the round whose CPU per
// event is the median (the lower one of an even count), with every
// round's figure in perRound.
func medianResults(rounds [][]e2eResult) []e2eResult {
	var out []e2eResult
	for _, rs := range rounds {
		if len(rs) == 0 {
			continue
		}
		per := make([]float64, len(rs))
		for i, r := range rs {
			per[i] = r.perEvent(r.cpu.total())
		}
		order := make([]int, len(rs))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return cmp.Compare(per[a], per[b]) })
		m := rs[order[(len(rs)-1)/2]]
		m.perRound = per
		out = append(out, m)
	}
	return out
}

// measureSetup starts a collector and the exporter, runs the steady load
// through warm-up and window, then stops the exporter (which flushes) and
// the collector, and gathers what each of them counted.
func measureSetup(page []byte, opts e2eOptions, config string, s e2eSetup, hz int64) (e2eResult, error) {
	r := e2eResult{setup: s}
	dir, err := os.MkdirTemp("", "memlock-bench-otelcol-*")
	if err != nil {
		return r, fmt.Errorf("create collector directory: %w", err)
	}
	// The collector writes every record it receives as JSON: hundreds of
	// MB per setup at the default rate. Never keep them.
	defer os.RemoveAll(dir)

	col, err := startCollector(opts.collector, config, dir)
	if err != nil {
		return r, err
	}
	defer col.kill() // after a failure; a no-op once stopped

	d, err := startDaemon(opts.exporter, append([]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + col.endpoint(),
		"OTEL_METRIC_EXPORT_INTERVAL=1000",
	}, s.env...))
	if err != nil {
		return r, err
	}
	defer d.kill()

	load := startSteadyLoad(page, opts.rate)
	windowErr := measureWindow(&r, d.pid(), col.pid(), load, opts.duration, hz)
	made, loadErr := load.Stop()
	if err := errors.Join(windowErr, loadErr); err != nil {
		return r, err
	}
	r.made = made

	if err := d.stop(); err != nil {
		return r, fmt.Errorf("%w:\n%s", err, d.stderr)
	}
	if r.daemon, err = d.counts(); err != nil {
		return r, err
	}
	r.warnings = d.warnings()
	if err := col.stop(); err != nil {
		return r, fmt.Errorf("%w:\n%s", err, col.output())
	}
	if r.records, err = col.received("logs", "log records"); err != nil {
		return r, err
	}
	r.spans, err = col.received("traces", "spans")
	return r, err
}

// measureWindow lets the load warm the exporter up, then samples the CPU
// times of the exporter and the collector and the calls made at both ends
// of the window, and the exporter's peak RSS at the end, while it still
// runs.
func measureWindow(r *e2eResult, exporterPID, collectorPID int, load *steadyLoad, window time.Duration, hz int64) error {
	time.Sleep(e2eWarmup)
	exp0, col0, err := readBothCPUTimes(exporterPID, collectorPID, hz)
	if err != nil {
		return err
	}
	calls0, t0 := load.Made(), time.Now()

	time.Sleep(window)
	exp1, col1, err := readBothCPUTimes(exporterPID, collectorPID, hz)
	if err != nil {
		return err
	}
	calls1, t1 := load.Made(), time.Now()

	r.cpu, r.colCPU = exp1.sub(exp0), col1.sub(col0)
	r.calls, r.window = calls1-calls0, t1.Sub(t0)
	r.peakRSS, err = readPeakRSS(exporterPID)
	return err
}

func readBothCPUTimes(exporterPID, collectorPID int, hz int64) (exp, col cpuTimes, err error) {
	if exp, err = readCPUTimes(exporterPID, hz); err != nil {
		return exp, col, fmt.Errorf("memlock-exporter: %w", err)
	}
	if col, err = readCPUTimes(collectorPID, hz); err != nil {
		return exp, col, fmt.Errorf("collector: %w", err)
	}
	return exp, col, nil
}

// printEndToEnd prints the results as rows of the main table.
func printEndToEnd(results []e2eResult, opts e2eOptions) {
	if len(results) == 0 {
		return
	}
	fmt.Printf("%-58s %14s\n", fmt.Sprintf("end to end at %d ev/s, %v window after %v warm-up", opts.rate, opts.duration, e2eWarmup), "")
	if len(results[0].perRound) > 1 {
		fmt.Println("(each setup measured in several rounds, taken in turn; the other figures are from its median round)")
	}
	for _, r := range results {
		fmt.Printf("%-58s %14s\n", "end to end, "+r.setup.label+":", "")
		label := "  exporter CPU per event (user+sys)"
		if len(r.perRound) > 1 {
			label = fmt.Sprintf("  exporter CPU per event (user+sys), median of %d", len(r.perRound))
		}
		fmt.Printf("%-58s %11.2f µs\n", label, r.perEvent(r.cpu.total()))
		if len(r.perRound) > 1 {
			fmt.Printf("%-58s %14s\n", "    each round, µs", formatRounds(r.perRound))
		}
		fmt.Printf("%-58s %11.2f µs\n", "    of which sys", r.perEvent(r.cpu.sys))
		fmt.Printf("%-58s %10.1f MiB\n", "  exporter peak RSS (VmHWM)", float64(r.peakRSS)/(1<<20))
		fmt.Printf("%-58s %11.2f µs\n", "  collector CPU per event (shares the CPUs)", r.perEvent(r.colCPU.total()))
		fmt.Printf("%-58s %10.0f ev/s\n", fmt.Sprintf("  achieved rate (%d calls in %.1fs)", r.calls, r.window.Seconds()), r.rate())
		fmt.Printf("%-58s %14s\n", "  calls made / events read by the exporter (whole run)", fmt.Sprintf("%d / %d", r.made, r.daemon.events))
		fmt.Printf("%-58s %14s\n", "  log records / spans at the collector", fmt.Sprintf("%d / %d", r.records, r.spans))
		fmt.Printf("%-58s %14s\n", "  log export failures / lost before export", fmt.Sprintf("%d / %d", r.daemon.exportFailures, r.daemon.lost()))
	}
}

// printEndToEndNotes prints whether each setup met the targets, and what
// the exporter warned about.
func printEndToEndNotes(results []e2eResult) {
	if len(results) == 0 {
		return
	}
	fmt.Printf("\nend-to-end targets: exporter CPU per event <= %.0f µs, peak RSS <= %d MiB\n",
		float64(targetCPUPerEvent.Nanoseconds())/1e3, targetPeakRSS>>20)
	for _, r := range results {
		cpuOK := r.perEvent(r.cpu.total()) <= float64(targetCPUPerEvent.Nanoseconds())/1e3
		fmt.Printf("  %s: CPU %s, RSS %s\n", r.setup.label, verdict(cpuOK), verdict(r.peakRSS <= targetPeakRSS))
	}
	for _, r := range results {
		if r.daemon.events < r.made {
			fmt.Printf("  %s: the exporter read %d events for %d calls\n", r.setup.label, r.daemon.events, r.made)
		}
		for i, w := range r.warnings {
			if i == 3 {
				fmt.Printf("  %s: … %d more warnings\n", r.setup.label, len(r.warnings)-i)
				break
			}
			fmt.Printf("  %s: %s\n", r.setup.label, w)
		}
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func formatRounds(per []float64) string {
	parts := make([]string, len(per))
	for i, v := range per {
		parts[i] = strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strings.Join(parts, " ")
}
