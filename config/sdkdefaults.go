package config

import (
	"os"
	"strings"
)

// Our defaults for standard OTEL_* variables where they differ from the
// OpenTelemetry Go SDK's: we speak OTLP/gRPC unless told otherwise (the
// SDK's autoexport defaults to http/protobuf), and an unset endpoint means
// a plaintext collector on the loopback (the SDK's gRPC exporters would try
// TLS there).
const (
	defaultOTLPProtocol     = "grpc"
	defaultOTLPGRPCEndpoint = "http://localhost:4317"
	defaultOTLPHTTPEndpoint = "http://localhost:4318"
)

// SDKDefaults returns the standard OTEL_* variables, with values, that the
// daemon must set before building the SDK so that our defaults apply. It
// never overrides what the user set, for all signals or for one.
func SDKDefaults(environ []string) map[string]string {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "OTEL_EXPORTER_OTLP_") {
			vars[k] = v
		}
	}
	out := map[string]string{}
	protocol := vars["OTEL_EXPORTER_OTLP_PROTOCOL"]
	if protocol == "" {
		protocol = defaultOTLPProtocol
		out["OTEL_EXPORTER_OTLP_PROTOCOL"] = protocol
	}
	if vars["OTEL_EXPORTER_OTLP_ENDPOINT"] == "" {
		// Signal-specific endpoints still win inside the SDK.
		if strings.HasPrefix(protocol, "http") {
			out["OTEL_EXPORTER_OTLP_ENDPOINT"] = defaultOTLPHTTPEndpoint
		} else {
			out["OTEL_EXPORTER_OTLP_ENDPOINT"] = defaultOTLPGRPCEndpoint
		}
	}
	return out
}

// ApplySDKDefaults sets the variables SDKDefaults(os.Environ()) names, so
// that the SDK, which reads the environment itself, sees our defaults.
func ApplySDKDefaults() error {
	for k, v := range SDKDefaults(os.Environ()) {
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return nil
}
