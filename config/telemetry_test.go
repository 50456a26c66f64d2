package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func telemetryDefaults() Telemetry {
	grpc := OTLPExport{
		Protocol: ProtocolGRPC, Endpoint: "http://localhost:4317", Insecure: true,
		Compression: CompressionNone, Timeout: 10 * time.Second,
	}
	return Telemetry{
		LogsExporter:      ExporterOTLP,
		TracesExporter:    ExporterOTLP,
		MetricsExporter:   ExporterOTLP,
		Logs:              grpc,
		Traces:            grpc,
		Metrics:           grpc,
		LogBatch:          Batch{ScheduleDelay: time.Second, ExportTimeout: 30 * time.Second, MaxQueueSize: 8192, MaxExportBatch: 2048},
		SpanBatch:         Batch{ScheduleDelay: 5 * time.Second, ExportTimeout: 30 * time.Second, MaxQueueSize: 8192, MaxExportBatch: 2048},
		Sampler:           SamplerParentBasedAlwaysOn,
		SamplerRatio:      1,
		MetricInterval:    60 * time.Second,
		MetricTimeout:     30 * time.Second,
		MetricTemporality: TemporalityCumulative,
		PrometheusHost:    "localhost",
		PrometheusPort:    9464,
	}
}

func TestTelemetryEnumStrings(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{ExporterOTLP.String(), "otlp"},
		{ExporterConsole.String(), "console"},
		{ExporterNone.String(), "none"},
		{ExporterPrometheus.String(), "prometheus"},
		{Exporter(9).String(), "Exporter(9)"},
		{ProtocolGRPC.String(), "grpc"},
		{ProtocolHTTPProtobuf.String(), "http/protobuf"},
		{CompressionNone.String(), "none"},
		{CompressionGzip.String(), "gzip"},
		{SamplerAlwaysOn.String(), "always_on"},
		{SamplerAlwaysOff.String(), "always_off"},
		{SamplerTraceIDRatio.String(), "traceidratio"},
		{SamplerParentBasedAlwaysOn.String(), "parentbased_always_on"},
		{SamplerParentBasedAlwaysOff.String(), "parentbased_always_off"},
		{SamplerParentBasedTraceIDRatio.String(), "parentbased_traceidratio"},
		{TemporalityCumulative.String(), "cumulative"},
		{TemporalityDelta.String(), "delta"},
		{TemporalityLowMemory.String(), "lowmemory"},
	} {
		if tt.got != tt.want {
			t.Errorf("String() = %q, want %q", tt.got, tt.want)
		}
	}
}

func TestTelemetryGood(t *testing.T) {
	all := func(f func(o *OTLPExport)) func(*Telemetry) {
		return func(tel *Telemetry) { f(&tel.Logs); f(&tel.Traces); f(&tel.Metrics) }
	}
	httpAll := func(logs, traces, metrics string) func(*Telemetry) {
		return func(tel *Telemetry) {
			for _, s := range []struct {
				o        *OTLPExport
				endpoint string
			}{{&tel.Logs, logs}, {&tel.Traces, traces}, {&tel.Metrics, metrics}} {
				s.o.Protocol, s.o.Endpoint, s.o.Insecure = ProtocolHTTPProtobuf, s.endpoint, strings.HasPrefix(s.endpoint, "http://")
			}
		}
	}
	tests := []struct {
		name    string
		environ []string
		want    func(*Telemetry)
	}{

		{"logs console", []string{"OTEL_LOGS_EXPORTER=console"}, func(t *Telemetry) { t.LogsExporter = ExporterConsole }},
		{"logs NONE", []string{"OTEL_LOGS_EXPORTER=NONE"}, func(t *Telemetry) { t.LogsExporter = ExporterNone }},
		{"logs otlp", []string{"OTEL_LOGS_EXPORTER=otlp"}, func(t *Telemetry) { t.LogsExporter = ExporterOTLP }},
		{"traces none", []string{"OTEL_TRACES_EXPORTER=none"}, func(t *Telemetry) { t.TracesExporter = ExporterNone }},
		{"traces Console", []string{"OTEL_TRACES_EXPORTER=Console"}, func(t *Telemetry) { t.TracesExporter = ExporterConsole }},
		{"metrics prometheus", []string{"OTEL_METRICS_EXPORTER=prometheus"}, func(t *Telemetry) { t.MetricsExporter = ExporterPrometheus }},
		{"metrics console", []string{"OTEL_METRICS_EXPORTER=console"}, func(t *Telemetry) { t.MetricsExporter = ExporterConsole }},
		{"metrics none", []string{"OTEL_METRICS_EXPORTER=none"}, func(t *Telemetry) { t.MetricsExporter = ExporterNone }},

		// Protocol and the endpoint defaults that follow from it.
		{"grpc", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc"}, func(*Telemetry) {}},
		{"GRPC", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=GRPC"}, func(*Telemetry) {}},
		{"http/protobuf: its default endpoints", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"},
			httpAll("http://localhost:4318/v1/logs", "http://localhost:4318/v1/traces", "http://localhost:4318/v1/metrics")},
		{"HTTP/Protobuf", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=HTTP/Protobuf"},
			httpAll("http://localhost:4318/v1/logs", "http://localhost:4318/v1/traces", "http://localhost:4318/v1/metrics")},
		{"logs protocol alone", []string{"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=http/protobuf"}, func(t *Telemetry) {
			t.Logs.Protocol, t.Logs.Endpoint = ProtocolHTTPProtobuf, "http://localhost:4318/v1/logs"
		}},
		{"traces protocol wins over shared", []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc", "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"}, func(t *Telemetry) {
			t.Logs.Protocol, t.Logs.Endpoint = ProtocolHTTPProtobuf, "http://localhost:4318/v1/logs"
			t.Metrics.Protocol, t.Metrics.Endpoint = ProtocolHTTPProtobuf, "http://localhost:4318/v1/metrics"
		}},

		// gRPC endpoints: as given; the scheme decides TLS, else INSECURE.
		{"grpc https", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=https://collector:4317"},
			all(func(o *OTLPExport) { o.Endpoint, o.Insecure = "https://collector:4317", false })},
		{"grpc http", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317"},
			all(func(o *OTLPExport) { o.Endpoint, o.Insecure = "http://collector:4317", true })},
		{"grpc https without port", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=https://ingest.example.com"},
			all(func(o *OTLPExport) { o.Endpoint, o.Insecure = "https://ingest.example.com", false })},
		{"grpc HTTPS scheme", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=HTTPS://collector:443"},
			all(func(o *OTLPExport) { o.Endpoint, o.Insecure = "HTTPS://collector:443", false })},
		{"grpc host:port is TLS", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4317"},
			all(func(o *OTLPExport) { o.Endpoint, o.Insecure = "collector:4317", false })},
		{"grpc host:port insecure", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4317", "OTEL_EXPORTER_OTLP_INSECURE=true"},
			all(func(o *OTLPExport) { o.Endpoint, o.Insecure = "collector:4317", true })},
		{"grpc host:port INSECURE=TRUE", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4317", "OTEL_EXPORTER_OTLP_INSECURE=TRUE"},
			all(func(o *OTLPExport) { o.Endpoint, o.Insecure = "collector:4317", true })},
		{"grpc host:port INSECURE=False", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4317", "OTEL_EXPORTER_OTLP_INSECURE=False"},
			all(func(o *OTLPExport) { o.Endpoint, o.Insecure = "collector:4317", false })},
		{"grpc IPv6 host:port", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=[::1]:4317"},
			all(func(o *OTLPExport) { o.Endpoint = "[::1]:4317"; o.Insecure = false })},
		{"grpc IPv6 URL", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://[::1]:4317"},
			all(func(o *OTLPExport) { o.Endpoint = "http://[::1]:4317" })},
		{"grpc https ignores INSECURE", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=https://collector:4317", "OTEL_EXPORTER_OTLP_INSECURE=true"},
			all(func(o *OTLPExport) { o.Endpoint, o.Insecure = "https://collector:4317", false })},
		{"default endpoint ignores INSECURE=false", []string{"OTEL_EXPORTER_OTLP_INSECURE=false"}, func(*Telemetry) {}},
		{"logs endpoint wins", []string{"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=https://logs:4317", "OTEL_EXPORTER_OTLP_ENDPOINT=http://shared:4317"}, func(t *Telemetry) {
			t.Logs.Endpoint, t.Logs.Insecure = "https://logs:4317", false
			t.Traces.Endpoint, t.Metrics.Endpoint = "http://shared:4317", "http://shared:4317"
		}},
		{"traces endpoint alone", []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=traces:4317", "OTEL_EXPORTER_OTLP_TRACES_INSECURE=true"}, func(t *Telemetry) {
			t.Traces.Endpoint = "traces:4317"
		}},
		{"signal INSECURE wins", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=c:4317", "OTEL_EXPORTER_OTLP_INSECURE=true", "OTEL_EXPORTER_OTLP_LOGS_INSECURE=false"}, func(t *Telemetry) {
			t.Logs.Endpoint, t.Logs.Insecure = "c:4317", false
			t.Traces.Endpoint, t.Traces.Insecure = "c:4317", true
			t.Metrics.Endpoint, t.Metrics.Insecure = "c:4317", true
		}},
		{"empty signal endpoint is unset", []string{"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=", "OTEL_EXPORTER_OTLP_ENDPOINT=https://shared:4317"},
			all(func(o *OTLPExport) { o.Endpoint, o.Insecure = "https://shared:4317", false })},

		// http/protobuf: the shared endpoint is a base URL, a signal's own is used as is.
		{"http base", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318"},
			httpAll("http://collector:4318/v1/logs", "http://collector:4318/v1/traces", "http://collector:4318/v1/metrics")},
		{"http base with trailing slash", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318/"},
			httpAll("http://collector:4318/v1/logs", "http://collector:4318/v1/traces", "http://collector:4318/v1/metrics")},
		{"http base with path", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=https://example.com/otlp"},
			httpAll("https://example.com/otlp/v1/logs", "https://example.com/otlp/v1/traces", "https://example.com/otlp/v1/metrics")},
		{"http base with path and trailing slash", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=https://example.com/otlp/"},
			httpAll("https://example.com/otlp/v1/logs", "https://example.com/otlp/v1/traces", "https://example.com/otlp/v1/metrics")},
		{"http base with query", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=https://example.com/p?tenant=a"},
			httpAll("https://example.com/p/v1/logs?tenant=a", "https://example.com/p/v1/traces?tenant=a", "https://example.com/p/v1/metrics?tenant=a")},
		{"http base with escaped path", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=https://example.com/a%2Fb/"},
			httpAll("https://example.com/a%2Fb/v1/logs", "https://example.com/a%2Fb/v1/traces", "https://example.com/a%2Fb/v1/metrics")},
		{"http signal endpoint as is", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=https://logs.example.com/ingest", "OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318"},
			httpAll("https://logs.example.com/ingest", "http://c:4318/v1/traces", "http://c:4318/v1/metrics")},
		{"http signal endpoint without path as is", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://t:4318", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=http://l:4318/"},
			httpAll("http://l:4318/", "http://t:4318", "http://localhost:4318/v1/metrics")},
		{"http for logs only, shared endpoint", []string{"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318"}, func(t *Telemetry) {
			t.Logs.Protocol, t.Logs.Endpoint = ProtocolHTTPProtobuf, "http://c:4318/v1/logs"
			t.Traces.Endpoint, t.Metrics.Endpoint = "http://c:4318", "http://c:4318"
		}},
		{"http ignores INSECURE", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=https://c", "OTEL_EXPORTER_OTLP_INSECURE=true"},
			httpAll("https://c/v1/logs", "https://c/v1/traces", "https://c/v1/metrics")},

		// Headers.
		{"one header", []string{"OTEL_EXPORTER_OTLP_HEADERS=api-key=abc"},
			all(func(o *OTLPExport) { o.Headers = map[string]string{"api-key": "abc"} })},
		{"headers with spaces and percent-encoding", []string{"OTEL_EXPORTER_OTLP_HEADERS= api-key = secret%20value , X-Tenant=t%2C1%3D2 ,authorization=Basic%20dXNlcjpwYXNz"},
			all(func(o *OTLPExport) {
				o.Headers = map[string]string{"api-key": "secret value", "X-Tenant": "t,1=2", "authorization": "Basic dXNlcjpwYXNz"}
			})},
		{"header plus stays plus", []string{"OTEL_EXPORTER_OTLP_HEADERS=k=a+b"},
			all(func(o *OTLPExport) { o.Headers = map[string]string{"k": "a+b"} })},
		{"header UTF-8", []string{"OTEL_EXPORTER_OTLP_HEADERS=k=%C3%A9t%C3%A9"},
			all(func(o *OTLPExport) { o.Headers = map[string]string{"k": "été"} })},
		{"header empty value", []string{"OTEL_EXPORTER_OTLP_HEADERS=k="},
			all(func(o *OTLPExport) { o.Headers = map[string]string{"k": ""} })},
		{"header value with =", []string{"OTEL_EXPORTER_OTLP_HEADERS=k=a=b"},
			all(func(o *OTLPExport) { o.Headers = map[string]string{"k": "a=b"} })},
		{"header repeated: last wins", []string{"OTEL_EXPORTER_OTLP_HEADERS=k=1,k=2"},
			all(func(o *OTLPExport) { o.Headers = map[string]string{"k": "2"} })},
		{"signal headers replace shared", []string{"OTEL_EXPORTER_OTLP_HEADERS=a=1,b=2", "OTEL_EXPORTER_OTLP_LOGS_HEADERS=c=3"}, func(t *Telemetry) {
			t.Logs.Headers = map[string]string{"c": "3"}
			t.Traces.Headers = map[string]string{"a": "1", "b": "2"}
			t.Metrics.Headers = map[string]string{"a": "1", "b": "2"}
		}},
		{"traces headers alone", []string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS=x=y"}, func(t *Telemetry) {
			t.Traces.Headers = map[string]string{"x": "y"}
		}},

		// Compression and timeout.
		{"gzip", []string{"OTEL_EXPORTER_OTLP_COMPRESSION=gzip"}, all(func(o *OTLPExport) { o.Compression = CompressionGzip })},
		{"GZIP", []string{"OTEL_EXPORTER_OTLP_COMPRESSION=GZIP"}, all(func(o *OTLPExport) { o.Compression = CompressionGzip })},
		{"none", []string{"OTEL_EXPORTER_OTLP_COMPRESSION=none"}, func(*Telemetry) {}},
		{"logs compression wins", []string{"OTEL_EXPORTER_OTLP_COMPRESSION=gzip", "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION=none"},
			func(t *Telemetry) { t.Traces.Compression, t.Metrics.Compression = CompressionGzip, CompressionGzip }},
		{"traces compression alone", []string{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=gzip"},
			func(t *Telemetry) { t.Traces.Compression = CompressionGzip }},
		{"timeout 1ms", []string{"OTEL_EXPORTER_OTLP_TIMEOUT=1"}, all(func(o *OTLPExport) { o.Timeout = time.Millisecond })},
		{"timeout 2500ms", []string{"OTEL_EXPORTER_OTLP_TIMEOUT=2500"}, all(func(o *OTLPExport) { o.Timeout = 2500 * time.Millisecond })},
		{"timeout max", []string{"OTEL_EXPORTER_OTLP_TIMEOUT=2147483647"}, all(func(o *OTLPExport) { o.Timeout = 2147483647 * time.Millisecond })},
		{"timeout leading zero", []string{"OTEL_EXPORTER_OTLP_TIMEOUT=0500"}, all(func(o *OTLPExport) { o.Timeout = 500 * time.Millisecond })},
		{"traces timeout wins", []string{"OTEL_EXPORTER_OTLP_TIMEOUT=2000", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=3000"}, func(t *Telemetry) {
			t.Logs.Timeout, t.Traces.Timeout, t.Metrics.Timeout = 2*time.Second, 3*time.Second, 2*time.Second
		}},
		{"logs timeout alone", []string{"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT=500"}, func(t *Telemetry) { t.Logs.Timeout = 500 * time.Millisecond }},

		// Certificates: paths only.
		{"CA certificate", []string{"OTEL_EXPORTER_OTLP_CERTIFICATE=/etc/ca.pem"},
			all(func(o *OTLPExport) { o.Certificate = "/etc/ca.pem" })},
		{"client certificate and key", []string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=/etc/c.pem", "OTEL_EXPORTER_OTLP_CLIENT_KEY=/etc/k.pem"},
			all(func(o *OTLPExport) { o.ClientCertificate, o.ClientKey = "/etc/c.pem", "/etc/k.pem" })},
		{"signal certificates win", []string{
			"OTEL_EXPORTER_OTLP_CERTIFICATE=ca.pem", "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE=logs-ca.pem",
			"OTEL_EXPORTER_OTLP_CLIENT_KEY=k.pem", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE=tc.pem", "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE=lc.pem",
			"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=c.pem", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY=tk.pem",
		}, func(t *Telemetry) {
			t.Logs.Certificate, t.Logs.ClientCertificate, t.Logs.ClientKey = "logs-ca.pem", "lc.pem", "k.pem"
			t.Traces.Certificate, t.Traces.ClientCertificate, t.Traces.ClientKey = "ca.pem", "tc.pem", "tk.pem"
			t.Metrics.Certificate, t.Metrics.ClientCertificate, t.Metrics.ClientKey = "ca.pem", "c.pem", "k.pem"
		}},

		// Batch processors.
		{"BLRP schedule delay", []string{"OTEL_BLRP_SCHEDULE_DELAY=200"}, func(t *Telemetry) { t.LogBatch.ScheduleDelay = 200 * time.Millisecond }},
		{"BLRP export timeout", []string{"OTEL_BLRP_EXPORT_TIMEOUT=1000"}, func(t *Telemetry) { t.LogBatch.ExportTimeout = time.Second }},
		{"BLRP queue size", []string{"OTEL_BLRP_MAX_QUEUE_SIZE=8192"}, func(t *Telemetry) { t.LogBatch.MaxQueueSize = 8192 }},
		{"BLRP small queue caps the default batch", []string{"OTEL_BLRP_MAX_QUEUE_SIZE=100"}, func(t *Telemetry) {
			t.LogBatch.MaxQueueSize, t.LogBatch.MaxExportBatch = 100, 100
		}},
		{"BLRP batch size", []string{"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE=1"}, func(t *Telemetry) { t.LogBatch.MaxExportBatch = 1 }},
		{"BLRP batch equal to queue", []string{"OTEL_BLRP_MAX_QUEUE_SIZE=1000", "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE=1000"}, func(t *Telemetry) {
			t.LogBatch.MaxQueueSize, t.LogBatch.MaxExportBatch = 1000, 1000
		}},
		{"BLRP batch equal to default queue", []string{"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE=8192"}, func(t *Telemetry) { t.LogBatch.MaxExportBatch = 8192 }},
		{"BSP schedule delay", []string{"OTEL_BSP_SCHEDULE_DELAY=100"}, func(t *Telemetry) { t.SpanBatch.ScheduleDelay = 100 * time.Millisecond }},
		{"BSP export timeout", []string{"OTEL_BSP_EXPORT_TIMEOUT=5000"}, func(t *Telemetry) { t.SpanBatch.ExportTimeout = 5 * time.Second }},
		{"BSP queue size", []string{"OTEL_BSP_MAX_QUEUE_SIZE=4096"}, func(t *Telemetry) { t.SpanBatch.MaxQueueSize = 4096 }},
		{"BSP batch size", []string{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE=64"}, func(t *Telemetry) { t.SpanBatch.MaxExportBatch = 64 }},
		{"BSP small queue caps the default batch", []string{"OTEL_BSP_MAX_QUEUE_SIZE=10"}, func(t *Telemetry) {
			t.SpanBatch.MaxQueueSize, t.SpanBatch.MaxExportBatch = 10, 10
		}},

		// Sampler.
		{"always_on", []string{"OTEL_TRACES_SAMPLER=always_on"}, func(t *Telemetry) { t.Sampler = SamplerAlwaysOn }},
		{"always_off", []string{"OTEL_TRACES_SAMPLER=always_off"}, func(t *Telemetry) { t.Sampler = SamplerAlwaysOff }},
		{"traceidratio", []string{"OTEL_TRACES_SAMPLER=traceidratio"}, func(t *Telemetry) { t.Sampler = SamplerTraceIDRatio }},
		{"parentbased_always_on", []string{"OTEL_TRACES_SAMPLER=parentbased_always_on"}, func(*Telemetry) {}},
		{"parentbased_always_off", []string{"OTEL_TRACES_SAMPLER=parentbased_always_off"}, func(t *Telemetry) { t.Sampler = SamplerParentBasedAlwaysOff }},
		{"ParentBased_TraceIdRatio", []string{"OTEL_TRACES_SAMPLER=ParentBased_TraceIdRatio"}, func(t *Telemetry) { t.Sampler = SamplerParentBasedTraceIDRatio }},
		{"ratio 0.25", []string{"OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=0.25"}, func(t *Telemetry) {
			t.Sampler, t.SamplerRatio = SamplerTraceIDRatio, 0.25
		}},
		{"ratio 0", []string{"OTEL_TRACES_SAMPLER_ARG=0"}, func(t *Telemetry) { t.SamplerRatio = 0 }},
		{"ratio 1", []string{"OTEL_TRACES_SAMPLER_ARG=1"}, func(*Telemetry) {}},
		{"ratio .5", []string{"OTEL_TRACES_SAMPLER_ARG=.5"}, func(t *Telemetry) { t.SamplerRatio = 0.5 }},
		{"ratio 1e-3", []string{"OTEL_TRACES_SAMPLER_ARG=1e-3"}, func(t *Telemetry) { t.SamplerRatio = 0.001 }},

		{"last entry wins", []string{"OTEL_EXPORTER_OTLP_COMPRESSION=zstd", "OTEL_EXPORTER_OTLP_COMPRESSION=gzip"},
			all(func(o *OTLPExport) { o.Compression = CompressionGzip })},

		// Metrics over OTLP, and the other metric settings.
		{"metrics endpoint alone", []string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=https://m:4317"}, func(t *Telemetry) {
			t.Metrics.Endpoint, t.Metrics.Insecure = "https://m:4317", false
		}},
		{"metrics over http, own endpoint as is", []string{"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=http://m:4318/x"}, func(t *Telemetry) {
			t.Metrics.Protocol, t.Metrics.Endpoint = ProtocolHTTPProtobuf, "http://m:4318/x"
		}},
		{"metrics headers, compression, timeout", []string{"OTEL_EXPORTER_OTLP_METRICS_HEADERS=k=v", "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION=Gzip", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT=100"}, func(t *Telemetry) {
			t.Metrics.Headers, t.Metrics.Compression, t.Metrics.Timeout = map[string]string{"k": "v"}, CompressionGzip, 100*time.Millisecond
		}},
		{"metric interval", []string{"OTEL_METRIC_EXPORT_INTERVAL=5000"}, func(t *Telemetry) { t.MetricInterval = 5 * time.Second }},
		{"metric timeout", []string{"OTEL_METRIC_EXPORT_TIMEOUT=1"}, func(t *Telemetry) { t.MetricTimeout = time.Millisecond }},
		{"temporality delta", []string{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta"}, func(t *Telemetry) { t.MetricTemporality = TemporalityDelta }},
		{"temporality LowMemory", []string{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=LowMemory"}, func(t *Telemetry) { t.MetricTemporality = TemporalityLowMemory }},
		{"temporality Cumulative", []string{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=Cumulative"}, func(*Telemetry) {}},
		{"prometheus host and port", []string{"OTEL_METRICS_EXPORTER=Prometheus", "OTEL_EXPORTER_PROMETHEUS_HOST=0.0.0.0", "OTEL_EXPORTER_PROMETHEUS_PORT=9100"}, func(t *Telemetry) {
			t.MetricsExporter, t.PrometheusHost, t.PrometheusPort = ExporterPrometheus, "0.0.0.0", 9100
		}},
		{"prometheus port bounds", []string{"OTEL_EXPORTER_PROMETHEUS_PORT=65535"}, func(t *Telemetry) { t.PrometheusPort = 65535 }},

		// SDK switch and resource.
		{"disabled", []string{"OTEL_SDK_DISABLED=true"}, func(t *Telemetry) { t.Disabled = true }},
		{"disabled TRUE", []string{"OTEL_SDK_DISABLED=TRUE"}, func(t *Telemetry) { t.Disabled = true }},
		{"disabled tRuE", []string{"OTEL_SDK_DISABLED=tRuE"}, func(t *Telemetry) { t.Disabled = true }},
		{"disabled False", []string{"OTEL_SDK_DISABLED=False"}, func(*Telemetry) {}},
		{"service name", []string{"OTEL_SERVICE_NAME=node-agent"}, func(t *Telemetry) { t.ServiceName = "node-agent" }},
		{"service name as is", []string{"OTEL_SERVICE_NAME= a b "}, func(t *Telemetry) { t.ServiceName = " a b " }},
		{"resource attributes in order, decoded and trimmed", []string{"OTEL_RESOURCE_ATTRIBUTES=z=1, team = a%20b ,a=%C3%A9,k=x=y,k=2,e="}, func(t *Telemetry) {
			t.ResourceAttributes = []ResourceAttribute{{"z", "1"}, {"team", "a b"}, {"a", "é"}, {"k", "x=y"}, {"k", "2"}, {"e", ""}}
		}},
		{"resource service.name", []string{"OTEL_RESOURCE_ATTRIBUTES=service.name=x"}, func(t *Telemetry) {
			t.ResourceAttributes = []ResourceAttribute{{"service.name", "x"}}
		}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		if seen[tt.name] {
			t.Fatalf("test %q twice", tt.name)
		}
		seen[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			got := load(t, tt.environ...).Telemetry
			want := telemetryDefaults()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Load(%q) =\n%+v, want\n%+v", tt.environ, got, want)
			}
		})
	}
}

func TestTelemetryBad(t *testing.T) {
	const (
		exporters    = "must be otlp, console or none (case-insensitive)"
		metrics      = "must be otlp, prometheus, console or none (case-insensitive)"
		protocol     = "must be grpc or http/protobuf (case-insensitive)"
		grpcEndpoint = "with protocol grpc (the default), must be host:port or an http:// (plaintext) or https:// (TLS) URL with a host and no user:password (e.g. http://collector:4317)"
		httpEndpoint = "with protocol http/protobuf (OTEL_EXPORTER_OTLP_PROTOCOL), must be an http:// (plaintext) or https:// (TLS) URL with a host and no user:password (e.g. http://collector:4318)"
		boolean      = "must be true or false (case-insensitive)"
		compression  = "must be none or gzip (case-insensitive)"
		timeout      = "must be a whole number of milliseconds from 1 to 2147483647 (e.g. 10000)"
		sampler      = "must be always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio (case-insensitive)"
		ratio        = "must be a number from 0 to 1 (e.g. 0.25)"
		temporality  = "must be cumulative, delta or lowmemory (case-insensitive)"
		port         = "must be a port number from 1 to 65535 (e.g. 9464)"
		httpProto    = "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
	)
	headers := func(entry string) string {
		return "must be key=value pairs separated by commas, each key an HTTP token and each value percent-encoded (e.g. api-key=abc,x-tenant=a%20b); entry " +
			entry + " (values not shown)"
	}
	resource := func(entry string) string {
		return "must be key=value pairs separated by commas, values percent-encoded (e.g. deployment.environment.name=prod,team=a%20b); entry " + entry
	}
	millis := func(example string) string {
		return "must be a whole number of milliseconds from 1 to 2147483647 (e.g. " + example + ")"
	}
	count := func(example string) string {
		return "must be a whole number from 1 to 2147483647 (e.g. " + example + ")"
	}

	tests := []struct {
		environ []string
		varName string // want Error.Var
		value   string // want Error.Value
		allowed string // want Error.Allowed
	}{
		{[]string{"OTEL_SDK_DISABLED=1"}, "OTEL_SDK_DISABLED", "1", boolean},
		{[]string{"OTEL_SDK_DISABLED=0"}, "OTEL_SDK_DISABLED", "0", boolean},
		{[]string{"OTEL_SDK_DISABLED=yes"}, "OTEL_SDK_DISABLED", "yes", boolean},
		{[]string{"OTEL_SDK_DISABLED=t"}, "OTEL_SDK_DISABLED", "t", boolean},
		{[]string{"OTEL_SDK_DISABLED= true"}, "OTEL_SDK_DISABLED", " true", boolean},

		{[]string{"OTEL_LOGS_EXPORTER=jaeger"}, "OTEL_LOGS_EXPORTER", "jaeger", exporters},
		{[]string{"OTEL_LOGS_EXPORTER=logging"}, "OTEL_LOGS_EXPORTER", "logging", exporters},
		{[]string{"OTEL_LOGS_EXPORTER=prometheus"}, "OTEL_LOGS_EXPORTER", "prometheus", exporters},
		{[]string{"OTEL_LOGS_EXPORTER=otlp,console"}, "OTEL_LOGS_EXPORTER", "otlp,console", exporters + "; one value, not a list"},
		{[]string{"OTEL_TRACES_EXPORTER=zipkin"}, "OTEL_TRACES_EXPORTER", "zipkin", exporters},
		{[]string{"OTEL_TRACES_EXPORTER= otlp"}, "OTEL_TRACES_EXPORTER", " otlp", exporters},
		{[]string{"OTEL_TRACES_EXPORTER=prometheus"}, "OTEL_TRACES_EXPORTER", "prometheus", exporters},
		{[]string{"OTEL_METRICS_EXPORTER=otlp "}, "OTEL_METRICS_EXPORTER", "otlp ", metrics},
		{[]string{"OTEL_METRICS_EXPORTER=statsd"}, "OTEL_METRICS_EXPORTER", "statsd", metrics},
		{[]string{"OTEL_METRICS_EXPORTER=prometheus,otlp"}, "OTEL_METRICS_EXPORTER", "prometheus,otlp", metrics + "; one value, not a list"},

		{[]string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", protocol + "; http/json is not supported"},
		{[]string{"OTEL_EXPORTER_OTLP_PROTOCOL=http"}, "OTEL_EXPORTER_OTLP_PROTOCOL", "http", protocol},
		{[]string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc "}, "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc ", protocol},
		{[]string{"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=h2"}, "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "h2", protocol},
		{[]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=HTTP/JSON"}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "HTTP/JSON", protocol + "; http/json is not supported"},
		{[]string{"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=udp"}, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "udp", protocol},

		// gRPC endpoints.
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "collector", grpcEndpoint},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:0"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "collector:0", grpcEndpoint},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:65536"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "collector:65536", grpcEndpoint},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:otlp"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "collector:otlp", grpcEndpoint},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT", ":4317", grpcEndpoint},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4317/v1/logs"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317/v1/logs", grpcEndpoint},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=ftp://collector:21"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector:21", grpcEndpoint},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=unix:///run/otel.sock"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "unix:///run/otel.sock", grpcEndpoint},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=dns:///collector:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "dns:///collector:4317", grpcEndpoint},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://", grpcEndpoint},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://:4317", grpcEndpoint},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:", grpcEndpoint},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:99999"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:99999", grpcEndpoint},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317:1"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317:1", grpcEndpoint},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://col lector:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://col lector:4317", grpcEndpoint},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http:collector"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "http:collector", grpcEndpoint},
		// Credentials in the URL are masked, and refused.
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=https://user:hunter2@collector:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "https://***@collector:4317", grpcEndpoint},
		{[]string{"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=bad endpoint"}, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "bad endpoint", grpcEndpoint},
		{[]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=localhost"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "localhost", grpcEndpoint},
		{[]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=http://u:p@m:4317"}, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://***@m:4317", grpcEndpoint},
		{
			[]string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "OTEL_EXPORTER_OTLP_ENDPOINT=collector"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "collector",
			strings.Replace(grpcEndpoint, "(the default)", "(OTEL_EXPORTER_OTLP_PROTOCOL)", 1),
		},

		// http/protobuf endpoints.
		{[]string{httpProto, "OTEL_EXPORTER_OTLP_ENDPOINT=collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", httpEndpoint},
		{[]string{httpProto, "OTEL_EXPORTER_OTLP_ENDPOINT=localhost:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318", httpEndpoint},
		{[]string{httpProto, "OTEL_EXPORTER_OTLP_ENDPOINT=/v1/logs"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "/v1/logs", httpEndpoint},
		{[]string{httpProto, "OTEL_EXPORTER_OTLP_ENDPOINT=grpc://collector:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "grpc://collector:4317", httpEndpoint},
		{[]string{httpProto, "OTEL_EXPORTER_OTLP_ENDPOINT=http://%zz"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://%zz", httpEndpoint},
		{[]string{httpProto, "OTEL_EXPORTER_OTLP_ENDPOINT=https://token@collector"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "https://***@collector", httpEndpoint},
		{[]string{httpProto, "OTEL_EXPORTER_OTLP_ENDPOINT=//user:secret@collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "//***@collector:4318", httpEndpoint},
		{
			[]string{"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=logs:4318"}, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "logs:4318",
			"with protocol http/protobuf (OTEL_EXPORTER_OTLP_LOGS_PROTOCOL), must be an http:// (plaintext) or https:// (TLS) URL with a host and no user:password (e.g. http://collector:4318/v1/logs)",
		},
		{
			[]string{httpProto, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://",
			"with protocol http/protobuf (OTEL_EXPORTER_OTLP_PROTOCOL), must be an http:// (plaintext) or https:// (TLS) URL with a host and no user:password (e.g. http://collector:4318/v1/traces)",
		},
		{
			[]string{httpProto, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=m:4318"}, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "m:4318",
			"with protocol http/protobuf (OTEL_EXPORTER_OTLP_PROTOCOL), must be an http:// (plaintext) or https:// (TLS) URL with a host and no user:password (e.g. http://collector:4318/v1/metrics)",
		},
		{
			// Fine for the shared grpc, not for logs over HTTP.
			[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4317", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=http/protobuf"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317",
			"with protocol http/protobuf (OTEL_EXPORTER_OTLP_LOGS_PROTOCOL), must be an http:// (plaintext) or https:// (TLS) URL with a host and no user:password (e.g. http://collector:4318)",
		},

		{[]string{"OTEL_EXPORTER_OTLP_INSECURE=1"}, "OTEL_EXPORTER_OTLP_INSECURE", "1", boolean},
		{[]string{"OTEL_EXPORTER_OTLP_INSECURE=yes"}, "OTEL_EXPORTER_OTLP_INSECURE", "yes", boolean},
		{[]string{"OTEL_EXPORTER_OTLP_LOGS_INSECURE=on"}, "OTEL_EXPORTER_OTLP_LOGS_INSECURE", "on", boolean},
		{[]string{"OTEL_EXPORTER_OTLP_TRACES_INSECURE=t"}, "OTEL_EXPORTER_OTLP_TRACES_INSECURE", "t", boolean},
		// Checked even when the endpoint's scheme makes it moot.
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=https://c:4317", "OTEL_EXPORTER_OTLP_INSECURE=True "}, "OTEL_EXPORTER_OTLP_INSECURE", "True ", boolean},

		// Headers: values masked.
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=secretvalue"}, "OTEL_EXPORTER_OTLP_HEADERS", "***", headers("1 has no =")},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=authorization: Bearer abc"}, "OTEL_EXPORTER_OTLP_HEADERS", "***", headers("1 has no =")},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=a=secret,"}, "OTEL_EXPORTER_OTLP_HEADERS", "a=***,", headers("2 is empty")},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS= ,a=secret"}, "OTEL_EXPORTER_OTLP_HEADERS", " ,a=***", headers("1 is empty")},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=a=1,,b=2"}, "OTEL_EXPORTER_OTLP_HEADERS", "a=***,,b=***", headers("2 is empty")},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=api key=secret"}, "OTEL_EXPORTER_OTLP_HEADERS", "api key=***", headers(`1 has the key "api key", which is not an HTTP token`)},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS==secret"}, "OTEL_EXPORTER_OTLP_HEADERS", "=***", headers(`1 has the key "", which is not an HTTP token`)},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=a=1,k\u00e9y=2"}, "OTEL_EXPORTER_OTLP_HEADERS", "a=***,k\u00e9y=***", headers("2 has the key \"k\u00e9y\", which is not an HTTP token")},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=api-key=secret%zz"}, "OTEL_EXPORTER_OTLP_HEADERS", "api-key=***", headers(`1 (key "api-key") has a bad percent-escape in its value`)},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=k=50%"}, "OTEL_EXPORTER_OTLP_HEADERS", "k=***", headers(`1 (key "k") has a bad percent-escape in its value`)},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=k=a%0Ab"}, "OTEL_EXPORTER_OTLP_HEADERS", "k=***", headers(`1 (key "k") has a control character in its value`)},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=k=a%7Fb"}, "OTEL_EXPORTER_OTLP_HEADERS", "k=***", headers(`1 (key "k") has a control character in its value`)},
		{[]string{"OTEL_EXPORTER_OTLP_LOGS_HEADERS=nope"}, "OTEL_EXPORTER_OTLP_LOGS_HEADERS", "***", headers("1 has no =")},
		{[]string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS=a=1,b"}, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "a=***,***", headers("2 has no =")},
		{[]string{"OTEL_EXPORTER_OTLP_METRICS_HEADERS=k=v,"}, "OTEL_EXPORTER_OTLP_METRICS_HEADERS", "k=***,", headers("2 is empty")},

		{[]string{"OTEL_EXPORTER_OTLP_COMPRESSION=zstd"}, "OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", compression},
		{[]string{"OTEL_EXPORTER_OTLP_COMPRESSION=deflate"}, "OTEL_EXPORTER_OTLP_COMPRESSION", "deflate", compression},
		{[]string{"OTEL_EXPORTER_OTLP_COMPRESSION=gzip\nnone"}, "OTEL_EXPORTER_OTLP_COMPRESSION", "gzip\nnone", compression},
		{[]string{"OTEL_EXPORTER_OTLP_LOGS_COMPRESSION=snappy"}, "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "snappy", compression},
		{[]string{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=true"}, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "true", compression},
		{[]string{"OTEL_EXPORTER_OTLP_METRICS_COMPRESSION=br"}, "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "br", compression},
		{
			// The shared value is checked even where every signal overrides it.
			[]string{"OTEL_EXPORTER_OTLP_LOGS_COMPRESSION=gzip", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=gzip", "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION=gzip", "OTEL_EXPORTER_OTLP_COMPRESSION=lz4"},
			"OTEL_EXPORTER_OTLP_COMPRESSION", "lz4", compression,
		},

		{[]string{"OTEL_EXPORTER_OTLP_TIMEOUT=0"}, "OTEL_EXPORTER_OTLP_TIMEOUT", "0", timeout},
		{[]string{"OTEL_EXPORTER_OTLP_TIMEOUT=-1"}, "OTEL_EXPORTER_OTLP_TIMEOUT", "-1", timeout},
		{[]string{"OTEL_EXPORTER_OTLP_TIMEOUT=+5"}, "OTEL_EXPORTER_OTLP_TIMEOUT", "+5", timeout},
		{[]string{"OTEL_EXPORTER_OTLP_TIMEOUT=10s"}, "OTEL_EXPORTER_OTLP_TIMEOUT", "10s", timeout},
		{[]string{"OTEL_EXPORTER_OTLP_TIMEOUT=1.5"}, "OTEL_EXPORTER_OTLP_TIMEOUT", "1.5", timeout},
		{[]string{"OTEL_EXPORTER_OTLP_TIMEOUT= 10"}, "OTEL_EXPORTER_OTLP_TIMEOUT", " 10", timeout},
		{[]string{"OTEL_EXPORTER_OTLP_TIMEOUT=1e4"}, "OTEL_EXPORTER_OTLP_TIMEOUT", "1e4", timeout},
		{[]string{"OTEL_EXPORTER_OTLP_TIMEOUT=2147483648"}, "OTEL_EXPORTER_OTLP_TIMEOUT", "2147483648", timeout},
		{[]string{"OTEL_EXPORTER_OTLP_TIMEOUT=99999999999999999999"}, "OTEL_EXPORTER_OTLP_TIMEOUT", "99999999999999999999", timeout},
		{[]string{"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT=0"}, "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "0", timeout},
		{[]string{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=soon"}, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "soon", timeout},
		{[]string{"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT=-5"}, "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "-5", timeout},

		{
			[]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=/c.pem"}, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/c.pem",
			"must come with its key: set OTEL_EXPORTER_OTLP_CLIENT_KEY too",
		},
		{
			[]string{"OTEL_EXPORTER_OTLP_CLIENT_KEY=/k.pem"}, "OTEL_EXPORTER_OTLP_CLIENT_KEY", "/k.pem",
			"must come with its certificate: set OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE too",
		},
		{
			[]string{"OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE=/c.pem"}, "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE", "/c.pem",
			"must come with its key: set OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY or OTEL_EXPORTER_OTLP_CLIENT_KEY too",
		},
		{
			[]string{"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY=/k.pem"}, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "/k.pem",
			"must come with its certificate: set OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE or OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE too",
		},
		{
			[]string{"OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY=/k.pem"}, "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY", "/k.pem",
			"must come with its certificate: set OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE or OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE too",
		},

		{[]string{"OTEL_BLRP_SCHEDULE_DELAY=0"}, "OTEL_BLRP_SCHEDULE_DELAY", "0", millis("1000")},
		{[]string{"OTEL_BLRP_SCHEDULE_DELAY=1s"}, "OTEL_BLRP_SCHEDULE_DELAY", "1s", millis("1000")},
		{[]string{"OTEL_BLRP_EXPORT_TIMEOUT=-30000"}, "OTEL_BLRP_EXPORT_TIMEOUT", "-30000", millis("30000")},
		{[]string{"OTEL_BLRP_MAX_QUEUE_SIZE=0"}, "OTEL_BLRP_MAX_QUEUE_SIZE", "0", count("8192")},
		{[]string{"OTEL_BLRP_MAX_QUEUE_SIZE=2k"}, "OTEL_BLRP_MAX_QUEUE_SIZE", "2k", count("8192")},
		{[]string{"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE=0"}, "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "0", count("2048")},
		{
			[]string{"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE=9000"}, "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "9000",
			"must be a whole number from 1 to the queue size 8192 (OTEL_BLRP_MAX_QUEUE_SIZE)",
		},
		{
			[]string{"OTEL_BLRP_MAX_QUEUE_SIZE=100", "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE=101"}, "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "101",
			"must be a whole number from 1 to the queue size 100 (OTEL_BLRP_MAX_QUEUE_SIZE)",
		},
		{[]string{"OTEL_BSP_SCHEDULE_DELAY=-1"}, "OTEL_BSP_SCHEDULE_DELAY", "-1", millis("5000")},
		{[]string{"OTEL_BSP_EXPORT_TIMEOUT=0"}, "OTEL_BSP_EXPORT_TIMEOUT", "0", millis("30000")},
		{[]string{"OTEL_BSP_MAX_QUEUE_SIZE=3000000000"}, "OTEL_BSP_MAX_QUEUE_SIZE", "3000000000", count("8192")},
		{[]string{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE=many"}, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "many", count("2048")},
		{
			[]string{"OTEL_BSP_MAX_QUEUE_SIZE=10", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=512"}, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512",
			"must be a whole number from 1 to the queue size 10 (OTEL_BSP_MAX_QUEUE_SIZE)",
		},

		{[]string{"OTEL_TRACES_SAMPLER=probability"}, "OTEL_TRACES_SAMPLER", "probability", sampler},
		{[]string{"OTEL_TRACES_SAMPLER=parentbased_jaeger_remote"}, "OTEL_TRACES_SAMPLER", "parentbased_jaeger_remote", sampler},
		{[]string{"OTEL_TRACES_SAMPLER=xray"}, "OTEL_TRACES_SAMPLER", "xray", sampler},
		{[]string{"OTEL_TRACES_SAMPLER_ARG=1.5"}, "OTEL_TRACES_SAMPLER_ARG", "1.5", ratio},
		{[]string{"OTEL_TRACES_SAMPLER_ARG=-0.1"}, "OTEL_TRACES_SAMPLER_ARG", "-0.1", ratio},
		{[]string{"OTEL_TRACES_SAMPLER_ARG=NaN"}, "OTEL_TRACES_SAMPLER_ARG", "NaN", ratio},
		{[]string{"OTEL_TRACES_SAMPLER_ARG=Inf"}, "OTEL_TRACES_SAMPLER_ARG", "Inf", ratio},
		{[]string{"OTEL_TRACES_SAMPLER_ARG=50%"}, "OTEL_TRACES_SAMPLER_ARG", "50%", ratio},
		{[]string{"OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=half"}, "OTEL_TRACES_SAMPLER_ARG", "half", ratio},

		{[]string{"OTEL_METRIC_EXPORT_INTERVAL=0"}, "OTEL_METRIC_EXPORT_INTERVAL", "0", millis("60000")},
		{[]string{"OTEL_METRIC_EXPORT_INTERVAL=60s"}, "OTEL_METRIC_EXPORT_INTERVAL", "60s", millis("60000")},
		{[]string{"OTEL_METRIC_EXPORT_TIMEOUT=-1"}, "OTEL_METRIC_EXPORT_TIMEOUT", "-1", millis("30000")},
		{[]string{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=deltas"}, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "deltas", temporality},
		{[]string{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=low_memory"}, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "low_memory", temporality},
		{[]string{"OTEL_EXPORTER_PROMETHEUS_PORT=0"}, "OTEL_EXPORTER_PROMETHEUS_PORT", "0", port},
		{[]string{"OTEL_EXPORTER_PROMETHEUS_PORT=65536"}, "OTEL_EXPORTER_PROMETHEUS_PORT", "65536", port},
		{[]string{"OTEL_EXPORTER_PROMETHEUS_PORT=http"}, "OTEL_EXPORTER_PROMETHEUS_PORT", "http", port},
		{[]string{"OTEL_EXPORTER_PROMETHEUS_PORT=-9464"}, "OTEL_EXPORTER_PROMETHEUS_PORT", "-9464", port},

		// Resource attributes are not secrets: shown whole.
		{[]string{"OTEL_RESOURCE_ATTRIBUTES=team"}, "OTEL_RESOURCE_ATTRIBUTES", "team", resource(`1 ("team") has no =`)},
		{[]string{"OTEL_RESOURCE_ATTRIBUTES=a=1,b"}, "OTEL_RESOURCE_ATTRIBUTES", "a=1,b", resource(`2 ("b") has no =`)},
		{[]string{"OTEL_RESOURCE_ATTRIBUTES=a=1,"}, "OTEL_RESOURCE_ATTRIBUTES", "a=1,", resource("2 is empty")},
		{[]string{"OTEL_RESOURCE_ATTRIBUTES=a=1,, b=2"}, "OTEL_RESOURCE_ATTRIBUTES", "a=1,, b=2", resource("2 is empty")},
		{[]string{"OTEL_RESOURCE_ATTRIBUTES= =x"}, "OTEL_RESOURCE_ATTRIBUTES", " =x", resource("1 has an empty key")},
		{[]string{"OTEL_RESOURCE_ATTRIBUTES=a=50%"}, "OTEL_RESOURCE_ATTRIBUTES", "a=50%", resource(`1 (key "a") has a bad percent-escape in its value`)},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.environ, ","), func(t *testing.T) {
			_, err := Load(tt.environ)
			checkError(t, err, tt.varName, tt.value, tt.allowed)
		})
	}
}

// TestTelemetryFirstProblem: the first problem in Telemetry's documented
// order is reported.
func TestTelemetryFirstProblem(t *testing.T) {
	// Each environ holds the problems of the next line too.
	steps := []struct{ add, varName string }{
		{"OTEL_RESOURCE_ATTRIBUTES=x", "OTEL_RESOURCE_ATTRIBUTES"},
		{"OTEL_EXPORTER_PROMETHEUS_PORT=x", "OTEL_EXPORTER_PROMETHEUS_PORT"},
		{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=x", "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"},
		{"OTEL_METRIC_EXPORT_TIMEOUT=x", "OTEL_METRIC_EXPORT_TIMEOUT"},
		{"OTEL_METRIC_EXPORT_INTERVAL=x", "OTEL_METRIC_EXPORT_INTERVAL"},
		{"OTEL_TRACES_SAMPLER_ARG=x", "OTEL_TRACES_SAMPLER_ARG"},
		{"OTEL_TRACES_SAMPLER=x", "OTEL_TRACES_SAMPLER"},
		{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE=x", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"},
		{"OTEL_BSP_MAX_QUEUE_SIZE=x", "OTEL_BSP_MAX_QUEUE_SIZE"},
		{"OTEL_BSP_EXPORT_TIMEOUT=x", "OTEL_BSP_EXPORT_TIMEOUT"},
		{"OTEL_BSP_SCHEDULE_DELAY=x", "OTEL_BSP_SCHEDULE_DELAY"},
		{"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE=x", "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE"},
		{"OTEL_BLRP_MAX_QUEUE_SIZE=x", "OTEL_BLRP_MAX_QUEUE_SIZE"},
		{"OTEL_BLRP_EXPORT_TIMEOUT=x", "OTEL_BLRP_EXPORT_TIMEOUT"},
		{"OTEL_BLRP_SCHEDULE_DELAY=x", "OTEL_BLRP_SCHEDULE_DELAY"},
		{"OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY=x", "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY"},
		{"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT=x", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT"},
		{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=x", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"},
		{"OTEL_EXPORTER_OTLP_TRACES_HEADERS=x", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"},
		{"OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE=x", "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE"},
		{"OTEL_EXPORTER_OTLP_LOGS_INSECURE=x", "OTEL_EXPORTER_OTLP_LOGS_INSECURE"},
		{"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=x", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"},
		{"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=x", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL"},
		{"OTEL_EXPORTER_OTLP_TIMEOUT=x", "OTEL_EXPORTER_OTLP_TIMEOUT"},
		{"OTEL_EXPORTER_OTLP_COMPRESSION=x", "OTEL_EXPORTER_OTLP_COMPRESSION"},
		{"OTEL_EXPORTER_OTLP_HEADERS=x", "OTEL_EXPORTER_OTLP_HEADERS"},
		{"OTEL_EXPORTER_OTLP_INSECURE=x", "OTEL_EXPORTER_OTLP_INSECURE"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT=x", "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"OTEL_EXPORTER_OTLP_PROTOCOL=x", "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"OTEL_METRICS_EXPORTER=x", "OTEL_METRICS_EXPORTER"},
		{"OTEL_TRACES_EXPORTER=x", "OTEL_TRACES_EXPORTER"},
		{"OTEL_LOGS_EXPORTER=x", "OTEL_LOGS_EXPORTER"},
		{"OTEL_SDK_DISABLED=x", "OTEL_SDK_DISABLED"},
	}
	var environ []string
	for _, s := range steps {
		environ = append(environ, s.add)
		for range 3 { // map iteration order must not matter
			_, err := Load(environ)
			var e *Error
			if !errors.As(err, &e) || e.Var != s.varName {
				t.Fatalf("Load(%q) = %v, want the error of %s", environ, err, s.varName)
			}
		}
	}
}

// TestTelemetryHidesHeaderValues checks that a bad headers variable does not
// print the credentials it usually holds.
func TestTelemetryHidesHeaderValues(t *testing.T) {
	for _, v := range []string{
		"api-key=s3cr3t,broken",
		"authorization=Bearer%20s3cr3t%",
		"s3cr3t",
		"a=1,key with space=s3cr3t",
	} {
		for _, name := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"} {
			_, err := Load([]string{name + "=" + v})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%q: error %v, want *Error", v, err)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("%q: error shows the secret: %v", v, err)
			}
		}
	}
}
