package config

import (
	"maps"
	"testing"
)

func TestSDKDefaults(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    map[string]string
	}{
		{"nothing set: gRPC to the loopback, plaintext", nil,
			map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4317"}},
		{"endpoint set: only the protocol defaults", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=https://collector:4317"},
			map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}},
		{"http/protobuf chosen: its port", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"},
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"}},
		{"both set: nothing to add", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4317"},
			map[string]string{}},
		{"empty counts as unset", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=", "OTEL_EXPORTER_OTLP_ENDPOINT="},
			map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4317"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SDKDefaults(tt.environ); !maps.Equal(got, tt.want) {
				t.Errorf("SDKDefaults = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLogsEndpoint(t *testing.T) {
	tests := []struct {
		environ []string
		want    string
	}{
		{nil, ""},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://a:4317"}, "http://a:4317"},
		{[]string{"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=http://b:4317", "OTEL_EXPORTER_OTLP_ENDPOINT=http://a:4317"}, "http://b:4317"},
		{[]string{"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=", "OTEL_EXPORTER_OTLP_ENDPOINT=http://a:4317"}, "http://a:4317"},
	}
	for _, tt := range tests {
		if got := LogsEndpoint(tt.environ); got != tt.want {
			t.Errorf("LogsEndpoint(%q) = %q, want %q", tt.environ, got, tt.want)
		}
	}
	env := []string{"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=http://logs:4317", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://traces:4317"}
	if got := TracesEndpoint(env); got != "http://traces:4317" {
		t.Errorf("TracesEndpoint = %q", got)
	}
}
