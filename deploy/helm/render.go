package helmchart

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/strvals"
)

// ChartDir is the chart's directory, relative to this module's root.
const ChartDir = "memlock-exporter"

//go:embed all:memlock-exporter
var chartFS embed.FS

// Chart loads the chart embedded in the binary (the files of ChartDir when
// it was built).
func Chart() (*chart.Chart, error) {
	var files []*archive.BufferedFile
	err := fs.WalkDir(chartFS, ChartDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := chartFS.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, &archive.BufferedFile{Name: strings.TrimPrefix(p, ChartDir+"/"), Data: data})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return loader.LoadFiles(files)
}

// KubeVersion is the Kubernetes version renderings assume by default
// (.Capabilities.KubeVersion; the chart's kubeVersion constraint is checked
// against it). Without it Helm assumes the version of its client-go, or
// v1.20.0 where the binary's build information lacks it (in tests).
const KubeVersion = "v1.33.0"

// Options of a rendering.
type Options struct {
	ReleaseName string // default "memlock-exporter"
	Namespace   string // default "monitoring"
	KubeVersion string // default KubeVersion
}

func (o Options) withDefaults() Options {
	if o.ReleaseName == "" {
		o.ReleaseName = "memlock-exporter"
	}
	if o.Namespace == "" {
		o.Namespace = "monitoring"
	}
	if o.KubeVersion == "" {
		o.KubeVersion = KubeVersion
	}
	return o
}

// Rendering is the result of rendering the chart.
type Rendering struct {
	// Manifest is the rendered YAML of every object, documents separated by
	// "---" lines, as `helm template` prints it (without hooks; the chart
	// has none).
	Manifest string
	// Notes is the rendered NOTES.txt.
	Notes string
}

// Render renders the embedded chart with the given values (merged over
// values.yaml, validated against values.schema.json), client-side only:
// an install dry run that contacts no cluster.
func Render(vals map[string]any, opts Options) (*Rendering, error) {
	ch, err := Chart()
	if err != nil {
		return nil, fmt.Errorf("load chart: %w", err)
	}
	opts = opts.withDefaults()
	install := action.NewInstall(action.NewConfiguration())
	install.DryRunStrategy = action.DryRunClient
	install.Replace = true // no release-name check against any storage
	install.ReleaseName = opts.ReleaseName
	install.Namespace = opts.Namespace
	if install.KubeVersion, err = common.ParseKubeVersion(opts.KubeVersion); err != nil {
		return nil, fmt.Errorf("kube version: %w", err)
	}
	if vals == nil {
		vals = map[string]any{}
	}
	r, err := install.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	rel, ok := r.(*release.Release)
	if !ok {
		return nil, fmt.Errorf("unexpected release type %T", r)
	}
	if len(rel.Hooks) != 0 {
		return nil, fmt.Errorf("the chart has %d hooks; Render does not print hooks", len(rel.Hooks))
	}
	notes := ""
	if rel.Info != nil {
		notes = rel.Info.Notes
	}
	return &Rendering{Manifest: rel.Manifest, Notes: notes}, nil
}

// ParseSet parses --set style assignments (a.b=c,d=e), later ones winning,
// into a values map.
func ParseSet(sets []string) (map[string]any, error) {
	vals := map[string]any{}
	for _, s := range sets {
		if err := strvals.ParseInto(s, vals); err != nil {
			return nil, fmt.Errorf("--set %s: %w", s, err)
		}
	}
	return vals, nil
}

// templateFiles lists the chart's template files (for tests).
func templateFiles() ([]string, error) {
	var names []string
	err := fs.WalkDir(chartFS, path.Join(ChartDir, "templates"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	})
	sort.Strings(names)
	return names, err
}
