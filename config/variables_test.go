package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite README.md's table of variables from Markdown() (go generate ./config)")

func TestVariables(t *testing.T) {
	vars := Variables()
	byName := map[string]Variable{}
	for i, v := range vars {
		if _, dup := byName[v.Name]; dup {
			t.Errorf("%s listed twice", v.Name)
		}
		byName[v.Name] = v
		if v.Description == "" || v.Allowed == "" {
			t.Errorf("%s: Description and Allowed must be set: %+v", v.Name, v)
		}
		if strings.ContainsAny(v.Name+v.Default+v.Allowed+v.Description, "\t\n|`") {
			t.Errorf("%s: a tab, newline, | or ` would break a table: %+v", v.Name, v)
		}
		ours := strings.HasPrefix(v.Name, Prefix)
		if ours != (i < len(fields())) {
			t.Errorf("%s at %d: ours must come first, in field order", v.Name, i)
		}
		if !ours && !strings.HasPrefix(v.Name, "OTEL_") && v.Name != "GOMEMLIMIT" {
			t.Errorf("%s: neither ours, nor a standard OTEL_ variable, nor GOMEMLIMIT", v.Name)
		}
	}
	for i, f := range fields() {
		if v := vars[i]; v.Name != f.name || v.Default != f.def || v.Description != f.help {
			t.Errorf("Variables()[%d] = %+v, want field %s's tags", i, v, f.name)
		}
	}

	// The standard variables the design promises, with our defaults.
	for name, def := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":    "http://localhost:4317",
		"OTEL_EXPORTER_OTLP_PROTOCOL":    "grpc",
		"OTEL_EXPORTER_OTLP_HEADERS":     "",
		"OTEL_EXPORTER_OTLP_INSECURE":    "false",
		"OTEL_LOGS_EXPORTER":             "otlp",
		"OTEL_METRICS_EXPORTER":          "otlp",
		"OTEL_TRACES_EXPORTER":           "otlp",
		"OTEL_METRIC_EXPORT_INTERVAL":    "60000",
		"OTEL_BLRP_MAX_QUEUE_SIZE":       "8192",
		"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "2048",
		"OTEL_SERVICE_NAME":              "memlock-exporter",
		"OTEL_RESOURCE_ATTRIBUTES":       "",
		"OTEL_SDK_DISABLED":              "false",
		"GOMEMLIMIT":                     "24MiB",
	} {
		if v, ok := byName[name]; !ok {
			t.Errorf("%s not listed", name)
		} else if v.Default != def {
			t.Errorf("%s: default %q, want %q", name, v.Default, def)
		}
	}

	// The listed defaults are what Load does when nothing is set. The
	// service name's and GOMEMLIMIT's are applied elsewhere.
	var environ []string
	for _, v := range vars {
		if v.Name != "OTEL_SERVICE_NAME" && v.Name != "GOMEMLIMIT" {
			environ = append(environ, v.Name+"="+v.Default)
		}
	}
	if got := load(t, environ...); !reflect.DeepEqual(got, defaults()) {
		t.Errorf("Load(listed defaults) =\n%+v, want\n%+v", got, defaults())
	}

	// The slice is the caller's.
	vars[0].Name = "changed"
	if Variables()[0].Name == "changed" {
		t.Error("Variables shares its slice")
	}
}

// TestVariablesAreRead: Load reads every variable listed (but GOMEMLIMIT,
// the runtime's): a value of "x" is an error naming it, or changes Config.
func TestVariablesAreRead(t *testing.T) {
	for _, v := range Variables() {
		if v.Name == "GOMEMLIMIT" {
			continue
		}
		c, err := Load([]string{v.Name + "=x"})
		var e *Error
		switch {
		case errors.As(err, &e) && e.Var == v.Name:
		case err != nil:
			t.Errorf("%s=x: %v", v.Name, err)
		case reflect.DeepEqual(c, defaults()):
			t.Errorf("%s=x changes nothing: is it read?", v.Name)
		}
	}
}

func TestUsage(t *testing.T) {
	var buf bytes.Buffer
	Usage(&buf)
	out := buf.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	vars := Variables()
	if len(lines) != len(vars)+1 {
		t.Fatalf("%d lines, want a header and %d variables:\n%s", len(lines), len(vars), out)
	}
	if !strings.HasPrefix(lines[0], "VARIABLE ") {
		t.Errorf("header = %q", lines[0])
	}
	defCol := strings.Index(lines[0], "DEFAULT")
	descCol := strings.Index(lines[0], "DESCRIPTION")
	for i, v := range vars {
		line := lines[i+1]
		def := v.Default
		if def == "" {
			def = "-"
		}
		if !strings.HasPrefix(line, v.Name+" ") || line[defCol:defCol+len(def)] != def ||
			!strings.HasPrefix(line[descCol:], v.Description+" Allowed: "+v.Allowed+".") {
			t.Errorf("line %q is not aligned name/default/description for %+v", line, v)
		}
	}
}

func TestMarkdown(t *testing.T) {
	md := Markdown()
	lines := strings.Split(strings.TrimSuffix(md, "\n"), "\n")
	vars := Variables()
	if len(lines) != len(vars)+2 {
		t.Fatalf("%d lines, want a header, a rule and %d variables", len(lines), len(vars))
	}
	for i, v := range vars {
		line := lines[i+2]
		if !strings.HasPrefix(line, "| `"+v.Name+"` | ") {
			t.Errorf("row %d = %q, want %s's", i, line, v.Name)
		}
		// Outside code spans, nothing Markdown would take for markup.
		for j, part := range strings.Split(line, "`") {
			if j%2 == 0 && strings.ContainsAny(part, "_*<>") {
				t.Errorf("row of %s has markup outside code spans: %q", v.Name, part)
			}
		}
		if cells := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|"); cells != 5 {
			t.Errorf("row of %s has %d cell borders, want 5: %q", v.Name, cells, line)
		}
	}
	for in, want := range map[string]string{
		"on: hook do_mlock (memlock.kernel.duration); e.g. 0.9 or 1.5MiB.": "on: hook `do_mlock` (`memlock.kernel.duration`); e.g. 0.9 or 1.5MiB.",
		"via /proc/<pid>/root/... with --print, a|b":                       "via `/proc/<pid>/root/`... with `--print`, a\\|b",
		"grpc or http/protobuf (case-insensitive)":                         "grpc or `http/protobuf` (case-insensitive)",
		"key=value pairs (e.g. a=1,b=2)":                                   "`key=value` pairs (e.g. `a=1,b=2`)",
	} {
		if got := markdownText(in); got != want {
			t.Errorf("markdownText(%q) = %q, want %q", in, got, want)
		}
	}
}

// The README's table of variables lies between these markers.
const (
	readmeBegin = "<!-- config:variables:begin -->\n"
	readmeEnd   = "<!-- config:variables:end -->\n"
)

// TestREADMETable keeps README.md's table equal to Markdown(); with
// -update-readme (go generate ./config) it rewrites the table instead.
func TestREADMETable(t *testing.T) {
	path := filepath.Join("..", "README.md")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	begin := strings.Index(doc, readmeBegin)
	end := strings.Index(doc, readmeEnd)
	if begin < 0 || end < begin {
		t.Fatalf("%s has no %q ... %q block", path, strings.TrimSpace(readmeBegin), strings.TrimSpace(readmeEnd))
	}
	begin += len(readmeBegin)
	want := Markdown()
	if *updateREADME {
		if err := os.WriteFile(path, []byte(doc[:begin]+want+doc[end:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got := doc[begin:end]; got != want {
		t.Errorf("README.md's table of variables differs from config.Markdown(): run `go generate ./config`\ngot:\n%s\nwant:\n%s", got, want)
	}
}
