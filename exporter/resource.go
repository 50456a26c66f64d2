package exporter

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	stdsemconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"golang.org/x/sys/unix"

	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// DefaultServiceName is the resource's service.name unless the user's
// resource attributes say otherwise.
const DefaultServiceName = "memlock-exporter"

// newResource describes this process: service.name (default
// DefaultServiceName), service.version, host.name, host.id, os.type,
// os.version (the kernel release) and telemetry.sdk.*, then user, the
// attributes of OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, which win.
// The resource is built from these alone: the SDK's environment detector
// is not used, config has read those variables. On error the resource
// holds what could be detected.
func newResource(ctx context.Context, serviceVersion string, user []attribute.KeyValue) (*resource.Resource, error) {
	opts := []resource.Option{
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(stdsemconv.ServiceName(DefaultServiceName)),
	}
	if serviceVersion != "" {
		opts = append(opts, resource.WithAttributes(stdsemconv.ServiceVersion(serviceVersion)))
	}
	opts = append(opts,
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithHostID(),
		resource.WithOSType(),
		resource.WithDetectors(osVersionDetector{}),
		// Last, so that the user's settings win.
		resource.WithAttributes(user...),
	)
	res, err := resource.New(ctx, opts...)
	if err != nil {
		return res, fmt.Errorf("build resource: %w", err)
	}
	return res, nil
}

// withoutProcessIdentity returns attrs without the attributes that name a
// process (semconv.ProcessResourceAttributes): under a process's resource,
// the exporter's own (say, a container.id given in OTEL_RESOURCE_ATTRIBUTES)
// would misname the process.
func withoutProcessIdentity(attrs []attribute.KeyValue) []attribute.KeyValue {
	return slices.DeleteFunc(slices.Clone(attrs), func(kv attribute.KeyValue) bool {
		return slices.Contains(semconv.ProcessResourceAttributes, kv.Key)
	})
}

// osVersionDetector sets os.version to the kernel's release (uname -r); the
// SDK's WithOS gives os.description, not os.version.
type osVersionDetector struct{}

func (osVersionDetector) Detect(context.Context) (*resource.Resource, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil, fmt.Errorf("uname: %w", err)
	}
	release, _, _ := bytes.Cut(u.Release[:], []byte{0})
	return resource.NewWithAttributes(semconv.SchemaURL, stdsemconv.OSVersion(string(release))), nil
}
