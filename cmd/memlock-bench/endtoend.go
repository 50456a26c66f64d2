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
	// downDuration and downRounds replace duration and rounds for the
	// collector-down setups, whose window must outlast the export queues
	// filling.
	downDuration time.Duration
	downRounds   int
	// downRecovery is how long the collector-down setup goes on once a
	// collector listens on its port; 0 skips that part.
	downRecovery time.Duration
	// env is added to every setup's environment, last (experiments:
	// GOGC, GOMEMLIMIT, queue sizes).
	env []string
	// logDir, if set, receives each run's exporter stderr (with its
	// gctrace when the collector is down), one file per setup and round.
	logDir string
	// collectorSink runs the collector with its debug exporter alone in
	// every pipeline: it decodes and counts what arrives, and writes no
	// files, which took it 18 µs per event on the CPUs the exporter shares.
	collectorSink bool
	// profileDir, if set, receives a CPU profile of the exporter per run
	// of the setups with the collector up (its --cpuprofile).
	profileDir string
}

// collectorArgs are the collector's arguments after its configuration:
// with -collector-sink, every pipeline exports to the debug exporter alone
// (which prints the counts the bench reads).
func collectorArgs(opts e2eOptions) []string {
	if !opts.collectorSink {
		return nil
	}
	var args []string
	for _, signal := range []string{"logs", "metrics", "traces"} {
		args = append(args, "--set=service.pipelines."+signal+".exporters=[debug]")
	}
	return args
}

// e2eWarmup runs the load before the window opens so that the exporter's
// gRPC connections, SDK queues and heap are at their steady state.
const e2eWarmup = 2 * time.Second

// collectorConfig is the test collector's configuration, relative to the
// repository's root, where `make bench` runs.
const collectorConfig = "e2e/otelcol/config.yaml"

// Targets printed beside the results: every setup's CPU per event and
// steady RSS with the collector up (issue #13: at most 1 µs and 40 MiB at
// 50 000 events/s), and the peak RSS with the collector down and the
// export queues full (issue #11, item 6).
const (
	targetCPUPerEvent = 1 * time.Microsecond
	targetSteadyRSS   = 40 << 20
	targetDownRSS     = 40 << 20
)

// e2eSetup is one way of running the exporter, its defaults changed by env.
type e2eSetup struct {
	label string
	env   []string
	// down points the exporter at a closed loopback port instead of a
	// collector, so that every export fails and the queues fill and stay
	// full; the RSS is sampled through the window and the runtime's
	// gctrace read (GODEBUG=gctrace=1, which only prints).
	down bool
	// http sends over OTLP/HTTP (protobuf) to the collector's HTTP
	// receiver instead of OTLP/gRPC.
	http bool
}

// e2eSetups peel the pipeline back one signal at a time, so each signal's
// share of the cost shows as the difference between two rows. The first
// runs the defaults, whatever signals this build of the exporter sends; a
// build without spans ignores OTEL_TRACES_EXPORTER.
var e2eSetups = []e2eSetup{
	{label: "defaults (every signal on)"},
	{label: "defaults over OTLP/HTTP (OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)", env: []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"}, http: true},
	{label: "logs + metrics (OTEL_TRACES_EXPORTER=none)", env: []string{"OTEL_TRACES_EXPORTER=none"}},
	{label: "metrics only (also OTEL_LOGS_EXPORTER=none)", env: []string{"OTEL_TRACES_EXPORTER=none", "OTEL_LOGS_EXPORTER=none"}},
	{label: "reader only (OTEL_SDK_DISABLED=true)", env: []string{"OTEL_SDK_DISABLED=true"}},
	{label: "collector down (defaults, endpoint a closed port)", down: true},
}

// e2eResult is what one setup cost.
type e2eResult struct {
	setup    e2eSetup
	start    time.Time     // when the window opened
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
	// The exporter's RSS through the window; of a collector-down setup,
	// also its garbage collector's cycles in the window.
	rss rssSummary
	gc  gcSummary
	// rssAfter is the RSS once the collector is back (rssAfter.samples
	// is 0 if it was not measured).
	rssAfter rssSummary
}

// perEvent is the exporter's CPU time per call made in the window.
func (r e2eResult) perEvent(d time.Duration) float64 {
	if r.calls == 0 {
		return 0
	}
	return float64(d.Nanoseconds()) / 1e3 / float64(r.calls)
}

func (r e2eResult) rate() float64 { return float64(r.calls) / r.window.Seconds() }

// roundsOf is how many rounds setup s is measured: at least one.
func (o e2eOptions) roundsOf(s e2eSetup) int {
	if s.down {
		return max(1, o.downRounds)
	}
	return max(1, o.rounds)
}

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
	for round := range max(1, opts.rounds, opts.downRounds) {
		for i, s := range setups {
			if round >= opts.roundsOf(s) {
				continue
			}
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
// the collector, and gathers what each of them counted. A collector-down
// setup starts no collector.
func measureSetup(page []byte, opts e2eOptions, config string, s e2eSetup, hz int64) (e2eResult, error) {
	if s.down {
		return measureDownSetup(page, opts, config, s, hz)
	}
	r := e2eResult{setup: s}
	dir, err := os.MkdirTemp("", "memlock-bench-otelcol-*")
	if err != nil {
		return r, fmt.Errorf("create collector directory: %w", err)
	}
	// The collector writes every record it receives as JSON: hundreds of
	// MB per setup at the default rate. Never keep them.
	defer os.RemoveAll(dir)

	col, err := startCollector(opts.collector, config, dir, "", collectorArgs(opts)...)
	if err != nil {
		return r, err
	}
	defer col.kill() // after a failure; a no-op once stopped

	var args []string
	if opts.profileDir != "" {
		args = []string{"--cpuprofile", filepath.Join(opts.profileDir, fmt.Sprintf("%s.%d.pprof", logName(s.label), time.Now().UnixNano()))}
	}
	endpoint := col.endpoint()
	if s.http {
		endpoint = col.httpEndpoint()
	}
	d, err := startDaemon(opts.exporter, append([]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint,
		"OTEL_METRIC_EXPORT_INTERVAL=1000",
	}, slices.Concat(s.env, opts.env)...), args...)
	if err != nil {
		return r, err
	}
	defer d.kill()
	defer keepLog(opts.logDir, s, d)

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

// measureDownSetup runs the exporter against a loopback port nobody
// listens on: every export fails at once (connection refused) and is
// retried, so the export queues fill within the warm-up and stay full for
// the window, which is opts.downDuration. It samples the exporter's RSS
// through the window and reads its garbage collector's trace. Then, unless
// opts.downRecovery is 0, a collector starts on that port, under the same
// load, and the RSS is sampled again through the second half of
// downRecovery: what the exporter keeps once the outage is over.
func measureDownSetup(page []byte, opts e2eOptions, config string, s e2eSetup, hz int64) (e2eResult, error) {
	r := e2eResult{setup: s}
	closed, err := freeLoopbackAddr() // free: closed once it returns
	if err != nil {
		return r, err
	}
	dir, err := os.MkdirTemp("", "memlock-bench-otelcol-*")
	if err != nil {
		return r, fmt.Errorf("create collector directory: %w", err)
	}
	defer os.RemoveAll(dir)
	started := time.Now()
	d, err := startDaemon(opts.exporter, append([]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + closed,
		"OTEL_METRIC_EXPORT_INTERVAL=1000",
		"GODEBUG=gctrace=1",
	}, slices.Concat(s.env, opts.env)...))
	if err != nil {
		return r, err
	}
	defer d.kill()
	defer keepLog(opts.logDir, s, d)

	load := startSteadyLoad(page, opts.rate)
	windowErr := measureWindow(&r, d.pid(), 0, load, opts.downDuration, hz)
	var col *collector
	if windowErr == nil && opts.downRecovery > 0 {
		if col, windowErr = startCollector(opts.collector, config, dir, closed, collectorArgs(opts)...); windowErr == nil {
			defer col.kill() // after a failure; a no-op once stopped
			time.Sleep(opts.downRecovery / 2)
			sampler := startRSSSampler(d.pid())
			time.Sleep(opts.downRecovery - opts.downRecovery/2)
			var samples []memStatus
			samples, windowErr = sampler.Stop()
			r.rssAfter = summarizeRSS(samples)
		}
	}
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
	cycles, err := parseGCTrace(d.stderr.String())
	if err != nil {
		return r, err
	}
	from := r.start.Sub(started)
	r.gc = summarizeGC(cycles, from, from+r.window)
	r.warnings = d.warnings()
	if col == nil {
		return r, nil
	}
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
// times of the exporter and the collector (collectorPID 0: none) and the
// calls made at both ends of the window, and the exporter's peak RSS at
// the end, while it still runs, and samples the exporter's RSS through
// the window.
func measureWindow(r *e2eResult, exporterPID, collectorPID int, load *steadyLoad, window time.Duration, hz int64) error {
	time.Sleep(e2eWarmup)
	exp0, col0, err := readBothCPUTimes(exporterPID, collectorPID, hz)
	if err != nil {
		return err
	}
	calls0, t0 := load.Made(), time.Now()

	sampler := startRSSSampler(exporterPID)
	defer sampler.Stop() // after a failure
	time.Sleep(window)
	exp1, col1, err := readBothCPUTimes(exporterPID, collectorPID, hz)
	if err != nil {
		return err
	}
	calls1, t1 := load.Made(), time.Now()
	samples, err := sampler.Stop()
	if err != nil {
		return fmt.Errorf("memlock-exporter: %w", err)
	}
	r.rss = summarizeRSS(samples)

	r.cpu, r.colCPU = exp1.sub(exp0), col1.sub(col0)
	r.calls, r.start, r.window = calls1-calls0, t0, t1.Sub(t0)
	r.peakRSS, err = readPeakRSS(exporterPID)
	return err
}

// keepLog writes d's output into dir (if set), in a file named after the
// setup, numbered so that rounds do not overwrite each other.
func keepLog(dir string, s e2eSetup, d *daemon) {
	if dir == "" {
		return
	}
	name := logName(s.label)
	for i := 1; ; i++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%s.%d.log", name, i)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "memlock-bench: keep the exporter's log: %v\n", err)
			return
		}
		_, err = f.WriteString(d.stderr.String())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "memlock-bench: keep the exporter's log: %v\n", err)
		}
		return
	}
}

// logName makes a setup's label a file name: lower-case letters and
// digits, each run of anything else one '-', none at either end.
func logName(label string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(label) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
			continue
		}
		dash = true
	}
	return b.String()
}

func readBothCPUTimes(exporterPID, collectorPID int, hz int64) (exp, col cpuTimes, err error) {
	if exp, err = readCPUTimes(exporterPID, hz); err != nil {
		return exp, col, fmt.Errorf("memlock-exporter: %w", err)
	}
	if collectorPID == 0 {
		return exp, col, nil
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
		if r.setup.down {
			fmt.Printf("%-58s %14s\n", fmt.Sprintf("  (%v window after %v warm-up: the queues are full)", opts.downDuration, e2eWarmup), "")
			if opts.downRecovery > 0 {
				fmt.Printf("%-58s %14s\n", fmt.Sprintf("  (then a collector on that port, %v; RSS in its 2nd half)", opts.downRecovery), "")
			}
		}
		label := "  exporter CPU per event (user+sys)"
		if len(r.perRound) > 1 {
			label = fmt.Sprintf("  exporter CPU per event (user+sys), median of %d", len(r.perRound))
		}
		fmt.Printf("%-58s %11.2f µs\n", label, r.perEvent(r.cpu.total()))
		if len(r.perRound) > 1 {
			fmt.Printf("%-58s %14s\n", "    each round, µs", formatRounds(r.perRound))
		}
		fmt.Printf("%-58s %11.2f µs\n", "    of which sys", r.perEvent(r.cpu.sys))
		hwm := "  exporter peak RSS (VmHWM)"
		if r.setup.down {
			hwm = "  exporter peak RSS (VmHWM) by the window's end"
		}
		fmt.Printf("%-58s %10.1f MiB\n", hwm, float64(r.peakRSS)/(1<<20))
		fmt.Printf("%-58s %10.1f MiB\n", fmt.Sprintf("  exporter RSS steady (median VmRSS of %d samples)", r.rss.samples), float64(r.rss.steady.rss)/(1<<20))
		fmt.Printf("%-58s %14s\n", "    anon / file / shmem, MiB", splitRSS(r.rss.steady))
		if r.setup.down {
			printDownMemory(r)
		} else {
			fmt.Printf("%-58s %11.2f µs\n", "  collector CPU per event (shares the CPUs)", r.perEvent(r.colCPU.total()))
		}
		fmt.Printf("%-58s %10.0f ev/s\n", fmt.Sprintf("  achieved rate (%d calls in %.1fs)", r.calls, r.window.Seconds()), r.rate())
		fmt.Printf("%-58s %14s\n", "  calls made / events read by the exporter (whole run)", fmt.Sprintf("%d / %d", r.made, r.daemon.events))
		switch {
		case !r.setup.down:
			fmt.Printf("%-58s %14s\n", "  log records / spans at the collector", fmt.Sprintf("%d / %d", r.records, r.spans))
		case r.rssAfter.samples > 0:
			fmt.Printf("%-58s %14s\n", "  log records / spans at the collector, once back", fmt.Sprintf("%d / %d", r.records, r.spans))
		}
		fmt.Printf("%-58s %14s\n", "  log export failures / lost before export", fmt.Sprintf("%d / %d", r.daemon.exportFailures, r.daemon.lost()))
	}
}

// splitRSS is a sample's RSS as anon / file / shmem MiB.
func splitRSS(m memStatus) string { return mib(m.anon) + " / " + mib(m.file) + " / " + mib(m.shmem) }

// printDownMemory prints the rest of a collector-down setup's memory: its
// highest RSS sampled, split, what the garbage collector saw, and the RSS
// once the collector is back.
func printDownMemory(r e2eResult) {
	fmt.Printf("%-58s %10.1f MiB\n", "  exporter RSS peak (highest VmRSS sampled)", float64(r.rss.peak.rss)/(1<<20))
	fmt.Printf("%-58s %14s\n", "    anon / file / shmem, MiB", splitRSS(r.rss.peak))
	switch {
	case r.gc.last.n == 0:
		fmt.Printf("%-58s %14s\n", "  Go heap (gctrace)", "no GC cycle")
	case r.gc.cycles == 0:
		fmt.Printf("%-58s %14s\n", fmt.Sprintf("  Go heap, no GC in the window; the last (%v in):", r.gc.last.at.Round(100*time.Millisecond)), "")
	default:
		fmt.Printf("%-58s %11.1f /s\n", fmt.Sprintf("  GC cycles in the window (%d)", r.gc.cycles), r.gc.perSecond)
	}
	if r.gc.last.n > 0 {
		fmt.Printf("%-58s %14s\n", "    Go heap live after GC, median / max, MiB", mib(r.gc.liveMedian)+" / "+mib(r.gc.liveMax))
		fmt.Printf("%-58s %14s\n", "    Go heap at a cycle's end / goal, max, MiB", mib(r.gc.heapEndMax)+" / "+mib(r.gc.goalMax))
	}
	if r.rssAfter.samples > 0 {
		fmt.Printf("%-58s %10.1f MiB\n", "  exporter RSS once the collector is back (median VmRSS)", float64(r.rssAfter.steady.rss)/(1<<20))
		fmt.Printf("%-58s %14s\n", "    anon / file / shmem, MiB", splitRSS(r.rssAfter.steady))
	}
}

// printEndToEndNotes prints whether each setup met the targets, and what
// the exporter warned about.
func printEndToEndNotes(results []e2eResult) {
	if len(results) == 0 {
		return
	}
	fmt.Printf("\nend-to-end targets: exporter CPU per event <= %.0f µs, steady RSS <= %d MiB; with the collector down, peak RSS <= %d MiB\n",
		float64(targetCPUPerEvent.Nanoseconds())/1e3, targetSteadyRSS>>20, targetDownRSS>>20)
	for _, r := range results {
		cpuOK := r.perEvent(r.cpu.total()) <= float64(targetCPUPerEvent.Nanoseconds())/1e3
		rssOK := r.rss.steady.rss <= targetSteadyRSS
		if r.setup.down {
			rssOK = r.peakRSS <= targetDownRSS
		}
		fmt.Printf("  %s: CPU %s, RSS %s\n", r.setup.label, verdict(cpuOK), verdict(rssOK))
	}
	for _, r := range results {
		if r.daemon.events < r.made {
			fmt.Printf("  %s: the exporter read %d events for %d calls\n", r.setup.label, r.daemon.events, r.made)
		}
		if foreign := r.daemon.events - r.made; r.daemon.events > r.made && foreign > r.made/100 {
			fmt.Printf("  %s: other processes on this host called the mlock family too (%d events more than the %d calls made): its figures are not clean\n", r.setup.label, foreign, r.made)
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
