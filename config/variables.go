package config

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Variable describes one environment variable the daemon honours.
type Variable struct {
	Name        string
	Default     string // empty when there is none
	Allowed     string // the values accepted, phrased to follow "must be "
	Description string // what it does, one sentence
}

// Variables lists every variable the daemon honours: ours, from Config's
// tags and field types, in field order; then the standard ones, from
// otelVariables. The slice is the caller's.
func Variables() []Variable {
	var vs []Variable
	for _, f := range fields() {
		vs = append(vs, Variable{Name: f.name, Default: f.def, Allowed: f.allowed(nil), Description: f.help})
	}
	return append(vs, otelVariables()...)
}

// serviceNameDefault is the service.name the exporter gives the resource
// when neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES names one;
// listed here for --help only (Telemetry.ServiceName is "" then), and kept
// equal to the exporter's by a test in cmd/memlock-exporter.
const serviceNameDefault = "memlock-exporter"

// gomemlimitDefault is the Go runtime's soft memory limit the daemon sets
// when GOMEMLIMIT is unset; listed for --help only (the runtime reads the
// variable), and kept equal to the daemon's by a test in
// cmd/memlock-exporter.
const gomemlimitDefault = "24MiB"

// otelVariables lists the standard variables Load reads, and GOMEMLIMIT.
// Defaults are the constants the parser uses; Allowed, where it can, is the
// text of the parser's errors.
func otelVariables() []Variable {
	vs := []Variable{
		{"OTEL_SDK_DISABLED", strconv.FormatBool(false), boolAllowed,
			"true: export no telemetry at all (with --print, a plain event tracer)."},
		{"OTEL_LOGS_EXPORTER", defaultExporter.String(), exportersAllowed(signalExporters),
			"Where the events (one log record per call) go."},
		{"OTEL_TRACES_EXPORTER", defaultExporter.String(), exportersAllowed(signalExporters),
			"Where the spans (one span per call, linked from its log record) go; none makes no spans at all."},
		{"OTEL_METRICS_EXPORTER", defaultExporter.String(), exportersAllowed(metricExporters),
			"Where the metrics go; prometheus serves them for scraping instead of pushing them."},
		{"OTEL_EXPORTER_OTLP_PROTOCOL", defaultProtocol.String(), protocolAllowed + "; http/json is not supported",
			"OTLP transport; ours is grpc where the specification's is http/protobuf. Each OTEL_EXPORTER_OTLP_* variable has _LOGS_, _TRACES_ and _METRICS_ forms (e.g. OTEL_EXPORTER_OTLP_LOGS_PROTOCOL) that win for that signal."},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", defaultGRPCEndpoint, "an http:// (plaintext) or https:// (TLS) URL; with grpc also host:port",
			"Where telemetry is sent over OTLP, for all signals; with http/protobuf a base URL that gets /v1/logs, /v1/traces or /v1/metrics appended (default " + defaultHTTPEndpoint + ")."},
	}
	for _, s := range []struct{ signal, what string }{{"LOGS", "log records"}, {"TRACES", "spans"}, {"METRICS", "metrics"}} {
		vs = append(vs, Variable{"OTEL_EXPORTER_OTLP_" + s.signal + "_ENDPOINT", "",
			"as OTEL_EXPORTER_OTLP_ENDPOINT; with http/protobuf the full URL, used as is (e.g. http://collector:4318/v1/" + strings.ToLower(s.signal) + ")",
			"Where " + s.what + " are sent, instead of OTEL_EXPORTER_OTLP_ENDPOINT."})
	}
	vs = append(vs, []Variable{
		{"OTEL_EXPORTER_OTLP_INSECURE", strconv.FormatBool(false), boolAllowed,
			"true: plaintext to a grpc endpoint given as host:port (an endpoint's http:// or https:// decides for itself)."},
		{"OTEL_EXPORTER_OTLP_HEADERS", "", headersAllowed,
			"Headers sent with every export, e.g. for authentication; a signal's own set replaces this one."},
		{"OTEL_EXPORTER_OTLP_COMPRESSION", defaultCompression.String(), compressionAllowed,
			"Compression of export requests."},
		{"OTEL_EXPORTER_OTLP_TIMEOUT", ms(defaultOTLPTimeout), millisAllowed,
			"Longest time one export request may take."},
		{"OTEL_EXPORTER_OTLP_CERTIFICATE", "", "the path of a PEM file",
			"CA certificates to verify the collector's TLS certificate with, instead of the system's."},
		{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "", "the path of a PEM file, with OTEL_EXPORTER_OTLP_CLIENT_KEY",
			"Client certificate for mutual TLS."},
		{"OTEL_EXPORTER_OTLP_CLIENT_KEY", "", "the path of a PEM file, with OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
			"Private key of the client certificate."},
	}...)
	for _, b := range []struct{ prefix, what, per string }{{"OTEL_BLRP_", "log record", "log records"}, {"OTEL_BSP_", "span", "spans"}} {
		delay := defaultBLRPScheduleDelay
		if b.prefix == "OTEL_BSP_" {
			delay = defaultBSPScheduleDelay
		}
		vs = append(vs, []Variable{
			{b.prefix + "SCHEDULE_DELAY", ms(delay), millisAllowed,
				"Longest time a " + b.what + " waits to be sent."},
			{b.prefix + "EXPORT_TIMEOUT", ms(defaultBatchExportTimeout), millisAllowed,
				"Longest time one console export of " + b.per + " may take; an OTLP export is retried until the collector takes it, refuses it for good or the daemon stops, each attempt bounded by OTEL_EXPORTER_OTLP_TIMEOUT."},
			{b.prefix + "MAX_QUEUE_SIZE", strconv.Itoa(defaultMaxQueueSize), countAllowed,
				"Most " + b.per + " waiting to be sent, held while the collector is down; beyond, the newest are dropped (memlock.events.lost{queue_full}). The specification's 2048 holds only 40 ms of calls at 50 000 a second."},
			{b.prefix + "MAX_EXPORT_BATCH_SIZE", strconv.Itoa(defaultMaxExportBatch), "a whole number from 1 to " + b.prefix + "MAX_QUEUE_SIZE",
				"Most " + b.per + " per export; the specification says 512, but each export has a fixed cost (a batch also ends at 2 MiB, half the collector's default message limit)."},
		}...)
	}
	return append(vs, []Variable{
		{"OTEL_TRACES_SAMPLER", defaultSampler.String(), samplerAllowed,
			"Which calls get a span; every span is a root, so a parentbased_ sampler acts as the sampler it names."},
		{"OTEL_TRACES_SAMPLER_ARG", strconv.FormatFloat(defaultSamplerRatio, 'g', -1, 64), ratioAllowed,
			"Fraction of calls that get a span, for the traceidratio samplers."},
		{"OTEL_METRIC_EXPORT_INTERVAL", ms(defaultMetricInterval), millisAllowed,
			"Time between two metric exports."},
		{"OTEL_METRIC_EXPORT_TIMEOUT", ms(defaultMetricTimeout), millisAllowed,
			"Longest time one metric export may take."},
		{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", defaultTemporality.String(), temporalityAllowed,
			"Aggregation temporality the OTLP metric exporter asks for; lowmemory is delta for counters and histograms, cumulative for the rest."},
		{"OTEL_EXPORTER_PROMETHEUS_HOST", defaultPrometheusHost, "a host name or IP address",
			"Address the prometheus metrics exporter listens on."},
		{"OTEL_EXPORTER_PROMETHEUS_PORT", strconv.Itoa(defaultPrometheusPort), portAllowed,
			"Port the prometheus metrics exporter listens on."},
		{"OTEL_SERVICE_NAME", serviceNameDefault, "any string",
			"The service.name resource attribute; wins over one in OTEL_RESOURCE_ATTRIBUTES."},
		{"OTEL_RESOURCE_ATTRIBUTES", "", resourceAllowed,
			"Extra resource attributes on all telemetry."},
		{"GOMEMLIMIT", gomemlimitDefault, "a byte count with a unit (e.g. 64MiB), or off",
			"The Go runtime's soft memory limit (read by the runtime); ours when unset, 12MiB plus 768 bytes per item the export queues hold (24MiB with their defaults), so that full export queues make the garbage collector work harder instead of doubling the heap."},
	}...)
}

// ms writes d in whole milliseconds, as the OTEL_* variables take it.
func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// Usage prints Variables as an aligned table: name, default ("-" when there
// is none), and description followed by what is allowed.
func Usage(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tDESCRIPTION")
	for _, v := range Variables() {
		def := v.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s Allowed: %s.\n", v.Name, def, v.Description, v.Allowed)
	}
	tw.Flush()
}

// Markdown renders Variables as the README's table (go generate ./config
// writes it there).
func Markdown() string {
	var b strings.Builder
	b.WriteString("| variable | default | what it does | allowed |\n|---|---|---|---|\n")
	for _, v := range Variables() {
		def := "(none)"
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", v.Name, def, markdownText(v.Description), markdownText(v.Allowed))
	}
	return b.String()
}

// markdownText puts what looks like code (names with _ or dots, paths,
// URLs, key=value, flags) in code spans, so that Markdown neither takes
// underscores, stars or <pid> for markup nor breaks the table on a "|".
// The descriptions live in struct tags, which cannot hold backquotes.
func markdownText(s string) string {
	words := strings.Split(s, " ")
	for i, w := range words {
		lead := len(w) - len(strings.TrimLeft(w, "("))
		core := strings.TrimRight(w[lead:], ",.;:)")
		if looksLikeCode(core) {
			words[i] = w[:lead] + "`" + core + "`" + w[lead+len(core):]
		}
	}
	return strings.ReplaceAll(strings.Join(words, " "), "|", `\|`)
}

func looksLikeCode(w string) bool {
	if strings.HasPrefix(w, "--") || strings.ContainsAny(w, "_/<>*=:") {
		return true
	}
	if !strings.Contains(w, ".") {
		return false
	}
	for _, part := range strings.Split(w, ".") { // memlock.kernel.duration, not e.g
		if len(part) < 2 || !('a' <= part[0] && part[0] <= 'z' || 'A' <= part[0] && part[0] <= 'Z') {
			return false
		}
	}
	return true
}
