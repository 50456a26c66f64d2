package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func telemetryDefaults() Telemetry {
	return Telemetry{
		LogsExporter:    "otlp",
		TracesExporter:  "otlp",
		MetricsExporter: "otlp",
		Logs: OTLPExport{
			Protocol: "grpc", Endpoint: "http://localhost:4317", Insecure: true,
			Compression: "none", Timeout: 10 * time.Second,
		},
		Traces: OTLPExport{
			Protocol: "grpc", Endpoint: "http://localhost:4317", Insecure: true,
			Compression: "none", Timeout: 10 * time.Second,
		},
		LogBatch:     Batch{ScheduleDelay: time.Second, ExportTimeout: 30 * time.Second, MaxQueueSize: 8192, MaxExportBatch: 2048},
		SpanBatch:    Batch{ScheduleDelay: 5 * time.Second, ExportTimeout: 30 * time.Second, MaxQueueSize: 8192, MaxExportBatch: 2048},
		Sampler:      "parentbased_always_on",
		SamplerRatio: 1,
	}
}

// telemetryVars are all the standard variables LoadTelemetry reads.
func telemetryVars() []string {
	vars := []string{
		"OTEL_LOGS_EXPORTER", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER",
		"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
	}
	for _, signal := range []string{"", "LOGS_", "TRACES_"} {
		for _, key := range []string{"PROTOCOL", "ENDPOINT", "INSECURE", "HEADERS", "COMPRESSION", "TIMEOUT", "CERTIFICATE", "CLIENT_CERTIFICATE", "CLIENT_KEY"} {
			vars = append(vars, "OTEL_EXPORTER_OTLP_"+signal+key)
		}
	}
	for _, p := range []string{"OTEL_BLRP_", "OTEL_BSP_"} {
		for _, key := range []string{"SCHEDULE_DELAY", "EXPORT_TIMEOUT", "MAX_QUEUE_SIZE", "MAX_EXPORT_BATCH_SIZE"} {
			vars = append(vars, p+key)
		}
	}
	return vars
}

func TestTelemetryDefaults(t *testing.T) {
	var allEmpty []string // the empty string counts as unset for OTEL_*
	for _, name := range telemetryVars() {
		allEmpty = append(allEmpty, name+"=")
	}
	for _, environ := range [][]string{
		nil,
		{"PATH=/usr/bin", "OTEL_SERVICE_NAME=x", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=whatever", "garbage", "=x"},
		allEmpty,
	} {
		got, err := LoadTelemetry(environ)
		if err != nil {
			t.Fatalf("LoadTelemetry(%q): %v", environ, err)
		}
		if want := telemetryDefaults(); !reflect.DeepEqual(got, want) {
			t.Errorf("LoadTelemetry(%q) =\n%+v, want\n%+v", environ, got, want)
		}
	}
}

// TestTelemetryListedDefaults keeps the defaults --help lists for the
// variables LoadTelemetry reads true.
func TestTelemetryListedDefaults(t *testing.T) {
	var environ []string
	read := map[string]bool{}
	for _, name := range telemetryVars() {
		read[name] = true
	}
	n := 0
	for _, v := range Variables() {
		if read[v.Name] && v.Default != "" {
			environ = append(environ, v.Name+"="+v.Default)
			n++
		}
	}
	if n < 12 {
		t.Fatalf("only %d listed defaults of LoadTelemetry's variables: %q", n, environ)
	}
	got, err := LoadTelemetry(environ)
	if err != nil {
		t.Fatalf("LoadTelemetry(%q): %v", environ, err)
	}
	if want := telemetryDefaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("LoadTelemetry(listed defaults %q) =\n%+v, want\n%+v", environ, got, want)
	}
}

func TestTelemetryListed(t *testing.T) {
	listed := map[string]bool{}
	for _, v := range Variables() {
		listed[v.Name] = true
	}
	for _, name := range []string{
		"MEMLOCK_EXPORTER_OTLP_ENCODER",
		"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_CERTIFICATE",
		"OTEL_BLRP_SCHEDULE_DELAY", "OTEL_BSP_SCHEDULE_DELAY",
		"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
	} {
		if !listed[name] {
			t.Errorf("%s is not listed by Variables (--help)", name)
		}
	}
}

func TestTelemetryGood(t *testing.T) {
	both := func(f func(o *OTLPExport)) func(*Telemetry) {
		return func(tel *Telemetry) { f(&tel.Logs); f(&tel.Traces) }
	}
	httpBoth := func(logs, traces string) func(*Telemetry) {
		return func(tel *Telemetry) {
			tel.Logs.Protocol, tel.Traces.Protocol = "http/protobuf", "http/protobuf"
			tel.Logs.Endpoint, tel.Traces.Endpoint = logs, traces
			tel.Logs.Insecure = strings.HasPrefix(logs, "http://")
			tel.Traces.Insecure = strings.HasPrefix(traces, "http://")
		}
	}
	tests := []struct {
		name    string
		environ []string
		want    func(*Telemetry)
	}{

		{"logs console", []string{"OTEL_LOGS_EXPORTER=console"}, func(t *Telemetry) { t.LogsExporter = "console" }},
		{"logs NONE", []string{"OTEL_LOGS_EXPORTER=NONE"}, func(t *Telemetry) { t.LogsExporter = "none" }},
		{"logs otlp", []string{"OTEL_LOGS_EXPORTER=otlp"}, func(t *Telemetry) { t.LogsExporter = "otlp" }},
		{"traces none", []string{"OTEL_TRACES_EXPORTER=none"}, func(t *Telemetry) { t.TracesExporter = "none" }},
		{"traces Console", []string{"OTEL_TRACES_EXPORTER=Console"}, func(t *Telemetry) { t.TracesExporter = "console" }},
		{"metrics prometheus", []string{"OTEL_METRICS_EXPORTER=prometheus"}, func(t *Telemetry) { t.MetricsExporter = "prometheus" }},
		{"metrics console", []string{"OTEL_METRICS_EXPORTER=console"}, func(t *Telemetry) { t.MetricsExporter = "console" }},
		{"metrics none", []string{"OTEL_METRICS_EXPORTER=none"}, func(t *Telemetry) { t.MetricsExporter = "none" }},

		// Protocol and the endpoint defaults that follow from it.
		{"grpc", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc"}, func(*Telemetry) {}},
		{"GRPC", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=GRPC"}, func(*Telemetry) {}},
		{"http/protobuf: its default endpoints", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"},
			httpBoth("http://localhost:4318/v1/logs", "http://localhost:4318/v1/traces")},
		{"HTTP/Protobuf", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=HTTP/Protobuf"},
			httpBoth("http://localhost:4318/v1/logs", "http://localhost:4318/v1/traces")},
		{"logs protocol alone", []string{"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=http/protobuf"}, func(t *Telemetry) {
			t.Logs.Protocol, t.Logs.Endpoint = "http/protobuf", "http://localhost:4318/v1/logs"
		}},
		{"traces protocol wins over shared", []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc", "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"}, func(t *Telemetry) {
			t.Logs.Protocol, t.Logs.Endpoint = "http/protobuf", "http://localhost:4318/v1/logs"
		}},

		// gRPC endpoints: as given; the scheme decides TLS, else INSECURE.
		{"grpc https", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=https://collector:4317"},
			both(func(o *OTLPExport) { o.Endpoint, o.Insecure = "https://collector:4317", false })},
		{"grpc http", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317"},
			both(func(o *OTLPExport) { o.Endpoint, o.Insecure = "http://collector:4317", true })},
		{"grpc https without port", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=https://ingest.example.com"},
			both(func(o *OTLPExport) { o.Endpoint, o.Insecure = "https://ingest.example.com", false })},
		{"grpc HTTPS scheme", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=HTTPS://collector:443"},
			both(func(o *OTLPExport) { o.Endpoint, o.Insecure = "HTTPS://collector:443", false })},
		{"grpc host:port is TLS", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4317"},
			both(func(o *OTLPExport) { o.Endpoint, o.Insecure = "collector:4317", false })},
		{"grpc host:port insecure", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4317", "OTEL_EXPORTER_OTLP_INSECURE=true"},
			both(func(o *OTLPExport) { o.Endpoint, o.Insecure = "collector:4317", true })},
		{"grpc host:port INSECURE=TRUE", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4317", "OTEL_EXPORTER_OTLP_INSECURE=TRUE"},
			both(func(o *OTLPExport) { o.Endpoint, o.Insecure = "collector:4317", true })},
		{"grpc host:port INSECURE=False", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4317", "OTEL_EXPORTER_OTLP_INSECURE=False"},
			both(func(o *OTLPExport) { o.Endpoint, o.Insecure = "collector:4317", false })},
		{"grpc IPv6 host:port", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=[::1]:4317"},
			both(func(o *OTLPExport) { o.Endpoint = "[::1]:4317"; o.Insecure = false })},
		{"grpc IPv6 URL", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://[::1]:4317"},
			both(func(o *OTLPExport) { o.Endpoint = "http://[::1]:4317" })},
		{"grpc https ignores INSECURE", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=https://collector:4317", "OTEL_EXPORTER_OTLP_INSECURE=true"},
			both(func(o *OTLPExport) { o.Endpoint, o.Insecure = "https://collector:4317", false })},
		{"default endpoint ignores INSECURE=false", []string{"OTEL_EXPORTER_OTLP_INSECURE=false"}, func(*Telemetry) {}},
		{"logs endpoint wins", []string{"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=https://logs:4317", "OTEL_EXPORTER_OTLP_ENDPOINT=http://shared:4317"}, func(t *Telemetry) {
			t.Logs.Endpoint, t.Logs.Insecure = "https://logs:4317", false
			t.Traces.Endpoint = "http://shared:4317"
		}},
		{"traces endpoint alone", []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=traces:4317", "OTEL_EXPORTER_OTLP_TRACES_INSECURE=true"}, func(t *Telemetry) {
			t.Traces.Endpoint = "traces:4317"
		}},
		{"signal INSECURE wins", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=c:4317", "OTEL_EXPORTER_OTLP_INSECURE=true", "OTEL_EXPORTER_OTLP_LOGS_INSECURE=false"}, func(t *Telemetry) {
			t.Logs.Endpoint, t.Logs.Insecure = "c:4317", false
			t.Traces.Endpoint, t.Traces.Insecure = "c:4317", true
		}},
		{"empty signal endpoint is unset", []string{"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=", "OTEL_EXPORTER_OTLP_ENDPOINT=https://shared:4317"},
			both(func(o *OTLPExport) { o.Endpoint, o.Insecure = "https://shared:4317", false })},

		// http/protobuf: the shared endpoint is a base URL, a signal's own is used as is.
		{"http base", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318"},
			httpBoth("http://collector:4318/v1/logs", "http://collector:4318/v1/traces")},
		{"http base with trailing slash", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318/"},
			httpBoth("http://collector:4318/v1/logs", "http://collector:4318/v1/traces")},
		{"http base with path", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=https://example.com/otlp"},
			httpBoth("https://example.com/otlp/v1/logs", "https://example.com/otlp/v1/traces")},
		{"http base with path and trailing slash", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=https://example.com/otlp/"},
			httpBoth("https://example.com/otlp/v1/logs", "https://example.com/otlp/v1/traces")},
		{"http base with query", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=https://example.com/p?tenant=a"},
			httpBoth("https://example.com/p/v1/logs?tenant=a", "https://example.com/p/v1/traces?tenant=a")},
		{"http base with escaped path", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=https://example.com/a%2Fb/"},
			httpBoth("https://example.com/a%2Fb/v1/logs", "https://example.com/a%2Fb/v1/traces")},
		{"http signal endpoint as is", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=https://logs.example.com/ingest", "OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318"},
			httpBoth("https://logs.example.com/ingest", "http://c:4318/v1/traces")},
		{"http signal endpoint without path as is", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://t:4318", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=http://l:4318/"},
			httpBoth("http://l:4318/", "http://t:4318")},
		{"http for logs only, shared endpoint", []string{"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318"}, func(t *Telemetry) {
			t.Logs.Protocol, t.Logs.Endpoint = "http/protobuf", "http://c:4318/v1/logs"
			t.Traces.Endpoint = "http://c:4318"
		}},
		{"http ignores INSECURE", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=https://c", "OTEL_EXPORTER_OTLP_INSECURE=true"},
			httpBoth("https://c/v1/logs", "https://c/v1/traces")},

		// Headers.
		{"one header", []string{"OTEL_EXPORTER_OTLP_HEADERS=api-key=abc"},
			both(func(o *OTLPExport) { o.Headers = map[string]string{"api-key": "abc"} })},
		{"headers with spaces and percent-encoding", []string{"OTEL_EXPORTER_OTLP_HEADERS= api-key = secret%20value , X-Tenant=t%2C1%3D2 ,authorization=Basic%20dXNlcjpwYXNz"},
			both(func(o *OTLPExport) {
				o.Headers = map[string]string{"api-key": "secret value", "X-Tenant": "t,1=2", "authorization": "Basic dXNlcjpwYXNz"}
			})},
		{"header plus stays plus", []string{"OTEL_EXPORTER_OTLP_HEADERS=k=a+b"},
			both(func(o *OTLPExport) { o.Headers = map[string]string{"k": "a+b"} })},
		{"header UTF-8", []string{"OTEL_EXPORTER_OTLP_HEADERS=k=%C3%A9t%C3%A9"},
			both(func(o *OTLPExport) { o.Headers = map[string]string{"k": "été"} })},
		{"header empty value", []string{"OTEL_EXPORTER_OTLP_HEADERS=k="},
			both(func(o *OTLPExport) { o.Headers = map[string]string{"k": ""} })},
		{"header value with =", []string{"OTEL_EXPORTER_OTLP_HEADERS=k=a=b"},
			both(func(o *OTLPExport) { o.Headers = map[string]string{"k": "a=b"} })},
		{"header repeated: last wins", []string{"OTEL_EXPORTER_OTLP_HEADERS=k=1,k=2"},
			both(func(o *OTLPExport) { o.Headers = map[string]string{"k": "2"} })},
		{"signal headers replace shared", []string{"OTEL_EXPORTER_OTLP_HEADERS=a=1,b=2", "OTEL_EXPORTER_OTLP_LOGS_HEADERS=c=3"}, func(t *Telemetry) {
			t.Logs.Headers = map[string]string{"c": "3"}
			t.Traces.Headers = map[string]string{"a": "1", "b": "2"}
		}},
		{"traces headers alone", []string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS=x=y"}, func(t *Telemetry) {
			t.Traces.Headers = map[string]string{"x": "y"}
		}},

		// Compression and timeout.
		{"gzip", []string{"OTEL_EXPORTER_OTLP_COMPRESSION=gzip"}, both(func(o *OTLPExport) { o.Compression = "gzip" })},
		{"GZIP", []string{"OTEL_EXPORTER_OTLP_COMPRESSION=GZIP"}, both(func(o *OTLPExport) { o.Compression = "gzip" })},
		{"none", []string{"OTEL_EXPORTER_OTLP_COMPRESSION=none"}, func(*Telemetry) {}},
		{"logs compression wins", []string{"OTEL_EXPORTER_OTLP_COMPRESSION=gzip", "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION=none"},
			func(t *Telemetry) { t.Traces.Compression = "gzip" }},
		{"traces compression alone", []string{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=gzip"},
			func(t *Telemetry) { t.Traces.Compression = "gzip" }},
		{"timeout 1ms", []string{"OTEL_EXPORTER_OTLP_TIMEOUT=1"}, both(func(o *OTLPExport) { o.Timeout = time.Millisecond })},
		{"timeout 2500ms", []string{"OTEL_EXPORTER_OTLP_TIMEOUT=2500"}, both(func(o *OTLPExport) { o.Timeout = 2500 * time.Millisecond })},
		{"timeout max", []string{"OTEL_EXPORTER_OTLP_TIMEOUT=2147483647"}, both(func(o *OTLPExport) { o.Timeout = 2147483647 * time.Millisecond })},
		{"timeout leading zero", []string{"OTEL_EXPORTER_OTLP_TIMEOUT=0500"}, both(func(o *OTLPExport) { o.Timeout = 500 * time.Millisecond })},
		{"traces timeout wins", []string{"OTEL_EXPORTER_OTLP_TIMEOUT=2000", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=3000"}, func(t *Telemetry) {
			t.Logs.Timeout, t.Traces.Timeout = 2*time.Second, 3*time.Second
		}},
		{"logs timeout alone", []string{"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT=500"}, func(t *Telemetry) { t.Logs.Timeout = 500 * time.Millisecond }},

		// Certificates: paths only.
		{"CA certificate", []string{"OTEL_EXPORTER_OTLP_CERTIFICATE=/etc/ca.pem"},
			both(func(o *OTLPExport) { o.Certificate = "/etc/ca.pem" })},
		{"client certificate and key", []string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=/etc/c.pem", "OTEL_EXPORTER_OTLP_CLIENT_KEY=/etc/k.pem"},
			both(func(o *OTLPExport) { o.ClientCertificate, o.ClientKey = "/etc/c.pem", "/etc/k.pem" })},
		{"signal certificates win", []string{
			"OTEL_EXPORTER_OTLP_CERTIFICATE=ca.pem", "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE=logs-ca.pem",
			"OTEL_EXPORTER_OTLP_CLIENT_KEY=k.pem", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE=tc.pem", "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE=lc.pem",
			"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=c.pem", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY=tk.pem",
		}, func(t *Telemetry) {
			t.Logs.Certificate, t.Logs.ClientCertificate, t.Logs.ClientKey = "logs-ca.pem", "lc.pem", "k.pem"
			t.Traces.Certificate, t.Traces.ClientCertificate, t.Traces.ClientKey = "ca.pem", "tc.pem", "tk.pem"
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
		{"always_on", []string{"OTEL_TRACES_SAMPLER=always_on"}, func(t *Telemetry) { t.Sampler = "always_on" }},
		{"always_off", []string{"OTEL_TRACES_SAMPLER=always_off"}, func(t *Telemetry) { t.Sampler = "always_off" }},
		{"traceidratio", []string{"OTEL_TRACES_SAMPLER=traceidratio"}, func(t *Telemetry) { t.Sampler = "traceidratio" }},
		{"parentbased_always_on", []string{"OTEL_TRACES_SAMPLER=parentbased_always_on"}, func(*Telemetry) {}},
		{"parentbased_always_off", []string{"OTEL_TRACES_SAMPLER=parentbased_always_off"}, func(t *Telemetry) { t.Sampler = "parentbased_always_off" }},
		{"ParentBased_TraceIdRatio", []string{"OTEL_TRACES_SAMPLER=ParentBased_TraceIdRatio"}, func(t *Telemetry) { t.Sampler = "parentbased_traceidratio" }},
		{"ratio 0.25", []string{"OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=0.25"}, func(t *Telemetry) {
			t.Sampler, t.SamplerRatio = "traceidratio", 0.25
		}},
		{"ratio 0", []string{"OTEL_TRACES_SAMPLER_ARG=0"}, func(t *Telemetry) { t.SamplerRatio = 0 }},
		{"ratio 1", []string{"OTEL_TRACES_SAMPLER_ARG=1"}, func(*Telemetry) {}},
		{"ratio .5", []string{"OTEL_TRACES_SAMPLER_ARG=.5"}, func(t *Telemetry) { t.SamplerRatio = 0.5 }},
		{"ratio 1e-3", []string{"OTEL_TRACES_SAMPLER_ARG=1e-3"}, func(t *Telemetry) { t.SamplerRatio = 0.001 }},

		{"last entry wins", []string{"OTEL_EXPORTER_OTLP_COMPRESSION=zstd", "OTEL_EXPORTER_OTLP_COMPRESSION=gzip"},
			both(func(o *OTLPExport) { o.Compression = "gzip" })},
		{"unrelated MEMLOCK_EXPORTER_ variables are Load's business", []string{"MEMLOCK_EXPORTER_RINGBUF_SIZE=3000"}, func(*Telemetry) {}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		if seen[tt.name] {
			t.Fatalf("test %q twice", tt.name)
		}
		seen[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadTelemetry(tt.environ)
			if err != nil {
				t.Fatalf("LoadTelemetry(%q): %v", tt.environ, err)
			}
			want := telemetryDefaults()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("LoadTelemetry(%q) =\n%+v, want\n%+v", tt.environ, got, want)
			}
		})
	}
}

func TestTelemetryBad(t *testing.T) {
	exporters := "must be otlp, console or none (case-insensitive)"
	metrics := "must be otlp, prometheus, console or none (case-insensitive)"
	protocol := "must be grpc or http/protobuf (case-insensitive)"
	grpcEndpoint := "with protocol grpc (the default), must be host:port or an http:// (plaintext) or https:// (TLS) URL with a host and no user:password (e.g. http://collector:4317)"
	httpEndpoint := "with protocol http/protobuf (OTEL_EXPORTER_OTLP_PROTOCOL), must be an http:// (plaintext) or https:// (TLS) URL with a host and no user:password (e.g. http://collector:4318)"
	boolean := "must be true or false (case-insensitive)"
	headers := headersAllowed + "; entry "
	compression := "must be gzip or none (case-insensitive)"
	timeout := "must be a whole number of milliseconds from 1 to 2147483647 (e.g. 10000)"
	sampler := "must be always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio (case-insensitive)"
	ratio := "must be a number from 0 to 1, the fraction of traces sampled (e.g. 0.25)"
	httpProto := "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"

	tests := []struct {
		environ []string
		varName string // want Error.Var
		value   string // want Error.Value
		allowed string // want in Error.Allowed
	}{

		{[]string{"OTEL_LOGS_EXPORTER=jaeger"}, "OTEL_LOGS_EXPORTER", "jaeger", exporters},
		{[]string{"OTEL_LOGS_EXPORTER=logging"}, "OTEL_LOGS_EXPORTER", "logging", exporters},
		{[]string{"OTEL_LOGS_EXPORTER=otlp,console"}, "OTEL_LOGS_EXPORTER", "otlp,console", exporters + "; one value, not a list"},
		{[]string{"OTEL_TRACES_EXPORTER=zipkin"}, "OTEL_TRACES_EXPORTER", "zipkin", exporters},
		{[]string{"OTEL_TRACES_EXPORTER= otlp"}, "OTEL_TRACES_EXPORTER", " otlp", exporters},
		{[]string{"OTEL_METRICS_EXPORTER=otlp "}, "OTEL_METRICS_EXPORTER", "otlp ", metrics},
		{[]string{"OTEL_METRICS_EXPORTER=statsd"}, "OTEL_METRICS_EXPORTER", "statsd", metrics},

		{[]string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", protocol + "; http/json is not supported"},
		{[]string{"OTEL_EXPORTER_OTLP_PROTOCOL=http"}, "OTEL_EXPORTER_OTLP_PROTOCOL", "http", protocol},
		{[]string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc "}, "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc ", protocol},
		{[]string{"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=h2"}, "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "h2", protocol},
		{[]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=HTTP/JSON"}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "HTTP/JSON", "http/json is not supported"},

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
		{
			[]string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "OTEL_EXPORTER_OTLP_ENDPOINT=collector"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "collector",
			"with protocol grpc (OTEL_EXPORTER_OTLP_PROTOCOL), must be host:port",
		},

		// http/protobuf endpoints.
		{[]string{httpProto, "OTEL_EXPORTER_OTLP_ENDPOINT=collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", httpEndpoint},
		{[]string{httpProto, "OTEL_EXPORTER_OTLP_ENDPOINT=localhost:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318", httpEndpoint},
		{[]string{httpProto, "OTEL_EXPORTER_OTLP_ENDPOINT=/v1/logs"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "/v1/logs", httpEndpoint},
		{[]string{httpProto, "OTEL_EXPORTER_OTLP_ENDPOINT=grpc://collector:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "grpc://collector:4317", httpEndpoint},
		{[]string{httpProto, "OTEL_EXPORTER_OTLP_ENDPOINT=http://%zz"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://%zz", httpEndpoint},
		{[]string{httpProto, "OTEL_EXPORTER_OTLP_ENDPOINT=https://token@collector"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "https://***@collector", httpEndpoint},
		{
			[]string{"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=logs:4318"}, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "logs:4318",
			"with protocol http/protobuf (OTEL_EXPORTER_OTLP_LOGS_PROTOCOL), must be an http:// (plaintext) or https:// (TLS) URL with a host and no user:password (e.g. http://collector:4318/v1/logs)",
		},
		{
			[]string{httpProto, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://",
			"(e.g. http://collector:4318/v1/traces)",
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
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=secretvalue"}, "OTEL_EXPORTER_OTLP_HEADERS", "***", headers + "1 has no ="},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=authorization: Bearer abc"}, "OTEL_EXPORTER_OTLP_HEADERS", "***", headers + "1 has no ="},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=a=secret,"}, "OTEL_EXPORTER_OTLP_HEADERS", "a=***,", headers + "2 is empty"},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS= ,a=secret"}, "OTEL_EXPORTER_OTLP_HEADERS", " ,a=***", headers + "1 is empty"},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=a=1,,b=2"}, "OTEL_EXPORTER_OTLP_HEADERS", "a=***,,b=***", headers + "2 is empty"},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=api key=secret"}, "OTEL_EXPORTER_OTLP_HEADERS", "api key=***", headers + `1 has the key "api key", which is not an HTTP token`},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS==secret"}, "OTEL_EXPORTER_OTLP_HEADERS", "=***", headers + `1 has the key "", which is not an HTTP token`},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=a=1,k\u00e9y=2"}, "OTEL_EXPORTER_OTLP_HEADERS", "a=***,k\u00e9y=***", headers + "2 has the key"},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=api-key=secret%zz"}, "OTEL_EXPORTER_OTLP_HEADERS", "api-key=***", headers + `1 (key "api-key") has a bad percent-escape in its value (values not shown)`},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=k=50%"}, "OTEL_EXPORTER_OTLP_HEADERS", "k=***", "bad percent-escape"},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=k=a%0Ab"}, "OTEL_EXPORTER_OTLP_HEADERS", "k=***", headers + `1 (key "k") has a control character in its value`},
		{[]string{"OTEL_EXPORTER_OTLP_HEADERS=k=a%7Fb"}, "OTEL_EXPORTER_OTLP_HEADERS", "k=***", "control character"},
		{[]string{"OTEL_EXPORTER_OTLP_LOGS_HEADERS=nope"}, "OTEL_EXPORTER_OTLP_LOGS_HEADERS", "***", headers + "1 has no ="},
		{[]string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS=a=1,b"}, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "a=***,***", headers + "2 has no ="},

		{[]string{"OTEL_EXPORTER_OTLP_COMPRESSION=zstd"}, "OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", compression},
		{[]string{"OTEL_EXPORTER_OTLP_COMPRESSION=deflate"}, "OTEL_EXPORTER_OTLP_COMPRESSION", "deflate", compression},
		{[]string{"OTEL_EXPORTER_OTLP_COMPRESSION=gzip\nnone"}, "OTEL_EXPORTER_OTLP_COMPRESSION", "gzip\nnone", compression},
		{[]string{"OTEL_EXPORTER_OTLP_LOGS_COMPRESSION=snappy"}, "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "snappy", compression},
		{[]string{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=true"}, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "true", compression},
		{
			// The shared value is checked even where both signals override it.
			[]string{"OTEL_EXPORTER_OTLP_LOGS_COMPRESSION=gzip", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=gzip", "OTEL_EXPORTER_OTLP_COMPRESSION=lz4"},
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

		{[]string{"OTEL_BLRP_SCHEDULE_DELAY=0"}, "OTEL_BLRP_SCHEDULE_DELAY", "0", "must be a whole number of milliseconds from 1 to 2147483647 (e.g. 1000)"},
		{[]string{"OTEL_BLRP_SCHEDULE_DELAY=1s"}, "OTEL_BLRP_SCHEDULE_DELAY", "1s", "must be a whole number of milliseconds from 1 to 2147483647 (e.g. 1000)"},
		{[]string{"OTEL_BLRP_EXPORT_TIMEOUT=-30000"}, "OTEL_BLRP_EXPORT_TIMEOUT", "-30000", "must be a whole number of milliseconds from 1 to 2147483647 (e.g. 30000)"},
		{[]string{"OTEL_BLRP_MAX_QUEUE_SIZE=0"}, "OTEL_BLRP_MAX_QUEUE_SIZE", "0", "must be a whole number from 1 to 2147483647 (e.g. 8192)"},
		{[]string{"OTEL_BLRP_MAX_QUEUE_SIZE=2k"}, "OTEL_BLRP_MAX_QUEUE_SIZE", "2k", "must be a whole number from 1 to 2147483647 (e.g. 8192)"},
		{[]string{"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE=0"}, "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "0", "must be a whole number from 1 to 2147483647 (e.g. 2048)"},
		{
			[]string{"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE=9000"}, "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "9000",
			"must be a whole number from 1 to the queue size 8192 (OTEL_BLRP_MAX_QUEUE_SIZE)",
		},
		{
			[]string{"OTEL_BLRP_MAX_QUEUE_SIZE=100", "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE=101"}, "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "101",
			"must be a whole number from 1 to the queue size 100 (OTEL_BLRP_MAX_QUEUE_SIZE)",
		},
		{[]string{"OTEL_BSP_SCHEDULE_DELAY=-1"}, "OTEL_BSP_SCHEDULE_DELAY", "-1", "must be a whole number of milliseconds from 1 to 2147483647 (e.g. 5000)"},
		{[]string{"OTEL_BSP_EXPORT_TIMEOUT=0"}, "OTEL_BSP_EXPORT_TIMEOUT", "0", "must be a whole number of milliseconds from 1 to 2147483647 (e.g. 30000)"},
		{[]string{"OTEL_BSP_MAX_QUEUE_SIZE=3000000000"}, "OTEL_BSP_MAX_QUEUE_SIZE", "3000000000", "must be a whole number from 1 to 2147483647 (e.g. 8192)"},
		{[]string{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE=many"}, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "many", "must be a whole number from 1 to 2147483647 (e.g. 2048)"},
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

		// Several bad: the first in the documented order is reported.
		{
			[]string{"OTEL_TRACES_SAMPLER=x", "OTEL_BSP_SCHEDULE_DELAY=x", "OTEL_EXPORTER_OTLP_TIMEOUT=x", "OTEL_TRACES_EXPORTER=x", "OTEL_LOGS_EXPORTER=x"},
			"OTEL_LOGS_EXPORTER", "x", exporters,
		},
		{
			[]string{"OTEL_TRACES_SAMPLER=x", "OTEL_BSP_SCHEDULE_DELAY=x", "OTEL_EXPORTER_OTLP_TIMEOUT=x", "OTEL_METRICS_EXPORTER=x", "OTEL_TRACES_EXPORTER=x"},
			"OTEL_TRACES_EXPORTER", "x", exporters,
		},
		{
			[]string{"OTEL_TRACES_SAMPLER=x", "OTEL_BLRP_SCHEDULE_DELAY=x", "OTEL_EXPORTER_OTLP_INSECURE=x", "OTEL_EXPORTER_OTLP_ENDPOINT=x"},
			"OTEL_EXPORTER_OTLP_ENDPOINT", "x", grpcEndpoint,
		},
		{
			[]string{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=x", "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION=x"},
			"OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "x", compression,
		},
		{
			[]string{"OTEL_TRACES_SAMPLER_ARG=x", "OTEL_BSP_MAX_QUEUE_SIZE=x", "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE=x"},
			"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "x", "must be a whole number",
		},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.environ, ","), func(t *testing.T) {
			_, err := LoadTelemetry(tt.environ)
			checkError(t, err, tt.varName, tt.value, tt.allowed)
		})
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
		_, err := LoadTelemetry([]string{"OTEL_EXPORTER_OTLP_HEADERS=" + v})
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%q: error %v, want *Error", v, err)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%q: error shows the secret: %v", v, err)
		}
	}
}

func TestOrList(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{[]string{"a"}, "a"},
		{[]string{"a", "b"}, "a or b"},
		{[]string{"a", "b", "c"}, "a, b or c"},
	} {
		if got := orList(tt.in); got != tt.want {
			t.Errorf("orList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
