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
