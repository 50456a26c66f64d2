# syntax=docker/dockerfile:1
#
# memlock-exporter container image: one static binary on an empty (scratch)
# base, plus the CA certificates for OTLP over TLS.
#
#   docker build \
#     --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) \
#     -t memlock-exporter .
#   docker compose up --build        (exporter + collector, see docker-compose.yaml)
#
# linux/amd64 only. The container needs CAP_BPF and CAP_PERFMON (and
# CAP_SYS_RESOURCE before Linux 5.11; deploy/CAPABILITIES.md says why), not
# privileged; --pid=host and the host's tracefs mounted: see
# docker-compose.yaml, or the Helm chart in deploy/helm.

# ---- build ------------------------------------------------------------------
# The BPF objects (bpf/*_bpfel.o and their Go bindings) are committed, so this
# stage needs only the Go toolchain: no clang, no libbpf headers.
FROM golang:1.26-bookworm AS build

WORKDIR /src

# Dependencies first, so editing the sources does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .

ARG VERSION=dev
# Static: the runtime image has no C library to link against.
ENV CGO_ENABLED=0
# The committed BPF objects are built for x86-64 (bpf2go -target amd64).
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    test "$(go env GOARCH)" = amd64 || { echo "memlock-exporter supports linux/amd64 only (GOARCH is $(go env GOARCH))" >&2; exit 1; } && \
    go build -trimpath -ldflags "-s -w -X main.version=$VERSION" \
      -o /out/memlock-exporter ./cmd/memlock-exporter

# ---- run --------------------------------------------------------------------
# scratch rather than gcr.io/distroless/static-debian12: distroless publishes
# no versioned tags (only latest/nonroot/debug, or digests), and the static
# binary needs nothing from an image except CA certificates, for OTLP over
# TLS, copied from the build stage (Go reads
# /etc/ssl/certs/ca-certificates.crt). There is no shell: run the
# preflight checks with
#   docker exec <container> /usr/local/bin/memlock-exporter --check
# and give MEMLOCK_EXPORTER_QUEUE_DIR a mounted volume (the image has no
# writable directories of its own).
FROM scratch

COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/memlock-exporter /usr/local/bin/memlock-exporter

# OCI annotations (https://github.com/opencontainers/image-spec/blob/main/annotations.md).
# VERSION, REVISION (the git commit) and CREATED (RFC 3339) come from the
# build (make image sets them). The repository declares no license: LICENSES
# stays NOASSERTION until it does.
ARG VERSION=dev
ARG REVISION=
ARG CREATED=
ARG LICENSES=NOASSERTION
LABEL org.opencontainers.image.title="memlock-exporter" \
      org.opencontainers.image.description="Traces the Linux mlock family (mlock, mlock2, munlock, mlockall, munlockall) with eBPF and exports OpenTelemetry logs, metrics and spans over OTLP." \
      org.opencontainers.image.source="https://github.com/memlock-exporter/memlock-exporter" \
      org.opencontainers.image.licenses="${LICENSES}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

# Root on purpose: loading and attaching BPF programs needs CAP_BPF and
# CAP_PERFMON (CAP_SYS_ADMIN on kernels before 5.8), which a non-root user
# inside the container does not get.
USER 0:0

ENTRYPOINT ["/usr/local/bin/memlock-exporter"]
