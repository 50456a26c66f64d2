package config

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The exporter builds every exporter, reader and the resource from
// Telemetry, never letting the OpenTelemetry SDK read the environment: the
// SDK's defaults differ from ours (it speaks http/protobuf and tries TLS on
// the loopback), and it matches some values case-sensitively.

// Exporter is where a signal goes (OTEL_{LOGS,TRACES,METRICS}_EXPORTER).
type Exporter uint8

const (
	ExporterOTLP       Exporter = iota // OTLP, the default
	ExporterConsole                    // standard output
	ExporterNone                       // nowhere
	ExporterPrometheus                 // a Prometheus scrape endpoint, metrics only
)

var exporterNames = []string{ExporterOTLP: "otlp", ExporterConsole: "console", ExporterNone: "none", ExporterPrometheus: "prometheus"}

func (e Exporter) String() string { return enumString(exporterNames, e, "Exporter") }

// Protocol is the OTLP transport (OTEL_EXPORTER_OTLP_PROTOCOL).
type Protocol uint8

const (
	ProtocolGRPC         Protocol = iota // OTLP/gRPC, our default
	ProtocolHTTPProtobuf                 // OTLP/HTTP with protobuf bodies
)

var protocolNames = []string{ProtocolGRPC: "grpc", ProtocolHTTPProtobuf: "http/protobuf"}

func (p Protocol) String() string { return enumString(protocolNames, p, "Protocol") }

// Compression is the compression of export requests.
type Compression uint8

const (
	CompressionNone Compression = iota
	CompressionGzip
)

var compressionNames = []string{CompressionNone: "none", CompressionGzip: "gzip"}

func (c Compression) String() string { return enumString(compressionNames, c, "Compression") }

// Sampler decides which calls get a span (OTEL_TRACES_SAMPLER). Every span
// is a root, so a parent-based sampler acts as the one it names.
type Sampler uint8

const (
	SamplerAlwaysOn Sampler = iota
	SamplerAlwaysOff
	SamplerTraceIDRatio
	SamplerParentBasedAlwaysOn // the default
	SamplerParentBasedAlwaysOff
	SamplerParentBasedTraceIDRatio
)

var samplerNames = []string{
	SamplerAlwaysOn:                "always_on",
	SamplerAlwaysOff:               "always_off",
	SamplerTraceIDRatio:            "traceidratio",
	SamplerParentBasedAlwaysOn:     "parentbased_always_on",
	SamplerParentBasedAlwaysOff:    "parentbased_always_off",
	SamplerParentBasedTraceIDRatio: "parentbased_traceidratio",
}

func (s Sampler) String() string { return enumString(samplerNames, s, "Sampler") }

// Temporality is the aggregation temporality the OTLP metric exporter asks
// for (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE).
type Temporality uint8

const (
	TemporalityCumulative Temporality = iota // the default
	TemporalityDelta
	TemporalityLowMemory
)

var temporalityNames = []string{TemporalityCumulative: "cumulative", TemporalityDelta: "delta", TemporalityLowMemory: "lowmemory"}

func (t Temporality) String() string { return enumString(temporalityNames, t, "Temporality") }

// OTLPExport is where and how one signal is sent over OTLP. Each field
// comes from the signal's own variable (OTEL_EXPORTER_OTLP_LOGS_*, _TRACES_*
// or _METRICS_*) when set, else from the shared OTEL_EXPORTER_OTLP_* one.
type OTLPExport struct {
	Protocol Protocol
	// Endpoint is, for grpc, the endpoint as given (a URL or host:port),
	// default http://localhost:4317; for http/protobuf, the full URL: a
	// signal's own endpoint as given, the shared one with /v1/logs,
	// /v1/traces or /v1/metrics appended to its path, default
	// http://localhost:4318 with that path.
	Endpoint string
	// Insecure means plaintext: true for an http:// endpoint, false for
	// https://, and OTEL_EXPORTER_OTLP_*INSECURE for a grpc host:port.
	Insecure bool
	// Headers are sent with every export; nil when none. A signal's own
	// headers replace the shared set entirely.
	Headers     map[string]string
	Compression Compression
	// Timeout bounds one export request.
	Timeout time.Duration
	// Certificate, ClientCertificate and ClientKey are PEM file paths, ""
	// when unset; they are not opened here. The client certificate and key
	// are both set or both empty.
	Certificate, ClientCertificate, ClientKey string
}

// Batch is a batch processor's settings.
type Batch struct {
	// ScheduleDelay is the longest an item waits before it is sent.
	ScheduleDelay time.Duration
	// ExportTimeout bounds one export, retries included.
	ExportTimeout time.Duration
	// MaxQueueSize is the most items waiting.
	MaxQueueSize int
	// MaxExportBatch is the most items per export, at most MaxQueueSize.
	MaxExportBatch int
}

// ResourceAttribute is one entry of OTEL_RESOURCE_ATTRIBUTES.
type ResourceAttribute struct{ Key, Value string }

// Telemetry holds the standard OTEL_* settings, resolved per the
// OpenTelemetry specification with our defaults. An empty variable counts
// as unset. Load checks them in this order: OTEL_SDK_DISABLED;
// OTEL_LOGS_EXPORTER, _TRACES_, _METRICS_; the shared OTEL_EXPORTER_OTLP_*
// variables, then those in effect for logs, traces and metrics, each time
// in the order PROTOCOL, ENDPOINT, INSECURE, HEADERS, COMPRESSION, TIMEOUT,
// CERTIFICATE, CLIENT_CERTIFICATE, CLIENT_KEY; OTEL_BLRP_*, then OTEL_BSP_*,
// each in the order SCHEDULE_DELAY, EXPORT_TIMEOUT, MAX_QUEUE_SIZE,
// MAX_EXPORT_BATCH_SIZE; OTEL_TRACES_SAMPLER, _SAMPLER_ARG;
// OTEL_METRIC_EXPORT_INTERVAL, _TIMEOUT;
// OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE;
// OTEL_EXPORTER_PROMETHEUS_PORT; OTEL_RESOURCE_ATTRIBUTES.
type Telemetry struct {
	// Disabled is OTEL_SDK_DISABLED=true: export nothing.
	Disabled bool
	// LogsExporter, TracesExporter and MetricsExporter say where each
	// signal goes; ExporterPrometheus only for metrics.
	LogsExporter, TracesExporter, MetricsExporter Exporter
	// Logs, Traces and Metrics are each signal's OTLP settings.
	Logs, Traces, Metrics OTLPExport
	// LogBatch is OTEL_BLRP_*, SpanBatch OTEL_BSP_*.
	LogBatch, SpanBatch Batch
	// Sampler and SamplerRatio (OTEL_TRACES_SAMPLER_ARG, 0 to 1, used by
	// the ratio samplers) decide which calls get a span.
	Sampler      Sampler
	SamplerRatio float64
	// MetricInterval is the time between metric exports, MetricTimeout
	// bounds one.
	MetricInterval, MetricTimeout time.Duration
	// MetricTemporality is what the OTLP metric exporter asks for.
	MetricTemporality Temporality
	// PrometheusHost and PrometheusPort are where the Prometheus exporter
	// serves its scrape endpoint.
	PrometheusHost string
	PrometheusPort int
	// ServiceName is OTEL_SERVICE_NAME, "" when unset: the resource then
	// takes service.name from ResourceAttributes, else its own default.
	ServiceName string
	// ResourceAttributes are OTEL_RESOURCE_ATTRIBUTES' entries in order,
	// values percent-decoded; a later entry for a key wins.
	ResourceAttributes []ResourceAttribute
}

// Our defaults for the standard variables, used by the parser and by
// Variables alike. They follow the specification but for the protocol
// (the specification's http/protobuf), the gRPC endpoint's scheme (a plain
// local collector needs http://) and the queue and batch sizes: the
// specification's queue of 2048 holds 40 ms of events at 50 000 calls/s,
// so a collector that pauses that long loses some, while 8192 (about 8 MiB
// of encoded records at most) rides out 160 ms; its batch of 512 means 100
// exports a second at that rate, and each export has a fixed cost (a gRPC
// call, goroutine and thread wake-ups) that came to about 0.8 µs per event
// on a 2-CPU machine; batches of 2048 cost a quarter of that.
const (
	defaultExporter           = ExporterOTLP
	defaultProtocol           = ProtocolGRPC
	defaultGRPCEndpoint       = "http://localhost:4317"
	defaultHTTPEndpoint       = "http://localhost:4318"
	defaultCompression        = CompressionNone
	defaultOTLPTimeout        = 10 * time.Second
	defaultBLRPScheduleDelay  = time.Second
	defaultBSPScheduleDelay   = 5 * time.Second
	defaultBatchExportTimeout = 30 * time.Second
	defaultMaxQueueSize       = 8192
	defaultMaxExportBatch     = 2048
	defaultSampler            = SamplerParentBasedAlwaysOn
	defaultSamplerRatio       = 1.0
	defaultMetricInterval     = 60 * time.Second
	defaultMetricTimeout      = 30 * time.Second
	defaultTemporality        = TemporalityCumulative
	defaultPrometheusHost     = "localhost"
	defaultPrometheusPort     = 9464

	// maxOTELInt is the largest count or number of milliseconds accepted.
	maxOTELInt = math.MaxInt32
)

// What some standard variables accept, phrased to follow "must be ", for
// errors and Variables alike.
var (
	signalExporters    = []Exporter{ExporterOTLP, ExporterConsole, ExporterNone}
	metricExporters    = []Exporter{ExporterOTLP, ExporterPrometheus, ExporterConsole, ExporterNone}
	boolAllowed        = "true or false (case-insensitive)"
	protocolAllowed    = orList(protocolNames) + " (case-insensitive)"
	samplerAllowed     = orList(samplerNames) + " (case-insensitive)"
	temporalityAllowed = orList(temporalityNames) + " (case-insensitive)"
	ratioAllowed       = "a number from 0 to 1"
	portAllowed        = "a port number from 1 to 65535"
	resourceAllowed    = "key=value pairs separated by commas, values percent-encoded (e.g. deployment.environment.name=prod,team=a%20b)"
	headersAllowed     = "key=value pairs separated by commas, each key an HTTP token and each value percent-encoded (e.g. api-key=abc,x-tenant=a%20b)"
	millisAllowed      = fmt.Sprintf("a whole number of milliseconds from 1 to %d", maxOTELInt)
	countAllowed       = fmt.Sprintf("a whole number from 1 to %d", maxOTELInt)
	compressionAllowed = orList(compressionNames) + " (case-insensitive)"
)

func exportersAllowed(es []Exporter) string {
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.String()
	}
	return orList(names) + " (case-insensitive)"
}

// loadTelemetry resolves Telemetry from vars, reporting the first problem
// in the order Telemetry documents.
func loadTelemetry(vars map[string]string) (Telemetry, error) {
	e := otelEnv(vars)
	t := Telemetry{
		SamplerRatio:   defaultSamplerRatio,
		PrometheusHost: defaultPrometheusHost,
		PrometheusPort: defaultPrometheusPort,
	}
	var err error
	if raw, ok := e.get("OTEL_SDK_DISABLED"); ok {
		if t.Disabled, err = parseBool(raw); err != nil {
			return Telemetry{}, &Error{Var: "OTEL_SDK_DISABLED", Value: raw, Allowed: "must be " + boolAllowed}
		}
	}
	if t.LogsExporter, err = e.exporter("OTEL_LOGS_EXPORTER", signalExporters); err != nil {
		return Telemetry{}, err
	}
	if t.TracesExporter, err = e.exporter("OTEL_TRACES_EXPORTER", signalExporters); err != nil {
		return Telemetry{}, err
	}
	if t.MetricsExporter, err = e.exporter("OTEL_METRICS_EXPORTER", metricExporters); err != nil {
		return Telemetry{}, err
	}

	// The shared variables are checked even where every signal overrides
	// them: a bad value is a mistake whatever its effect.
	if _, err = e.export(""); err != nil {
		return Telemetry{}, err
	}
	for _, s := range []struct {
		signal string
		o      *OTLPExport
	}{{"LOGS", &t.Logs}, {"TRACES", &t.Traces}, {"METRICS", &t.Metrics}} {
		if *s.o, err = e.export(s.signal); err != nil {
			return Telemetry{}, err
		}
	}

	if t.LogBatch, err = e.batch("OTEL_BLRP_", defaultBLRPScheduleDelay); err != nil {
		return Telemetry{}, err
	}
	if t.SpanBatch, err = e.batch("OTEL_BSP_", defaultBSPScheduleDelay); err != nil {
		return Telemetry{}, err
	}

	if t.Sampler, err = oneOf(e, "OTEL_TRACES_SAMPLER", samplerNames, defaultSampler); err != nil {
		return Telemetry{}, err
	}
	if raw, ok := e.get("OTEL_TRACES_SAMPLER_ARG"); ok {
		r, perr := strconv.ParseFloat(raw, 64)
		if perr != nil || !(r >= 0 && r <= 1) { // NaN fails too
			return Telemetry{}, &Error{Var: "OTEL_TRACES_SAMPLER_ARG", Value: raw, Allowed: "must be " + ratioAllowed + " (e.g. 0.25)"}
		}
		t.SamplerRatio = r
	}

	if t.MetricInterval, err = e.millis("OTEL_METRIC_EXPORT_INTERVAL", defaultMetricInterval); err != nil {
		return Telemetry{}, err
	}
	if t.MetricTimeout, err = e.millis("OTEL_METRIC_EXPORT_TIMEOUT", defaultMetricTimeout); err != nil {
		return Telemetry{}, err
	}
	if t.MetricTemporality, err = oneOf(e, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", temporalityNames, defaultTemporality); err != nil {
		return Telemetry{}, err
	}
	if raw, ok := e.get("OTEL_EXPORTER_PROMETHEUS_HOST"); ok {
		t.PrometheusHost = raw
	}
	if raw, ok := e.get("OTEL_EXPORTER_PROMETHEUS_PORT"); ok {
		if !validPort(raw) {
			return Telemetry{}, &Error{Var: "OTEL_EXPORTER_PROMETHEUS_PORT", Value: raw,
				Allowed: fmt.Sprintf("must be %s (e.g. %d)", portAllowed, defaultPrometheusPort)}
		}
		t.PrometheusPort, _ = strconv.Atoi(raw)
	}

	t.ServiceName = vars["OTEL_SERVICE_NAME"]
	if raw, ok := e.get("OTEL_RESOURCE_ATTRIBUTES"); ok {
		if t.ResourceAttributes, err = parseResource(raw); err != nil {
			return Telemetry{}, err
		}
	}
	return t, nil
}

// parseResource parses OTEL_RESOURCE_ATTRIBUTES as the SDK does: keys and
// values trimmed, values percent-decoded. Unlike the SDK, which keeps going
// without the bad entries, a malformed list is an error: it is a mistake in
// the deployment that would otherwise go unnoticed.
func parseResource(raw string) ([]ResourceAttribute, error) {
	const name = "OTEL_RESOURCE_ATTRIBUTES"
	var out []ResourceAttribute
	for i, member := range strings.Split(raw, ",") {
		fail := func(why string) error {
			return &Error{Var: name, Value: raw, Allowed: fmt.Sprintf("must be %s; entry %d %s", resourceAllowed, i+1, why)}
		}
		k, v, found := strings.Cut(member, "=")
		key := strings.TrimSpace(k)
		switch {
		case !found && strings.TrimSpace(member) == "":
			return nil, fail("is empty")
		case !found:
			return nil, fail(fmt.Sprintf("(%q) has no =", member))
		case key == "":
			return nil, fail("has an empty key")
		}
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fail(fmt.Sprintf("(key %q) has a bad percent-escape in its value", key))
		}
		out = append(out, ResourceAttribute{Key: key, Value: val})
	}
	return out, nil
}

// parseBool accepts true and false in any case, as the specification asks
// for boolean variables; strconv.ParseBool would also take "1", "t" and so
// on, but not "tRUE".
func parseBool(s string) (bool, error) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, nil
	case strings.EqualFold(s, "false"):
		return false, nil
	}
	return false, fmt.Errorf("parse boolean %q", s)
}
