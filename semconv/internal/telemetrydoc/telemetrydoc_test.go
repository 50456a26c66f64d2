package telemetrydoc

import (
	"bytes"
	"strings"
	"testing"

	"github.com/memlock-exporter/memlock-exporter/semconv"
)

const semconvDir = "../.."

func TestText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain words.", "plain words."},
		{"Best effort, read from /proc/<pid>/exe;\n  absent.", `Best effort, read from /proc/\<pid\>/exe; absent.`},
		{"The syscalls:sys_enter_*/sys_exit_* tracepoints.", `The syscalls:sys_enter\_\*/sys_exit\_\* tracepoints.`},
		{"keep `a|b <c> *d*` code", "keep `a\\|b <c> *d*` code"},
		{"keep ``a ` b`` long code", "keep ``a ` b`` long code"},
		{"stray ` backtick", "stray \\` backtick"},
		{"a [link](https://example.com/x) and [b]", `a [link](https://example.com/x) and \[b\]`},
		{"a|b & c", `a\|b &amp; c`},
		{"# not a heading", `\# not a heading`},
		{"- not a list", `\- not a list`},
		{"1. not a list", `1\. not a list`},
		{"snake_case stays", "snake_case stays"},
		{"_emphasis_", `\_emphasis\_`},
	} {
		if got := text(tc.in); got != tc.want {
			t.Errorf("text(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mlock2", "`mlock2`"},
		{"MCL_CURRENT|MCL_FUTURE", "`MCL_CURRENT\\|MCL_FUTURE`"},
		{"a`b", "``a`b``"},
		{"`x", "`` `x ``"},
		{"", ""},
	} {
		if got := code(tc.in); got != tc.want {
			t.Errorf("code(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHuman(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{2.5e-6, "s", "2.5 µs"},
		{0.025, "s", "25 ms"},
		{1, "s", "1 s"},
		{4096, "By", "4 KiB"},
		{16 << 30, "By", "16 GiB"},
		{100, "By", "100 B"},
		{3, "{call}", ""},
	} {
		if got := human(tc.v, tc.unit); got != tc.want {
			t.Errorf("human(%g, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
}

// cells splits a table row on its unescaped pipes.
func cells(row string) []string {
	var out []string
	cur := strings.Builder{}
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\' && i+1 < len(row):
			cur.WriteByte(row[i])
			cur.WriteByte(row[i+1])
			i++
		case row[i] == '|':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(row[i])
		}
	}
	return append(out, cur.String())
}

// checkDoc checks that every table is well formed (each row as many cells
// as its header, no blank cell) and returns the headings.
func checkDoc(t *testing.T, doc []byte) map[string]bool {
	t.Helper()
	headings := map[string]bool{}
	lines := strings.Split(string(doc), "\n")
	width := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "#") {
			headings[l] = true
		}
		if !strings.HasPrefix(l, "|") {
			if width > 0 && l != "" {
				t.Errorf("line %d: table not followed by a blank line: %q", i+1, l)
			}
			width = 0
			continue
		}
		c := cells(l)
		if c[0] != "" || c[len(c)-1] != "" {
			t.Errorf("line %d: row does not start and end with a pipe: %q", i+1, l)
		}
		c = c[1 : len(c)-1]
		if width == 0 {
			width = len(c)
			if i+1 >= len(lines) || len(cells(lines[i+1]))-2 != width || !strings.HasPrefix(lines[i+1], "| ---") {
				t.Errorf("line %d: table header without a delimiter row of %d cells", i+1, width)
			}
			if i > 0 && lines[i-1] != "" {
				t.Errorf("line %d: table not preceded by a blank line", i+1)
			}
			continue
		}
		if len(c) != width {
			t.Errorf("line %d: %d cells, header has %d: %q", i+1, len(c), width, l)
		}
		for _, cell := range c {
			if strings.TrimSpace(cell) == "" {
				t.Errorf("line %d: blank cell: %q", i+1, l)
			}
		}
	}
	return headings
}

func TestRenderCoversEverything(t *testing.T) {
	src, err := Load(semconvDir)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Render(src)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Render(src)
	if err != nil || !bytes.Equal(doc, again) {
		t.Fatalf("two renderings differ (err %v)", err)
	}
	h := checkDoc(t, doc)
	for _, e := range semconv.Events {
		if !h["### `"+e.Name+"`"] {
			t.Errorf("no section for event %s", e.Name)
		}
	}
	for _, m := range semconv.Metrics {
		if !h["### `"+m.Name+"`"] {
			t.Errorf("no section for metric %s", m.Name)
		}
	}
	for _, a := range semconv.CustomAttributes {
		if !h["### `"+string(a.Key)+"`"] {
			t.Errorf("no section for attribute %s", a.Key)
		}
		for _, m := range a.Members {
			if !bytes.Contains(doc, []byte("| `"+m+"` |")) {
				t.Errorf("attribute %s: member %s not listed", a.Key, m)
			}
		}
	}
	for _, k := range semconv.StandardAttributes {
		if !bytes.Contains(doc, []byte("\n| `"+string(k)+"` | `")) {
			t.Errorf("standard attribute %s not listed", k)
		}
	}
	// The process's identity is in the Resource section, and in no event's
	// table: the events section says where it is.
	resource, events := section(doc, "## Resource"), section(doc, "## Events")
	if resource == "" || events == "" {
		t.Fatalf("no Resource section (%d bytes) or Events section (%d bytes)", len(resource), len(events))
	}
	if strings.Index(string(doc), "## Resource") > strings.Index(string(doc), "## Events") {
		t.Errorf("the Resource section comes after the Events section, which refers to it")
	}
	for _, k := range semconv.ProcessResourceAttributes {
		row := "\n| `" + string(k) + "` | "
		if !strings.Contains(resource, row) {
			t.Errorf("resource attribute %s not listed in the Resource section", k)
		}
		if strings.Contains(events, row) {
			t.Errorf("resource attribute %s listed in the Events section", k)
		}
	}
	for _, s := range []string{"- Identified by: `process.pid`, `process.creation.time`\n", "- Associated with: all events\n"} {
		if !strings.Contains(resource, s) {
			t.Errorf("Resource section lacks %q", s)
		}
	}
	if n, want := strings.Count(events, "\n- Resource: `memlock.process` (see [Resource](#resource))\n"), len(semconv.Events); n != want {
		t.Errorf("%d events name their resource, want %d", n, want)
	}
	if !strings.Contains(events, "sits under the resource") {
		t.Errorf("the Events section does not say its records sit under a resource")
	}
	for _, s := range []string{"`0.0000025` (2.5 µs)", "`17179869184` (16 GiB)", "DO NOT EDIT", "go generate ./semconv", "1.43.0"} {
		if !bytes.Contains(doc, []byte(s)) {
			t.Errorf("document lacks %q", s)
		}
	}
}

// section returns the part of doc from the heading line to the next heading
// of the same level, or "".
func section(doc []byte, heading string) string {
	s := string(doc)
	i := strings.Index(s, "\n"+heading+"\n")
	if i < 0 {
		return ""
	}
	s = s[i+1:]
	level := heading[:strings.IndexByte(heading, ' ')+1] // "## "
	if j := strings.Index(s[len(heading):], "\n"+level); j >= 0 {
		return s[:len(heading)+j+1]
	}
	return s
}

// withGroups renders the real registry with extra groups appended.
func withGroups(t *testing.T, extra string) ([]byte, error) {
	t.Helper()
	src, err := Load(semconvDir)
	if err != nil {
		t.Fatal(err)
	}
	src.Registry = append(bytes.TrimRight(src.Registry, "\n"), []byte("\n"+extra)...)
	return Render(src)
}

// TestNewGroups checks that what the registry gains is documented without
// changing the generator: a span, a gauge, a new attribute, a second entity.
func TestNewGroups(t *testing.T) {
	doc, err := withGroups(t, `
  - id: registry.memlock.test
    type: attribute_group
    brief: Test attributes.
    attributes:
      - id: memlock.test.flag
        type: boolean
        stability: development
        brief: A test flag with a | pipe.
        examples: [true]
  - id: span.memlock.call
    type: span
    span_kind: internal
    stability: development
    brief: One call of the family.
    attributes:
      - ref: memlock.syscall
        requirement_level: required
      - ref: memlock.test.flag
        requirement_level: opt_in
      - ref: process.vpid
  - id: metric.memlock.test.gauge
    type: metric
    metric_name: memlock.test.gauge
    instrument: gauge
    unit: By
    stability: development
    brief: A test gauge.
    entity_associations: [memlock.test.thing]
  - id: entity.memlock.test.thing
    type: entity
    name: memlock.test.thing
    stability: development
    brief: A test entity.
    attributes:
      - ref: memlock.test.flag
      - ref: container.id
        role: descriptive
`)
	if err != nil {
		t.Fatal(err)
	}
	h := checkDoc(t, doc)
	for _, want := range []string{"## Spans", "### `memlock.call`", "### `memlock.test.gauge`", "### `memlock.test.flag`", "### `memlock.test.thing`"} {
		if !h[want] {
			t.Errorf("no heading %q", want)
		}
	}
	for _, want := range []string{
		"| `memlock.test.flag` | `boolean` | Opt-in | A test flag with a \\| pipe. |",
		"| `process.vpid` | `int` |",
		"- **Spans.** 1 [span](#spans)",
		"; span `memlock.call`; metrics ",
		"- **Resource.** 2 [entities](#resource) (`memlock.process`, `memlock.test.thing`)",
		// A ref without a role is identifying, as in weaver.
		"- Identified by: `memlock.test.flag`\n- Associated with: metric `memlock.test.gauge`\n",
		"- Used by: resource `memlock.test.thing`; span `memlock.call`\n",
		"| `container.id` | `string` | stable | The id of the container the process runs in. | all resources |",
	} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("document lacks %q", want)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	for name, extra := range map[string]string{
		"histogram without buckets": `
  - id: metric.memlock.test.hist
    type: metric
    metric_name: memlock.test.hist
    instrument: histogram
    unit: s
    brief: A test histogram.
`,
		"unknown group type": `
  - id: scope.memlock
    type: scope
    brief: Something new.
`,
		"unknown entity": `
  - id: metric.memlock.test.counter
    type: metric
    metric_name: memlock.test.counter
    instrument: counter
    unit: "{call}"
    brief: A test counter.
    entity_associations: [memlock.no_such_entity]
`,
		"entity twice": `
  - id: entity.memlock.process.again
    type: entity
    name: memlock.process
    brief: Again.
`,
		"unknown attribute": `
  - id: span.memlock.x
    type: span
    brief: x.
    attributes:
      - ref: memlock.no_such_thing
`,
		"event twice": `
  - id: event.memlock.mlock.again
    type: event
    name: memlock.mlock
    brief: Again.
`,
	} {
		if _, err := withGroups(t, extra); err == nil {
			t.Errorf("%s: rendered without error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
