# syntax=docker/dockerfile:1
#
# memlock-exporter container image.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t memlock-exporter .
#   docker compose up --build        (exporter + collector, see docker-compose.yaml)
#
# The container must run privileged (or with CAP_BPF, CAP_PERFMON and
# CAP_SYS_RESOURCE), with --pid=host and the host's tracefs mounted: see
# docker-compose.yaml for the full set.

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
ENV CGO_ENABLED=0
# The committed BPF objects are built for x86-64 (bpf2go -target amd64).
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    test "$(go env GOARCH)" = amd64 || { echo "memlock-exporter supports linux/amd64 only (GOARCH is $(go env GOARCH))" >&2; exit 1; } && \
    go build -trimpath -ldflags "-s -w -X main.version=$VERSION" \
      -o /out/memlock-exporter ./cmd/memlock-exporter

# ---- run --------------------------------------------------------------------
# debian:bookworm-slim rather than gcr.io/distroless/static-debian12: distroless
# publishes no versioned tags (only latest/nonroot/debug, or digests), while
# bookworm-slim is a pinned release line, the same Debian as the build stage
# and CI, and keeps a shell for `docker exec ... memlock-exporter --check`.
# The binary is static (CGO_ENABLED=0), so it needs nothing else from the
# image except CA certificates for OTLP over TLS, copied from the build stage
# (bookworm-slim does not ship them).
FROM debian:bookworm-slim

COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/memlock-exporter /usr/local/bin/memlock-exporter

# Root on purpose: loading and attaching BPF programs needs CAP_BPF and
# CAP_PERFMON (CAP_SYS_ADMIN on kernels before 5.8), which a non-root user
# inside the container does not get.
USER root

ENTRYPOINT ["/usr/local/bin/memlock-exporter"]
