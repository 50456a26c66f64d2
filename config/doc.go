// Package config reads memlock-exporter's settings from the environment,
// once, into a typed Config, and describes every variable for --help and
// the README; it is the only package in the project that reads environment
// variables, so the exporter builds the OpenTelemetry SDK's parts from
// Config.Telemetry and never lets the SDK read them itself.
//
// Config's struct tags are the one table of our MEMLOCK_EXPORTER_*
// variables (name, default, bounds, description) and its field types parse
// and describe the values; the standard OTEL_* variables are resolved by
// hand per the OpenTelemetry specification and listed from the constants
// the parser uses. A bad value or an unknown MEMLOCK_EXPORTER_* variable is
// reported as one *Error naming the variable, the value and what is
// allowed.
package config
