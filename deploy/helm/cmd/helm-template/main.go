// Command helm-template prints the memlock-exporter Helm chart rendered
// with its default values, as `helm template` would, without a helm binary
// or a cluster (make helm-template):
//
//	cd deploy/helm && go run ./cmd/helm-template [--set key=value]... [--notes]
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	helmchart "github.com/memlock-exporter/memlock-exporter/deploy/helm"
)

type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, ",") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	var sets setFlags
	flag.Var(&sets, "set", "set a value, as helm's --set (key=value[,key=value]); repeatable")
	name := flag.String("name", "memlock-exporter", "release name")
	namespace := flag.String("namespace", "monitoring", "release namespace")
	kubeVersion := flag.String("kube-version", helmchart.KubeVersion, "Kubernetes version assumed (.Capabilities.KubeVersion)")
	notes := flag.Bool("notes", false, "print the rendered NOTES.txt after the manifests")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "helm-template: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	vals, err := helmchart.ParseSet(sets)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helm-template:", err)
		os.Exit(2)
	}
	r, err := helmchart.Render(vals, helmchart.Options{ReleaseName: *name, Namespace: *namespace, KubeVersion: *kubeVersion})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helm-template:", err)
		os.Exit(1)
	}
	fmt.Print(r.Manifest)
	if *notes {
		fmt.Print("\n# NOTES:\n")
		for _, l := range strings.Split(strings.TrimRight(r.Notes, "\n"), "\n") {
			fmt.Println("#", l)
		}
	}
}
