// Package config reads memlock-exporter's settings from the environment,
// validates them, and describes every variable for --help; it is the only
// package in the project that reads environment variables.
//
// A bad value or an unknown MEMLOCK_EXPORTER_* variable is reported as one
// *Error naming the variable, the value and what is allowed. Standard OTEL_*
// variables other than OTEL_SDK_DISABLED are left to the OpenTelemetry SDK.
package config
