package e2e

// Checks of the files people use to try memlock-exporter in Docker:
// docker-compose.yaml, the Dockerfile it builds and the collector
// configuration it mounts. Docker cannot run here, so the compose file is
// loaded with compose-go (the library docker compose itself uses), and the
// collector configuration is checked for the pieces the demo relies on.

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

const (
	composeRepoRoot       = ".."
	composeFile           = "../docker-compose.yaml"
	composeExporterName   = "memlock-exporter"
	composeCollectorName  = "otel-collector"
	composeJaegerName     = "jaeger"
	composeCollectorImage = "otel/opentelemetry-collector-contrib"
	composeOTLPGRPCPort   = "4317"
	// The test collector's go.mod: the compose collector's version must match it.
	composeTestCollectorMod = "otelcol/go.mod"
)

// composeLoad loads docker-compose.yaml the way `docker compose` does:
// interpolation on, paths resolved against the file's directory, with env as
// the only environment (so the developer's shell cannot change the result).
func composeLoad(t *testing.T, env ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithEnv(env),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load %s: %v", composeFile, err)
	}
	return project
}

func composeService(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	svc, ok := p.Services[name]
	if !ok {
		t.Fatalf("%s: no service %q (services: %v)", composeFile, name, p.ServiceNames())
	}
	return svc
}

func composeAbsRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(composeRepoRoot)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestComposeFileIsValid(t *testing.T) {
	p := composeLoad(t)
	root := composeAbsRoot(t)
	exporter := composeService(t, p, composeExporterName)
	collector := composeService(t, p, composeCollectorName)

	t.Run("exporter privileges", func(t *testing.T) {
		if !exporter.Privileged {
			t.Errorf("%s: privileged is false; loading BPF programs needs CAP_BPF/CAP_PERFMON", composeExporterName)
		}
		if exporter.Pid != "host" {
			t.Errorf("%s: pid = %q, want host (to see the host's processes)", composeExporterName, exporter.Pid)
		}
	})

	t.Run("exporter mounts", func(t *testing.T) {
		for _, want := range []string{"/sys/kernel/btf", "/sys/kernel/tracing"} {
			i := slices.IndexFunc(exporter.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == want })
			if i < 0 {
				t.Errorf("%s: no volume mounted at %s (volumes: %v)", composeExporterName, want, exporter.Volumes)
				continue
			}
			v := exporter.Volumes[i]
			if v.Type != types.VolumeTypeBind || v.Source != want {
				t.Errorf("%s: %s is mounted from %s %q, want a bind mount of the host's %s", composeExporterName, want, v.Type, v.Source, want)
			}
			if !v.ReadOnly {
				t.Errorf("%s: %s is mounted read-write, want read-only (:ro)", composeExporterName, want)
			}
		}
	})

	t.Run("exporter build", func(t *testing.T) {
		b := exporter.Build
		if b == nil {
			t.Fatalf("%s: no build section; it must be built from the repository's Dockerfile", composeExporterName)
		}
		if b.Context != root {
			t.Errorf("%s: build context = %q, want the repository root %q", composeExporterName, b.Context, root)
		}
		dockerfile := b.Dockerfile
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		if !filepath.IsAbs(dockerfile) {
			dockerfile = filepath.Join(b.Context, dockerfile)
		}
		if filepath.Clean(dockerfile) != filepath.Join(root, "Dockerfile") {
			t.Errorf("%s: builds from %s, want the repository's Dockerfile", composeExporterName, dockerfile)
		}
		if _, err := os.Stat(dockerfile); err != nil {
			t.Errorf("%s: Dockerfile: %v", composeExporterName, err)
		}
		// Every build argument must be one the Dockerfile declares.
		args := dockerfileArgs(t, filepath.Join(root, "Dockerfile"))
		for name := range b.Args {
			if !slices.Contains(args, name) {
				t.Errorf("%s: build arg %s is not declared (ARG) in the Dockerfile (declared: %v)", composeExporterName, name, args)
			}
		}
	})

	t.Run("exporter sends to the collector", func(t *testing.T) {
		env := exporter.Environment
		raw := env["OTEL_EXPORTER_OTLP_ENDPOINT"]
		if raw == nil {
			t.Fatalf("%s: OTEL_EXPORTER_OTLP_ENDPOINT is not set", composeExporterName)
		}
		u, err := url.Parse(*raw)
		if err != nil {
			t.Fatalf("%s: OTEL_EXPORTER_OTLP_ENDPOINT=%q: %v", composeExporterName, *raw, err)
		}
		// http:// means plaintext gRPC: the collector in the compose file has no TLS.
		if u.Scheme != "http" || u.Hostname() != composeCollectorName || u.Port() != composeOTLPGRPCPort {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT=%q, want http://%s:%s", composeExporterName, *raw, composeCollectorName, composeOTLPGRPCPort)
		}
		if proto := env["OTEL_EXPORTER_OTLP_PROTOCOL"]; proto != nil && *proto != "grpc" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_PROTOCOL=%q, but port %s is the collector's OTLP/gRPC port", composeExporterName, *proto, composeOTLPGRPCPort)
		}
		for name, want := range map[string]string{
			"OTEL_SERVICE_NAME":          "memlock-exporter",
			"MEMLOCK_EXPORTER_LOG_LEVEL": "info",
		} {
			if got := env[name]; got == nil || *got != want {
				t.Errorf("%s: %s = %v, want %q", composeExporterName, name, composeStr(got), want)
			}
		}
		if _, ok := exporter.DependsOn[composeCollectorName]; !ok {
			t.Errorf("%s: does not depend_on %s", composeExporterName, composeCollectorName)
		}
		if exporter.Restart != types.RestartPolicyUnlessStopped {
			t.Errorf("%s: restart = %q, want %s", composeExporterName, exporter.Restart, types.RestartPolicyUnlessStopped)
		}
	})

	t.Run("collector image", func(t *testing.T) {
		name, tag, digest := composeSplitImage(collector.Image)
		if name != composeCollectorImage {
			t.Errorf("%s: image %q, want %s", composeCollectorName, collector.Image, composeCollectorImage)
		}
		if tag == "" && digest == "" || tag == "latest" {
			t.Fatalf("%s: image %q is not pinned to a version", composeCollectorName, collector.Image)
		}
		want := composeTestCollectorVersion(t)
		if tag != want {
			t.Errorf("%s: image tag %q, want %q: the version of the test collector (e2e/%s)", composeCollectorName, tag, want, composeTestCollectorMod)
		}
	})

	t.Run("collector ports", func(t *testing.T) {
		var grpc bool
		for _, port := range collector.Ports {
			if port.Published != "" && port.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %d is published on %q, want 127.0.0.1 only", composeCollectorName, port.Target, port.HostIP)
			}
			grpc = grpc || port.Target == 4317
		}
		if !grpc {
			t.Errorf("%s: OTLP/gRPC port 4317 is not published (ports: %v)", composeCollectorName, collector.Ports)
		}
	})

	t.Run("jaeger", func(t *testing.T) {
		jaeger := composeService(t, p, composeJaegerName)
		name, tag, _ := composeSplitImage(jaeger.Image)
		if name != "jaegertracing/jaeger" || !strings.HasPrefix(tag, "2.") {
			t.Errorf("%s: image %q, want jaegertracing/jaeger pinned to a 2.x version (OTLP in)", composeJaegerName, jaeger.Image)
		}
		var ui bool
		for _, port := range jaeger.Ports {
			if port.Published != "" && port.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %d is published on %q, want 127.0.0.1 only", composeJaegerName, port.Target, port.HostIP)
			}
			ui = ui || port.Target == 16686
		}
		if !ui {
			t.Errorf("%s: the UI port 16686 is not published", composeJaegerName)
		}
		if _, ok := collector.DependsOn[composeJaegerName]; !ok {
			t.Errorf("%s: does not depend_on %s", composeCollectorName, composeJaegerName)
		}
	})

	t.Run("collector config", func(t *testing.T) {
		target := composeConfigFlag(collector.Command)
		if target == "" {
			t.Fatalf("%s: command %q has no --config=<file>", composeCollectorName, collector.Command)
		}
		i := slices.IndexFunc(collector.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == target })
		if i < 0 {
			t.Fatalf("%s: nothing is mounted at %s, the --config file", composeCollectorName, target)
		}
		src := collector.Volumes[i].Source
		if rel, err := filepath.Rel(root, src); err != nil || !filepath.IsLocal(rel) {
			t.Fatalf("%s: config %s is mounted from %s, which is not in the repository", composeCollectorName, target, src)
		}
		composeCheckCollectorConfig(t, src)
	})
}

// TestComposeInterpolation checks that ${VAR:-default} values follow the
// environment, so `MEMLOCK_EXPORTER_LOG_LEVEL=debug docker compose up` works.
func TestComposeInterpolation(t *testing.T) {
	p := composeLoad(t, "MEMLOCK_EXPORTER_LOG_LEVEL=debug", "MEMLOCK_EXPORTER_VERSION=v9.9.9")
	exporter := composeService(t, p, composeExporterName)
	if got := exporter.Environment["MEMLOCK_EXPORTER_LOG_LEVEL"]; got == nil || *got != "debug" {
		t.Errorf("MEMLOCK_EXPORTER_LOG_LEVEL = %v with the variable set to debug, want debug", composeStr(got))
	}
	if exporter.Build == nil {
		t.Fatal("no build section")
	}
	if got := exporter.Build.Args["VERSION"]; got == nil || *got != "v9.9.9" {
		t.Errorf("build arg VERSION = %v with MEMLOCK_EXPORTER_VERSION=v9.9.9, want v9.9.9", composeStr(got))
	}
}

// composeCheckCollectorConfig parses the collector configuration and checks that
// OTLP comes in on 4317 and that the logs and metrics pipelines print it with
// the debug exporter; every component a pipeline names must be defined.
func composeCheckCollectorConfig(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("collector config: %v", err)
	}
	var cfg struct {
		Receivers  map[string]yaml.Node `yaml:"receivers"`
		Processors map[string]yaml.Node `yaml:"processors"`
		Exporters  map[string]yaml.Node `yaml:"exporters"`
		Service    struct {
			Pipelines map[string]struct {
				Receivers  []string `yaml:"receivers"`
				Processors []string `yaml:"processors"`
				Exporters  []string `yaml:"exporters"`
			} `yaml:"pipelines"`
		} `yaml:"service"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("collector config %s: %v", path, err)
	}

	otlp, ok := cfg.Receivers["otlp"]
	if !ok {
		t.Errorf("%s: no receivers.otlp", path)
	} else {
		var r struct {
			Protocols struct {
				GRPC *struct {
					Endpoint string `yaml:"endpoint"`
				} `yaml:"grpc"`
			} `yaml:"protocols"`
		}
		if err := otlp.Decode(&r); err != nil {
			t.Errorf("%s: receivers.otlp: %v", path, err)
		} else if r.Protocols.GRPC == nil {
			t.Errorf("%s: receivers.otlp.protocols.grpc is missing", path)
		} else if host, port, err := net.SplitHostPort(r.Protocols.GRPC.Endpoint); err != nil || port != composeOTLPGRPCPort || host != "0.0.0.0" {
			// 0.0.0.0: the exporter connects from another container.
			t.Errorf("%s: receivers.otlp.protocols.grpc.endpoint = %q, want 0.0.0.0:%s", path, r.Protocols.GRPC.Endpoint, composeOTLPGRPCPort)
		}
	}

	debug, ok := cfg.Exporters["debug"]
	if !ok {
		t.Errorf("%s: no exporters.debug", path)
	} else {
		var d struct {
			Verbosity string `yaml:"verbosity"`
		}
		if err := debug.Decode(&d); err != nil || d.Verbosity != "detailed" {
			t.Errorf("%s: exporters.debug.verbosity = %q (%v), want detailed", path, d.Verbosity, err)
		}
	}

	for _, name := range []string{"logs", "metrics"} {
		pl, ok := cfg.Service.Pipelines[name]
		if !ok {
			t.Errorf("%s: no service.pipelines.%s", path, name)
			continue
		}
		if !slices.Contains(pl.Receivers, "otlp") {
			t.Errorf("%s: service.pipelines.%s.receivers = %v, want otlp among them", path, name, pl.Receivers)
		}
		if !slices.Contains(pl.Exporters, "debug") {
			t.Errorf("%s: service.pipelines.%s.exporters = %v, want debug among them", path, name, pl.Exporters)
		}
	}
	// Spans go to the compose file's Jaeger over plaintext OTLP/gRPC.
	traces, ok := cfg.Service.Pipelines["traces"]
	if !ok || !slices.Contains(traces.Receivers, "otlp") {
		t.Errorf("%s: no traces pipeline receiving otlp", path)
	}
	var toJaeger bool
	for _, id := range traces.Exporters {
		var e struct {
			Endpoint string `yaml:"endpoint"`
			TLS      struct {
				Insecure bool `yaml:"insecure"`
			} `yaml:"tls"`
		}
		if node, ok := cfg.Exporters[id]; ok && strings.HasPrefix(id, "otlp") && node.Decode(&e) == nil &&
			e.Endpoint == composeJaegerName+":4317" && e.TLS.Insecure {
			toJaeger = true
		}
	}
	if !toJaeger {
		t.Errorf("%s: the traces pipeline exports %v, none of them plaintext OTLP/gRPC to %s:4317", path, traces.Exporters, composeJaegerName)
	}

	for name, pl := range cfg.Service.Pipelines {
		for _, c := range []struct {
			kind    string
			used    []string
			defined map[string]yaml.Node
		}{
			{"receivers", pl.Receivers, cfg.Receivers},
			{"processors", pl.Processors, cfg.Processors},
			{"exporters", pl.Exporters, cfg.Exporters},
		} {
			for _, id := range c.used {
				if _, ok := c.defined[id]; !ok {
					t.Errorf("%s: service.pipelines.%s uses %s %q, which is not defined under %s:", path, name, c.kind, id, c.kind)
				}
			}
		}
	}
}

// TestDockerfile checks the Dockerfile as text: pinned base images, a static
// build of ./cmd/memlock-exporter, the version stamped in, run as root, and
// a small runtime stage (dockerfileCheckRuntime): scratch, CA certificates,
// OCI labels, no RUN, an exec-form ENTRYPOINT.
func TestDockerfile(t *testing.T) {
	root := composeAbsRoot(t)
	path := filepath.Join(root, "Dockerfile")
	insts := dockerfileInstructions(t, path)

	stages := map[string]bool{} // names given with FROM ... AS name
	var froms, entrypoint int
	var build string
	for _, in := range insts {
		switch in.cmd {
		case "FROM":
			froms++
			var image, stage string
			for i, f := range in.fields {
				switch {
				case strings.HasPrefix(f, "--"): // --platform=...
				case image == "":
					image = f
				case strings.EqualFold(f, "AS") && i+1 < len(in.fields):
					stage = strings.ToLower(in.fields[i+1])
				}
			}
			if !stages[strings.ToLower(image)] && image != "scratch" {
				if _, tag, digest := composeSplitImage(image); tag == "" && digest == "" || tag == "latest" {
					t.Errorf("Dockerfile:%d: FROM %s: base image is not pinned to a tag or digest", in.line, image)
				}
			}
			if stage != "" {
				stages[stage] = true
			}
		case "RUN":
			if strings.Contains(in.args, "go build") {
				build += in.args + "\n"
			}
		case "ENTRYPOINT":
			entrypoint++
		case "USER":
			if u := strings.TrimSpace(in.args); u != "root" && u != "0" && !strings.HasPrefix(u, "0:") && !strings.HasPrefix(u, "root:") {
				t.Errorf("Dockerfile:%d: USER %s: the exporter must run as root (CAP_BPF, CAP_PERFMON)", in.line, u)
			}
		}
	}
	if froms < 2 {
		t.Errorf("Dockerfile: %d FROM lines, want a multi-stage build (build stage + small runtime image)", froms)
	}
	if !regexp.MustCompile(`(^|\s)\./cmd/memlock-exporter/?(\s|$)`).MatchString(build) {
		t.Errorf("Dockerfile: no RUN go build of ./cmd/memlock-exporter (go build steps: %q)", build)
	}
	if !strings.Contains(build, "-trimpath") {
		t.Errorf("Dockerfile: go build without -trimpath")
	}
	if !strings.Contains(build, "-X main.version=") {
		t.Errorf("Dockerfile: go build does not set main.version with -ldflags -X")
	}
	if !dockerfileSetsCGOOff(insts) {
		t.Errorf("Dockerfile: CGO_ENABLED=0 is not set (ENV, or on the go build line): the runtime image has no libc to link against")
	}
	if !slices.Contains(dockerfileArgs(t, path), "VERSION") {
		t.Errorf("Dockerfile: no ARG VERSION (docker build --build-arg VERSION=...)")
	}
	if entrypoint == 0 {
		t.Errorf("Dockerfile: no ENTRYPOINT")
	}
	dockerfileCheckRuntime(t, insts)

	// The build context must keep what the build needs, above all the
	// committed BPF objects (a "*.o" line would silently drop them).
	need := []string{"go.mod", "go.sum", "cmd/memlock-exporter/main.go"}
	objs, _ := filepath.Glob(filepath.Join(root, "bpf", "*_bpfel.o"))
	if len(objs) == 0 {
		t.Errorf("no committed BPF objects (bpf/*_bpfel.o) to build the image with")
	}
	for _, o := range objs {
		need = append(need, "bpf/"+filepath.Base(o))
	}
	composeCheckDockerignore(t, filepath.Join(root, ".dockerignore"), need)
}

// dockerfileOCILabels are the OCI annotations the runtime image must carry
// (https://github.com/opencontainers/image-spec/blob/main/annotations.md),
// each with the build argument its value must come from, if any.
var dockerfileOCILabels = map[string]string{
	"org.opencontainers.image.title":       "",
	"org.opencontainers.image.description": "",
	"org.opencontainers.image.source":      "",
	"org.opencontainers.image.licenses":    "",
	"org.opencontainers.image.version":     "VERSION",
	"org.opencontainers.image.revision":    "REVISION",
	"org.opencontainers.image.created":     "CREATED",
}

// dockerfileCACerts is where Go's crypto/x509 finds the CA bundle on a
// Debian-style file system; scratch has none of its own.
const dockerfileCACerts = "/etc/ssl/certs/ca-certificates.crt"

// dockerfileCheckRuntime checks the final stage, the image that ships: FROM
// scratch (or distroless static pinned by digest, since distroless has no
// versioned tags), nothing run in it, the binary and the CA certificates
// copied from a build stage, the OCI labels with their build arguments
// declared in the stage (an ARG before it does not reach its LABEL), a
// numeric USER (scratch has no /etc/passwd), and an exec-form ENTRYPOINT
// naming the copied binary.
func dockerfileCheckRuntime(t *testing.T, insts []dockerfileInstruction) {
	t.Helper()
	last := -1
	stages := map[string]bool{}
	for i, in := range insts {
		if in.cmd != "FROM" {
			continue
		}
		last = i
		for j, f := range in.fields {
			if strings.EqualFold(f, "AS") && j+1 < len(in.fields) {
				stages[strings.ToLower(in.fields[j+1])] = true
			}
		}
	}
	if last < 0 {
		t.Fatalf("Dockerfile: no FROM")
	}
	from := insts[last]
	image := ""
	for _, f := range from.fields {
		if !strings.HasPrefix(f, "--") {
			image = f
			break
		}
	}
	name, _, digest := composeSplitImage(image)
	switch {
	case image == "scratch":
	case strings.HasPrefix(name, "gcr.io/distroless/static"):
		if digest == "" {
			t.Errorf("Dockerfile:%d: FROM %s: distroless has no versioned tags; pin it by digest (@sha256:...)", from.line, image)
		}
	default:
		t.Errorf("Dockerfile:%d: final stage FROM %s, want scratch (or gcr.io/distroless/static pinned by digest): the binary is static", from.line, image)
	}

	final := insts[last+1:]
	args := map[string]bool{}
	labels := map[string]string{}
	copied := map[string]bool{} // destinations of COPY --from=<build stage>
	var entrypoint *dockerfileInstruction
	for i, in := range final {
		switch in.cmd {
		case "FROM":
			// not reached: final starts after the last FROM
		case "RUN":
			t.Errorf("Dockerfile:%d: RUN in the final stage: the runtime image has no shell; do the work in the build stage", in.line)
		case "ADD":
			t.Errorf("Dockerfile:%d: ADD in the final stage: COPY --from the build stage only", in.line)
		case "COPY":
			fromStage := ""
			var paths []string
			for _, f := range in.fields {
				if v, ok := strings.CutPrefix(f, "--from="); ok {
					fromStage = strings.ToLower(v)
				} else if !strings.HasPrefix(f, "--") {
					paths = append(paths, f)
				}
			}
			if !stages[fromStage] {
				t.Errorf("Dockerfile:%d: COPY %s: the final stage should copy only from a build stage (--from=<stage>), not from the build context", in.line, in.args)
				continue
			}
			if len(paths) >= 2 {
				copied[paths[len(paths)-1]] = true
			}
		case "ARG":
			if len(in.fields) > 0 {
				n, _, _ := strings.Cut(in.fields[0], "=")
				args[n] = true
			}
		case "LABEL":
			for k, v := range dockerfileLabels(in.args) {
				labels[k] = v
			}
			for k, arg := range dockerfileOCILabels {
				v, ok := labels[k]
				if !ok || arg == "" {
					continue
				}
				if !strings.Contains(v, "$"+arg) && !strings.Contains(v, "${"+arg+"}") {
					t.Errorf("Dockerfile:%d: LABEL %s=%q: want its value from the build argument %s", in.line, k, v, arg)
				} else if !args[arg] {
					t.Errorf("Dockerfile:%d: LABEL %s uses $%s, but the final stage declares no ARG %s before it (an ARG of another stage does not reach it)", in.line, k, arg, arg)
				}
			}
		case "USER":
			if image == "scratch" && !regexp.MustCompile(`^\d+(:\d+)?$`).MatchString(strings.TrimSpace(in.args)) {
				t.Errorf("Dockerfile:%d: USER %s: scratch has no /etc/passwd, so the user must be numeric (0:0)", in.line, in.args)
			}
		case "ENTRYPOINT":
			entrypoint = &final[i]
		}
	}

	if !copied[dockerfileCACerts] && !copied["/etc/ssl/certs/"] && !copied["/etc/ssl/certs"] {
		t.Errorf("Dockerfile: the final stage does not COPY --from the build stage the CA certificates to %s (OTLP over TLS needs them; copied: %v)", dockerfileCACerts, slices.Sorted(maps.Keys(copied)))
	}
	for k := range dockerfileOCILabels {
		if v, ok := labels[k]; !ok {
			t.Errorf("Dockerfile: the final stage has no LABEL %s", k)
		} else if v == "" && dockerfileOCILabels[k] == "" {
			t.Errorf("Dockerfile: LABEL %s is empty", k)
		}
	}
	if entrypoint == nil {
		t.Errorf("Dockerfile: no ENTRYPOINT in the final stage")
		return
	}
	var argv []string
	if err := json.Unmarshal([]byte(entrypoint.args), &argv); err != nil || len(argv) == 0 {
		t.Errorf("Dockerfile:%d: ENTRYPOINT %s: want the exec form [\"/path/to/binary\"] (there is no shell for the shell form)", entrypoint.line, entrypoint.args)
		return
	}
	if path.Base(argv[0]) != "memlock-exporter" || !copied[argv[0]] {
		t.Errorf("Dockerfile:%d: ENTRYPOINT runs %s, want the memlock-exporter binary the final stage copies (copied: %v)", entrypoint.line, argv[0], slices.Sorted(maps.Keys(copied)))
	}
}

// dockerfileLabels parses the key=value pairs of a LABEL instruction,
// values bare or double-quoted (with backslash escapes).
func dockerfileLabels(args string) map[string]string {
	out := map[string]string{}
	re := regexp.MustCompile(`([A-Za-z0-9._/-]+)=("((?:[^"\\]|\\.)*)"|(\S*))`)
	for _, m := range re.FindAllStringSubmatch(args, -1) {
		v := m[4]
		if strings.HasPrefix(m[2], `"`) {
			v = regexp.MustCompile(`\\(.)`).ReplaceAllString(m[3], "$1")
		}
		out[m[1]] = v
	}
	return out
}

type dockerfileInstruction struct {
	line   int    // first line of the instruction
	cmd    string // upper case: FROM, RUN, ...
	args   string // the rest, continuation lines joined with spaces
	fields []string
}

// dockerfileInstructions splits a Dockerfile into instructions, joining
// backslash-continued lines and dropping comments and blank lines. Heredocs
// are not supported (the Dockerfile does not use them).
func dockerfileInstructions(t *testing.T, path string) []dockerfileInstruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	defer f.Close()
	var out []dockerfileInstruction
	var cur strings.Builder
	start, n := 0, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue // also inside a continued instruction, as Docker does
		}
		if cur.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		text := cur.String()
		cur.Reset()
		cmd, args, _ := strings.Cut(text, " ")
		out = append(out, dockerfileInstruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), fields: strings.Fields(args)})
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	if cur.Len() > 0 {
		t.Fatalf("Dockerfile: ends inside a continued line (trailing backslash)")
	}
	return out
}

// dockerfileArgs lists the names of the Dockerfile's ARG instructions.
func dockerfileArgs(t *testing.T, path string) []string {
	t.Helper()
	var names []string
	for _, in := range dockerfileInstructions(t, path) {
		if in.cmd == "ARG" && len(in.fields) > 0 {
			name, _, _ := strings.Cut(in.fields[0], "=")
			names = append(names, name)
		}
	}
	return names
}

// dockerfileSetsCGOOff reports whether CGO_ENABLED=0 is in force for the go
// build: set by ENV, or on a RUN line that runs go build.
func dockerfileSetsCGOOff(insts []dockerfileInstruction) bool {
	cgoOff := regexp.MustCompile(`(^|\s)CGO_ENABLED=0(\s|$)`)
	for _, in := range insts {
		switch in.cmd {
		case "ENV":
			if cgoOff.MatchString(in.args) || len(in.fields) == 2 && in.fields[0] == "CGO_ENABLED" && in.fields[1] == "0" {
				return true
			}
		case "RUN":
			if strings.Contains(in.args, "go build") && cgoOff.MatchString(in.args) {
				return true
			}
		}
	}
	return false
}

// composeCheckDockerignore fails if a line of .dockerignore excludes one of the
// files the image build needs. It understands the plain patterns the file
// uses (path.Match globs anchored at the context root, directory prefixes,
// a leading "**/"), and "!" re-inclusions.
func composeCheckDockerignore(t *testing.T, path string, need []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf(".dockerignore: %v (it keeps .git and build output out of the build context)", err)
	}
	var patterns []string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	for _, want := range []string{".git", "bin"} {
		if !composeIgnored(patterns, want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
	for _, file := range need {
		if composeIgnored(patterns, file) {
			t.Errorf(".dockerignore excludes %s, which the image build needs", file)
		}
	}
}

func composeIgnored(patterns []string, file string) bool {
	ignored := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/"), "/")
		if composeMatch(p, file) {
			ignored = !neg
		}
	}
	return ignored
}

// composeMatch reports whether pattern matches file or one of its parent
// directories.
func composeMatch(pattern, file string) bool {
	parts := strings.Split(file, "/")
	for i := 1; i <= len(parts); i++ {
		prefix := strings.Join(parts[:i], "/")
		if ok, _ := filepath.Match(pattern, prefix); ok {
			return true
		}
		if rest, ok := strings.CutPrefix(pattern, "**/"); ok {
			for j := 0; j < i; j++ {
				if ok, _ := filepath.Match(rest, strings.Join(parts[j:i], "/")); ok {
					return true
				}
			}
		}
	}
	return false
}

// composeSplitImage splits "name[:tag][@digest]"; a registry's port
// ("host:5000/name") is not taken for a tag.
func composeSplitImage(ref string) (name, tag, digest string) {
	name, digest, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
	}
	return name, tag, digest
}

// composeConfigFlag returns the file given to the collector's --config flag
// ("--config=F", "--config F", with or without the "file:" scheme).
func composeConfigFlag(cmd types.ShellCommand) string {
	for i, arg := range cmd {
		var v string
		if rest, ok := strings.CutPrefix(arg, "--config="); ok {
			v = rest
		} else if arg == "--config" && i+1 < len(cmd) {
			v = cmd[i+1]
		} else {
			continue
		}
		return strings.TrimPrefix(v, "file:")
	}
	return ""
}

// composeTestCollectorVersion reads the version of the collector the e2e
// tests build (go.opentelemetry.io/collector/otelcol in e2e/otelcol/go.mod),
// without the leading "v": the contrib image tags have none.
func composeTestCollectorVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(composeTestCollectorMod)
	if err != nil {
		t.Fatalf("test collector version: %v", err)
	}
	m := regexp.MustCompile(`(?m)^\s*go\.opentelemetry\.io/collector/otelcol\s+v(\S+)`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("%s: no go.opentelemetry.io/collector/otelcol requirement", composeTestCollectorMod)
	}
	return string(m[1])
}

func composeStr(p *string) string {
	if p == nil {
		return "<unset>"
	}
	return `"` + *p + `"`
}
