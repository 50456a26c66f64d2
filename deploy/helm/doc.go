// Package helmchart renders the memlock-exporter Helm chart (the
// memlock-exporter directory beside this file) with the Helm Go SDK, client
// side only, as `helm template` does. Its tests lint the chart, render it
// with several value sets and check the rendered objects strictly against
// the Kubernetes API types; cmd/helm-template prints the rendering.
//
// It is a Go module of its own so that the daemon's module does not depend
// on Helm.
package helmchart
