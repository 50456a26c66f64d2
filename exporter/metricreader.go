package exporter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// newMetricReader returns the reader of OTEL_METRICS_EXPORTER, as autoexport
// would build it. In the usual case, OTLP without OTEL_METRICS_PRODUCERS,
// it builds the reader itself so as to attach a HistogramProducer, which it
// returns too: then the Exporter aggregates the histograms. Otherwise (the
// console and Prometheus exporters, extra producers, or an exporter asking
// for another histogram aggregation) the producer is nil and the SDK's own
// histograms are used.
func newMetricReader(ctx context.Context, serviceVersion string) (sdkmetric.Reader, *HistogramProducer, error) {
	kind := os.Getenv("OTEL_METRICS_EXPORTER")
	if (kind != "" && kind != "otlp") || os.Getenv("OTEL_METRICS_PRODUCERS") != "" {
		r, err := autoexport.NewMetricReader(ctx)
		return r, nil, err
	}
	exp, err := newOTLPMetricExporter(ctx)
	if err != nil {
		return nil, nil, err
	}
	switch exp.Aggregation(sdkmetric.InstrumentKindHistogram).(type) {
	case sdkmetric.AggregationDefault, sdkmetric.AggregationExplicitBucketHistogram:
	default:
		// e.g. base2 exponential histograms: leave them to the SDK.
		return sdkmetric.NewPeriodicReader(exp), nil, nil
	}
	hp := NewHistogramProducer(exp.Temporality(sdkmetric.InstrumentKindHistogram), serviceVersion)
	return sdkmetric.NewPeriodicReader(exp, sdkmetric.WithProducer(hp)), hp, nil
}

// errOTLPMetricsProtocol is autoexport's error for the same mistake (the
// config package refuses a bad protocol before this is reached).
var errOTLPMetricsProtocol = errors.New("invalid OTLP protocol - should be one of ['grpc', 'http/protobuf']")

// newOTLPMetricExporter picks the transport as autoexport does: the
// metrics protocol, else the general one, else http/protobuf (the daemon
// sets grpc as the general default before this runs).
func newOTLPMetricExporter(ctx context.Context) (sdkmetric.Exporter, error) {
	proto := os.Getenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch strings.ToLower(proto) { // as the config package accepts it
	case "grpc":
		exp, err := otlpmetricgrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("create OTLP/gRPC metric exporter: %w", err)
		}
		return exp, nil
	case "", "http/protobuf":
		exp, err := otlpmetrichttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("create OTLP/HTTP metric exporter: %w", err)
		}
		return exp, nil
	default:
		return nil, errOTLPMetricsProtocol
	}
}
