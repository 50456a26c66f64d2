# memlock-exporter — see README.md. Every target runs as root on a fresh
# Debian bookworm machine with Go 1.26; `make deps` installs the rest.

SHELL     := /bin/bash
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BIN       := bin
TESTFLAGS ?= -count=1 -timeout 30m
TESTLOG   ?= $(BIN)/test.log
# Debian packages `make generate` needs; clang-14 is pinned so the
# committed BPF objects are reproduced byte for byte.
GEN_DEPS  := clang-14 llvm-14 libbpf-dev

.PHONY: all build test unit race fuzz fuzz-list bench generate check-generate deps run demo e2e lint clean \
	image helm-template helm-test test-collector

all: build

build: $(BIN)/memlock-exporter $(BIN)/workload

$(BIN)/memlock-exporter: FORCE
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/memlock-exporter

# The test-only OpenTelemetry Collector (its own module, e2e/otelcol), for
# make bench and make demo.
$(BIN)/otelcol: e2e/otelcol/go.mod e2e/otelcol/go.sum $(wildcard e2e/otelcol/*.go)
	@mkdir -p $(BIN)
	cd e2e/otelcol && $(GO) build -ldflags='-s -w' -o $(abspath $@) .

$(BIN)/workload: workload/workload.c
	@mkdir -p $(BIN)
	gcc -O2 -Wall -Wextra -Werror -pthread -o $@ $<

FORCE:

# The test command (README, .ci/run): vet, every test in the module
# (unit, privileged and end-to-end; the privileged ones need root), with
# packages in parallel, a check that, as root, nothing was skipped, then
# the packages that run goroutines again under the race detector (make
# race) and a short run of every fuzz target (make fuzz).
#
# Beside the tests, for the whole go test run, `workload --noise-ms 2` calls
# mlock2 every 2 ms (successes with munlock, and EINVAL failures): the
# privileged and end-to-end tests trace every process on the host, and must
# look only at their own workload's (by a cgroup of their own, or by pid)
# while other processes lock memory, among them the other packages' tracers,
# daemons and workloads running at the same time. The noise proves they do on
# every run; it is an error if it does not last the run.
test: lint $(BIN)/workload
	@mkdir -p $(BIN)
	$(BIN)/workload --noise-ms 2 2>$(BIN)/noise.log & noise=$$!; \
	  $(GO) test $(TESTFLAGS) -v ./... 2>&1 | tee $(TESTLOG) | grep -E '^(ok|FAIL|--- |panic|\?)|^\s+\S+_test\.go:[0-9]+:'; \
	  status=$${PIPESTATUS[0]}; \
	  kill $$noise 2>/dev/null && wait $$noise || { echo "the mlock2 noise did not last the tests"; status=1; }; \
	  cat $(BIN)/noise.log; \
	  [ $$status = 0 ] || { echo "go test failed (full log: $(TESTLOG)); what failed:"; scripts/test-failures.sh $(TESTLOG) | head -n 80; exit $$status; }
	@if [ "$$(id -u)" = 0 ] && grep -q -- '--- SKIP' $(TESTLOG); then \
	  echo "running as root, yet these tests skipped:"; grep -- '--- SKIP' $(TESTLOG); exit 1; fi
	$(MAKE) race
	$(MAKE) fuzz
	$(MAKE) helm-test
	$(MAKE) test-collector
	@echo "$$(grep -c -- '--- PASS' $(TESTLOG)) passed, $$(grep -c -- '--- FAIL' $(TESTLOG)) failed"

unit:
	$(GO) test -short $(TESTFLAGS) ./...

# The race detector over the packages whose code or tests run goroutines:
# the ring-buffer reader and tracer (privileged tests included), the
# exporter with its senders and queue, the daemon's wiring. Allocation
# tests are left out under -race (exporter/race_test.go). It runs after
# the main run, not beside it: the instrumented reader is several times
# slower, and the privileged tests count every call of their workload.
# About 40 s on 2 CPUs.
RACE_PKGS  ?= ./bpf ./cmd/memlock-exporter ./exporter/... ./internal/testutil
RACEFLAGS  ?= -count=1 -timeout 10m
RACELOG    ?= $(BIN)/race.log

race: $(BIN)/workload
	@mkdir -p $(BIN)
	@start=$$SECONDS; \
	  $(GO) test -race $(RACEFLAGS) $(RACE_PKGS) 2>&1 | tee $(RACELOG) | grep -E '^(ok|FAIL|--- |panic)|DATA RACE|race detected|^\s+\S+_test\.go:[0-9]+:'; \
	  status=$${PIPESTATUS[0]}; \
	  echo "race run: $$((SECONDS - start)) s"; \
	  [ $$status = 0 ] || { echo "go test -race failed (full log: $(RACELOG)); what failed:"; scripts/test-failures.sh $(RACELOG) | head -n 80; exit $$status; }

# Every fuzz target in the module for FUZZTIME each, one go test run per
# target (go test -fuzz takes one at a time): about 40 s on 2 CPUs. make
# fuzz-list lists them, found in each package's test files as
# `func FuzzX(f *testing.F)`; make fuzz FUZZTIME=10m digs deeper. A
# failing input is saved under its package's testdata/fuzz/, where a plain
# go test replays it: add it to the target's seeds once fixed. A target hit
# by Go 1.26's coordinator race at the deadline is fuzzed again (see
# scripts/fuzz.sh).
FUZZTIME  ?= 2s
FUZZ_LIST  = $(GO) list -f '{{$$d := .Dir}}{{.ImportPath}}{{range .TestGoFiles}} {{$$d}}/{{.}}{{end}}{{range .XTestGoFiles}} {{$$d}}/{{.}}{{end}}' ./... | \
	while read -r pkg files; do \
	  [ -z "$$files" ] || sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*\*testing\.F).*/\1/p' $$files | sed "s|^|$$pkg |"; \
	done

fuzz-list:
	@$(FUZZ_LIST)

fuzz:
	@set -o pipefail; targets=$$($(FUZZ_LIST)) || exit 1; \
	  GO=$(GO) scripts/fuzz.sh $(FUZZTIME) <<< "$$targets"

lint:
	@# Not tee /dev/stderr: opening it again truncates a log file that
	@# stderr is redirected to (bash .ci/run >ci.log 2>&1 lost its start).
	@unformatted=$$(gofmt -l .); [ -z "$$unformatted" ] || { echo "$$unformatted"; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...

# Needs root. Both binaries are built first so that the end-to-end section
# (exporter + collector under a steady mlock2 load) always runs.
bench: $(BIN)/memlock-exporter $(BIN)/otelcol
	$(GO) run ./cmd/memlock-bench -exporter $(BIN)/memlock-exporter -collector $(BIN)/otelcol
	$(GO) test -run '^$$' -bench . -benchmem ./bpf ./exporter/...
	$(GO) run ./cmd/memlock-bench -tax
	$(GO) run ./cmd/memlock-bench -exec -exporter $(BIN)/memlock-exporter
	$(GO) run ./cmd/memlock-bench -behind -exporter $(BIN)/memlock-exporter
	@# bpftrace, the yardstick of -vs-bpftrace (issue #13), is a Debian package.
	@command -v bpftrace >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bpftrace >/dev/null; }
	$(GO) run ./cmd/memlock-bench -vs-bpftrace -vs-bpftrace-rounds 9 -exporter $(BIN)/memlock-exporter
	@# Each mode's floor on this host's hooks: what counters on the entry and
	@# exit hooks cost, against which the timing tracer is judged.
	$(GO) run ./cmd/memlock-bench -vs-counter
	$(MAKE) bench-vm

# memlock-bench -tax and -vs-counter inside QEMU (vmtest/run.sh,
# VMTEST_TESTS="tax vs") on a kernel where fentry, kprobes and tracepoints
# all attach (this host has only tracepoints): what each kind of hook costs
# an unrelated syscall (getppid), as ratios, and what the tracer adds to an
# mlock2 call beside a BPF program that only counts it (there is no bpftrace
# in the VM). On bookworm tax takes about 45 s and vs about 2 minutes, 3 in
# all from boot to result (BENCH_VM_KERNELS="bookworm trixie" adds one);
# both tests share the per-kernel timeout, hence a longer one than vmtest's.
# Results in $(BIN)/bench-vm/results.
BENCH_VM_KERNELS ?= bookworm
BENCH_VM_TIMEOUT ?= 420

.PHONY: bench-vm
bench-vm:
	GO='$(GO)' VMTEST_KERNELS='$(BENCH_VM_KERNELS)' VMTEST_TESTS='tax vs' VMTEST_TIMEOUT='$(BENCH_VM_TIMEOUT)' \
	  VMTEST_OUT='$(CURDIR)/$(BIN)/bench-vm' \
	  bash vmtest/run.sh

generate:
	$(GO) generate ./bpf ./semconv

# Rebuilds the BPF objects and fails if they differ from the committed ones.
check-generate: generate
	git diff --exit-code --stat -- bpf/ || { echo "make generate changed the committed BPF objects: commit them, or check the clang version (needs clang-14)"; exit 1; }

# The kernel matrix: Debian's stock kernels (bullseye 5.10, bookworm 6.1,
# trixie 6.12, sid) boot under QEMU with the privileged tests in a busybox
# initramfs; kernels are cached in ~/.cache/memlock-exporter/vmtest, logs go
# to $(BIN)/vmtest/results. VMTEST_KERNELS=bookworm picks a subset; the other
# knobs are in vmtest/README.md.
VMTEST_KERNELS ?= bullseye bookworm trixie sid
VMTEST_RUN     ?= Hook|Tracer|Workload

.PHONY: vmtest
vmtest:
	GO='$(GO)' VMTEST_KERNELS='$(VMTEST_KERNELS)' VMTEST_RUN='$(VMTEST_RUN)' VMTEST_OUT='$(CURDIR)/$(BIN)/vmtest' \
	  bash vmtest/run.sh

# The container image (Dockerfile: a static binary on scratch, with OCI
# labels). Needs a Docker daemon with BuildKit.
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
CREATED  ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)

image:
	docker build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
	  --build-arg CREATED=$(CREATED) -t memlock-exporter:$(VERSION) .

# The Helm chart (deploy/helm/memlock-exporter; deploy/helm is a Go module of
# its own, for the Helm SDK): helm-template prints the manifests rendered
# with the default values (HELM_SET="key=value,..." overrides some);
# helm-test lints and renders it in Go tests and checks every manifest
# against the Kubernetes API types and the security properties.
HELM_SET ?=

helm-template:
	@cd deploy/helm && $(GO) run ./cmd/helm-template $(if $(HELM_SET),--set '$(HELM_SET)')

helm-test:
	cd deploy/helm && $(GO) vet ./... && $(GO) test $(TESTFLAGS) ./...

# The collector agent configuration for Kubernetes (deploy/collector, a Go
# module of its own): validated with the collector's own configuration
# loading, and k8s_attributes run against a fake Kubernetes API.
test-collector:
	cd deploy/collector && $(GO) vet ./... && $(GO) test $(TESTFLAGS) ./...

deps:
	@if ! command -v clang-14 >/dev/null || [ ! -e /usr/include/bpf/bpf_helpers.h ] || ! command -v llvm-strip-14 >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(GEN_DEPS) >/dev/null; fi
	@# libc.a, for the static program memlock-bench -exec builds (make bench).
	@[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libc6-dev >/dev/null; }
	$(GO) mod download

run: $(BIN)/memlock-exporter
	$(BIN)/memlock-exporter

# The main job on a fresh machine: collector + exporter + workload, then
# what the collector received.
demo:
	scripts/demo.sh

clean:
	rm -rf $(BIN)
