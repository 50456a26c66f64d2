#!/usr/bin/env bash
# make demo: start the bundled OpenTelemetry Collector, the exporter and the
# workload, then show what the collector received. Needs root (the exporter
# attaches BPF programs) and nothing else but Go and gcc.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "make demo must run as root: memlock-exporter attaches BPF programs" >&2
	exit 1
fi

grpc_port="${DEMO_GRPC_PORT:-14317}"
http_port="${DEMO_HTTP_PORT:-14318}"
work="$(mktemp -d /tmp/memlock-demo.XXXXXX)"
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== building the exporter, the workload and the collector (the first build of the collector takes a minute or two)"
make -s bin/memlock-exporter bin/workload bin/otelcol

echo "== starting the collector on 127.0.0.1:$grpc_port (OTLP/gRPC); its output goes to $work"
OTELCOL_E2E_GRPC_ENDPOINT="127.0.0.1:$grpc_port" OTELCOL_E2E_HTTP_ENDPOINT="127.0.0.1:$http_port" \
	OTELCOL_E2E_OUTPUT_DIR="$work" OTELCOL_E2E_VERBOSITY=detailed \
	bin/otelcol --config=file:e2e/otelcol/config.yaml >"$work/collector.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$grpc_port") 2>/dev/null; then break; fi
	sleep 0.1
done

echo "== starting memlock-exporter"
OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$grpc_port" OTEL_METRIC_EXPORT_INTERVAL=1000 \
	bin/memlock-exporter 2>"$work/exporter.log" &
exporter=$!
pids+=("$exporter")
for _ in $(seq 100); do
	grep -q "memlock-exporter started" "$work/exporter.log" && break
	sleep 0.1
done
cat "$work/exporter.log"

echo
echo "== running the workload: each line is one call it made"
bin/workload | tee "$work/workload.jsonl"

sleep 1.5
kill -TERM "$exporter"
wait "$exporter" || true
sleep 0.5

echo
echo "== what the collector received (rendered by its debug exporter): the resource"
awk '/^Resource attributes:/ {on=1; print; next} on && /^ +->/ {print; next} on {exit}' "$work/collector.log"
echo
echo "== the first log record, and the first failed call"
awk '/^LogRecord #/ {blk = $0 "\n"; inb = 1; next}
	inb {blk = blk $0 "\n"}
	inb && /^Flags:/ {inb = 0
		if (!first) {printf "%s\n", blk; first = 1}
		else if (!failed && blk ~ /SeverityNumber: Warn/) {printf "%s", blk; failed = 1}}' "$work/collector.log"
echo "   ... $(grep -c '^LogRecord #' "$work/collector.log") log records in all"
echo
echo "== the memlock.calls metric as last exported"
awk '/-> Name: memlock.calls$/ {buf=""; on=1} on {buf = buf $0 "\n"} on && /-> Name: memlock.call.duration/ {on=0; last=buf} END {printf "%s", last}' "$work/collector.log" |
	grep -E 'Name:|Data point attributes|memlock.syscall|error.type|Value:' | head -40
echo
echo "Everything the collector received, as OTLP JSON: $work/logs.jsonl and $work/metrics.jsonl"
