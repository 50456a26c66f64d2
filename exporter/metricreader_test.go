package exporter

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestNewMetricReader: the Exporter aggregates the histograms only where
// the reader is one it built (OTLP, no extra producers, explicit buckets),
// with the temporality the OTLP exporter asks for; elsewhere the SDK does.
func TestNewMetricReader(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		own  bool
		want metricdata.Temporality
	}{
		{name: "defaults, grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, own: true, want: metricdata.CumulativeTemporality},
		{name: "http", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, own: true, want: metricdata.CumulativeTemporality},
		{name: "metrics protocol wins", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "bogus", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "GRPC"}, own: true, want: metricdata.CumulativeTemporality},
		{name: "otlp named", env: map[string]string{"OTEL_METRICS_EXPORTER": "otlp"}, own: true, want: metricdata.CumulativeTemporality},
		{name: "delta", env: map[string]string{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta"}, own: true, want: metricdata.DeltaTemporality},
		{name: "lowmemory: delta histograms", env: map[string]string{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "lowmemory"}, own: true, want: metricdata.DeltaTemporality},
		{name: "exponential histograms", env: map[string]string{"OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION": "base2_exponential_bucket_histogram"}},
		{name: "console", env: map[string]string{"OTEL_METRICS_EXPORTER": "console"}},
		{name: "extra producers", env: map[string]string{"OTEL_METRICS_PRODUCERS": "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"OTEL_METRICS_EXPORTER", "OTEL_METRICS_PRODUCERS", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
				"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION"} {
				t.Setenv(k, tc.env[k])
			}
			r, hp, err := newMetricReader(context.Background(), "v")
			if err != nil {
				t.Fatal(err)
			}
			defer r.Shutdown(context.Background())
			if (hp != nil) != tc.own {
				t.Fatalf("own histograms = %v, want %v", hp != nil, tc.own)
			}
			if hp != nil && hp.temporality != tc.want {
				t.Errorf("temporality = %v, want %v", hp.temporality, tc.want)
			}
		})
	}
	t.Run("bad protocol", func(t *testing.T) {
		t.Setenv("OTEL_METRICS_EXPORTER", "")
		t.Setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json")
		if _, _, err := newMetricReader(context.Background(), "v"); err == nil {
			t.Error("no error for protocol http/json")
		}
	})
}
