// Package collector holds the tests of the OpenTelemetry Collector agent
// configuration in this directory (agent.yaml, rbac.yaml and the Helm values
// of values-opentelemetry-collector.yaml): they load it with the collector's
// own configuration machinery and the very components it names, pinned in
// go.mod to the release it is written for, and run its k8s_attributes
// processor against a fake Kubernetes API on records shaped like the ones
// memlock-exporter sends. It is a module of its own so that the main module
// does not depend on the collector.
package collector
