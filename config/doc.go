// Package config reads memlock-exporter's settings from the environment,
// validates them, and describes every variable for --help; it is the only
// package in the project that reads environment variables.
//
// A bad value or an unknown MEMLOCK_EXPORTER_* variable is reported as one
// *Error naming the variable, the value and what is allowed. Load reads our
// own variables and OTEL_SDK_DISABLED; LoadTelemetry reads, as strictly, the
// standard OTEL_* variables of the log and trace pipelines (exporters, OTLP
// endpoints and options, batch processors, sampler), which the daemon's own
// OTLP encoder needs, and checks OTEL_METRICS_EXPORTER. The other metric
// settings are left to the OpenTelemetry SDK.
package config
