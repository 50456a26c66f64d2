package semconv

// docs/telemetry.md is generated from registry/memlock.yaml and this
// package's tables; TestTelemetryDocIsCurrent fails when it is stale.
//go:generate go run ./internal/gendocs -o ../docs/telemetry.md
