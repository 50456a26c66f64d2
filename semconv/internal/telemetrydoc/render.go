// Package telemetrydoc renders docs/telemetry.md, the reference of every
// resource, event, span, metric and attribute memlock-exporter emits, from the
// semconv package: its registry (registry/memlock.yaml, weaver's format)
// and its Go tables (units, standard keys, histogram buckets, schema URL).
//
// The generator (semconv/internal/gendocs, run by `go generate ./semconv`)
// writes the file; TestTelemetryDocIsCurrent renders it again in memory and
// fails when the committed file differs. Nothing here lists names: whatever
// the registry and the tables contain is documented.
package telemetrydoc

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/memlock-exporter/memlock-exporter/semconv"
	"go.yaml.in/yaml/v3"
)

// GenerateCommand is the command that regenerates the document, from the
// module's root.
const GenerateCommand = "go generate ./semconv"

// buckets maps each histogram to its explicit bucket boundaries. A
// histogram in the registry without an entry here is an error: add its
// semconv.*Buckets function.
var buckets = map[string]func() []float64{
	semconv.MetricCallDuration: semconv.CallDurationBuckets,
	semconv.MetricCallSize:     semconv.CallSizeBuckets,
}

// Render renders the document from src and the semconv package's tables.
// The output depends on nothing else: names are sorted, and no time or
// path of the machine goes in.
func Render(src *Source) ([]byte, error) {
	m, err := parseRegistry(src.Registry)
	if err != nil {
		return nil, err
	}
	r := &renderer{src: src, m: m}
	if err := r.prepare(); err != nil {
		return nil, err
	}
	r.header()
	r.resourceSection()
	r.eventsSection()
	r.spansSection()
	r.metricsSection()
	r.customSection()
	r.standardSection()
	return []byte(r.b.String()), nil
}

type renderer struct {
	src *Source
	m   *model
	b   strings.Builder

	version  string                        // of the standard semantic conventions, "1.43.0"
	units    map[string]string             // custom attribute id -> unit
	standard []string                      // standard keys, sorted
	usedBy   map[string][numKinds][]string // attribute -> entity, event, span, metric names, by kind
}

const (
	kindEntity = iota
	kindEvent
	kindSpan
	kindMetric
	numKinds
)

var kindNames = [numKinds][2]string{
	kindEntity: {"resource", "resources"},
	kindEvent:  {"event", "events"},
	kindSpan:   {"span", "spans"},
	kindMetric: {"metric", "metrics"},
}

func (r *renderer) prepare() error {
	byName := func(a, b signal) int { return cmp.Compare(a.name, b.name) }
	slices.SortFunc(r.m.entities, byName)
	slices.SortFunc(r.m.events, byName)
	slices.SortFunc(r.m.metrics, byName)
	slices.SortFunc(r.m.spans, byName)

	r.version = strings.TrimPrefix(r.src.StdPackage, stdPrefix)
	if !strings.HasSuffix(semconv.SchemaURL, "/"+r.version) {
		return fmt.Errorf("semconv.SchemaURL %s is not the schema of %s", semconv.SchemaURL, r.src.StdPackage)
	}

	// Custom attributes: the registry's, and any the Go table has that the
	// registry lacks (semconv_test.go reports the disagreement).
	r.units = map[string]string{}
	for id, d := range r.m.defs {
		r.units[id] = unitFromNote(d.Note)
	}
	for _, def := range semconv.CustomAttributes {
		id := string(def.Key)
		r.units[id] = def.Unit
		if _, ok := r.m.defs[id]; ok {
			continue
		}
		d := definition{attr: attr{ID: id, Brief: def.Brief}, typ: string(def.Type), enum: def.Members != nil}
		for _, v := range def.Members {
			d.members = append(d.members, member{ID: v})
		}
		r.m.defs[id] = d
	}

	// Standard attributes: the Go table's, and any other the registry
	// references.
	std := map[string]bool{}
	for _, k := range semconv.StandardAttributes {
		std[string(k)] = true
	}
	r.usedBy = map[string][numKinds][]string{}
	for kind, list := range r.byKind() {
		for _, s := range list {
			for _, a := range s.Attributes {
				id := cmp.Or(a.Ref, a.ID)
				if _, custom := r.m.defs[id]; !custom {
					std[id] = true
				}
				u := r.usedBy[id]
				if !slices.Contains(u[kind], s.name) {
					u[kind] = append(u[kind], s.name)
				}
				r.usedBy[id] = u
			}
		}
	}
	for k := range std {
		if _, ok := r.src.Standard[k]; !ok {
			return fmt.Errorf("attribute %s is neither defined in %s nor a key of %s", k, RegistryPath, r.src.StdPackage)
		}
		r.standard = append(r.standard, k)
	}
	slices.Sort(r.standard)

	entities := map[string]bool{}
	for _, e := range r.m.entities {
		entities[e.name] = true
	}
	for _, list := range r.byKind() {
		for _, s := range list {
			for _, name := range s.EntityAssociations {
				if !entities[name] {
					return fmt.Errorf("%s %s: entity_associations names %q, which is not an entity of %s", s.Type, s.name, name, RegistryPath)
				}
			}
		}
	}

	for _, s := range r.m.metrics {
		if s.Instrument == string(semconv.InstrumentHistogram) && buckets[s.name] == nil {
			return fmt.Errorf("histogram %s: no bucket boundaries; add its semconv.*Buckets function to buckets in semconv/internal/telemetrydoc", s.name)
		}
	}
	return nil
}

// byKind returns the groups that carry attributes, by kind.
func (r *renderer) byKind() [numKinds][]signal {
	return [numKinds][]signal{kindEntity: r.m.entities, kindEvent: r.m.events, kindSpan: r.m.spans, kindMetric: r.m.metrics}
}

func (r *renderer) p(format string, args ...any) { fmt.Fprintf(&r.b, format, args...) }

// para writes registry prose as a paragraph, if there is any.
func (r *renderer) para(s string) {
	if t := text(s); t != "" {
		r.p("%s\n\n", t)
	}
}

func names(list []signal) []string {
	var out []string
	for _, s := range list {
		out = append(out, code(s.name))
	}
	return out
}

func (r *renderer) header() {
	r.p("# memlock-exporter telemetry\n\n")
	r.p("<!-- Code generated by %q from semconv/%s and package semconv; DO NOT EDIT. -->\n\n", GenerateCommand, RegistryPath)
	r.p("> Generated by `%s` (program `semconv/internal/gendocs`) from `semconv/%s` and the Go tables of package `semconv`. "+
		"Do not edit it by hand: change the registry and the tables, then run `%s`. "+
		"`TestTelemetryDocIsCurrent` fails while this file is out of date.\n\n", GenerateCommand, RegistryPath, GenerateCommand)

	r.p("memlock-exporter observes the mlock family of system calls with eBPF and reports them through OpenTelemetry. " +
		"This is the reference of everything it emits:\n\n")
	if n := len(r.m.events); n > 0 {
		r.p("- **Logs.** One log record per traced call, and one per warning. The record's EventName is one of the %d [events](#events) (%s); "+
			"the body and the attributes of each are listed there.\n", n, strings.Join(names(r.m.events), ", "))
	}
	if n := len(r.m.metrics); n > 0 {
		r.p("- **Metrics.** %d [metrics](#metrics) (%s), with the attributes each may carry and, for histograms, the bucket boundaries.\n",
			n, strings.Join(names(r.m.metrics), ", "))
	}
	if n := len(r.m.spans); n > 0 {
		r.p("- **Spans.** %d [span](#spans) definitions (%s), with their kind and attributes.\n", n, strings.Join(names(r.m.spans), ", "))
	}
	if n := len(r.m.entities); n == 1 {
		r.p("- **Resource.** 1 [entity](#resource) (%s): the attributes memlock-exporter puts on the resource of the telemetry associated with it, "+
			"beside its own resource attributes.\n", names(r.m.entities)[0])
	} else if n > 1 {
		r.p("- **Resource.** %d [entities](#resource) (%s): the attributes memlock-exporter puts on the resource of the telemetry associated with each, "+
			"beside its own resource attributes.\n", n, strings.Join(names(r.m.entities), ", "))
	}
	r.p("\nEvery logger, meter and tracer uses the instrumentation scope %s with the schema URL %s.\n\n",
		code(semconv.ScopeName), code(semconv.SchemaURL))
	r.p("Attributes memlock-exporter defines%s are under [Custom attributes](#custom-attributes); "+
		"the others are OpenTelemetry semantic conventions %s, under [Standard attributes](#standard-attributes).\n\n",
		r.namespaces(), r.version)
	r.p("Requirement levels, as in the semantic conventions: **Required** attributes are always present; " +
		"**Conditionally required** ones when the stated condition holds; " +
		"**Recommended** ones when the value is known; **Opt-in** ones only when enabled in the configuration.\n\n")
}

// namespaces describes the custom attributes' namespaces: " (the
// `memlock.*` namespace)".
func (r *renderer) namespaces() string {
	var ns []string
	for id := range r.m.defs {
		n, _, _ := strings.Cut(id, ".")
		if !slices.Contains(ns, n) {
			ns = append(ns, n)
		}
	}
	slices.Sort(ns)
	for i, n := range ns {
		ns[i] = code(n + ".*")
	}
	switch len(ns) {
	case 0:
		return ""
	case 1:
		return " (the " + ns[0] + " namespace)"
	}
	return " (the " + strings.Join(ns, ", ") + " namespaces)"
}

func (r *renderer) resourceSection() {
	if len(r.m.entities) == 0 {
		return
	}
	r.p("## Resource\n\n")
	r.p("Each entity below is part of the resource of the telemetry associated with it: in an export request, " +
		"the records and spans of one entity are grouped under one resource that carries its attributes, " +
		"beside memlock-exporter's own resource attributes. Its identifying attributes tell one entity from another; " +
		"the others describe it.\n\n")
	for _, e := range r.m.entities {
		r.p("### %s\n\n", code(e.name))
		r.para(e.Brief)
		r.para(e.Note)
		r.bullet("Stability", text(e.Stability))
		var ids []string
		for _, a := range e.Attributes {
			if a.Role == "" || a.Role == "identifying" { // weaver's default
				ids = append(ids, code(cmp.Or(a.Ref, a.ID)))
			}
		}
		r.bullet("Identified by", strings.Join(ids, ", "))
		r.bullet("Associated with", r.associated(e.name))
		r.p("\n")
		r.attributeTable(e.Attributes)
	}
}

// associated says which events, spans and metrics are associated with an
// entity: "all events; metric `a`".
func (r *renderer) associated(entity string) string {
	var u [numKinds][]string
	for kind, list := range r.byKind() {
		for _, s := range list {
			if slices.Contains(s.EntityAssociations, entity) {
				u[kind] = append(u[kind], s.name)
			}
		}
	}
	return r.listByKind(u)
}

// resources spells a signal's entity associations as links to the
// Resource section.
func resources(s signal) string {
	var out []string
	for _, name := range s.EntityAssociations {
		out = append(out, code(name))
	}
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, ", ") + " (see [Resource](#resource))"
}

func (r *renderer) eventsSection() {
	if len(r.m.events) == 0 {
		return
	}
	r.p("## Events\n\n")
	r.p("Each event is one log record whose EventName is the event's name.")
	if slices.ContainsFunc(r.m.events, func(e signal) bool { return len(e.EntityAssociations) > 0 }) {
		r.p(" A record sits under the resource of the entity its event is associated with (see [Resource](#resource)), " +
			"which carries that entity's attributes; the attributes listed here are the record's own.")
	}
	r.p("\n\n")
	var rows [][]string
	for _, e := range r.m.events {
		ex := ""
		if e.Body != nil {
			ex = strings.Join(examples(e.Body.Examples, e.Body.Type), ", ")
		}
		rows = append(rows, []string{code(e.name), text(e.Brief), ex})
	}
	table(&r.b, []string{"Event", "Description", "Body example"}, rows)
	for _, e := range r.m.events {
		r.p("### %s\n\n", code(e.name))
		r.para(e.Brief)
		r.para(e.Note)
		r.bullet("Stability", text(e.Stability))
		if e.Body == nil {
			r.bullet("Body", "none")
		} else {
			_, level := requirement(e.Body.RequirementLevel)
			ex := ""
			if list := examples(e.Body.Examples, e.Body.Type); len(list) > 0 {
				ex = "Example: " + strings.Join(list, ", ")
			}
			r.bullet("Body", code(e.Body.Type)+" ("+strings.ToLower(level)+"). "+
				sentences(text(e.Body.Brief), text(e.Body.Note), ex))
		}
		r.bullet("Resource", resources(e))
		r.p("\n")
		r.attributeTable(e.Attributes)
	}
}

func (r *renderer) spansSection() {
	if len(r.m.spans) == 0 {
		return
	}
	r.p("## Spans\n\n")
	var rows [][]string
	for _, s := range r.m.spans {
		rows = append(rows, []string{code(s.name), code(s.SpanKind), text(s.Brief)})
	}
	table(&r.b, []string{"Span", "Kind", "Description"}, rows)
	for _, s := range r.m.spans {
		r.p("### %s\n\n", code(s.name))
		r.para(s.Brief)
		r.para(s.Note)
		r.bullet("Stability", text(s.Stability))
		r.bullet("Span kind", code(s.SpanKind))
		if len(s.Events) > 0 {
			var ev []string
			for _, e := range slices.Sorted(slices.Values(s.Events)) {
				ev = append(ev, code(e))
			}
			r.bullet("Span events", strings.Join(ev, ", "))
		}
		r.p("\n")
		r.attributeTable(s.Attributes)
	}
}

func (r *renderer) metricsSection() {
	if len(r.m.metrics) == 0 {
		return
	}
	r.p("## Metrics\n\n")
	var rows [][]string
	for _, s := range r.m.metrics {
		rows = append(rows, []string{code(s.name), code(s.Instrument), code(s.Unit), text(s.Brief)})
	}
	table(&r.b, []string{"Metric", "Instrument", "Unit", "Description"}, rows)
	for _, s := range r.m.metrics {
		r.p("### %s\n\n", code(s.name))
		r.para(s.Brief)
		r.para(s.Note)
		r.bullet("Stability", text(s.Stability))
		r.bullet("Instrument", code(s.Instrument))
		r.bullet("Unit", code(s.Unit))
		if f := buckets[s.name]; f != nil && s.Instrument == string(semconv.InstrumentHistogram) {
			var bs []string
			for _, v := range f() {
				b := code(strconv.FormatFloat(v, 'f', -1, 64))
				if h := human(v, s.Unit); h != "" {
					b += " (" + h + ")"
				}
				bs = append(bs, b)
			}
			r.bullet("Bucket boundaries", strings.Join(bs, ", "))
		}
		r.p("\n")
		if len(s.Attributes) == 0 {
			r.p("No attributes.\n\n")
			continue
		}
		r.attributeTable(s.Attributes)
	}
}

func (r *renderer) customSection() {
	if len(r.m.defs) == 0 {
		return
	}
	ids := make([]string, 0, len(r.m.defs))
	for id := range r.m.defs {
		ids = append(ids, id)
	}
	slices.Sort(ids)

	r.p("## Custom attributes\n\n")
	r.p("Attributes defined by memlock-exporter in `semconv/%s`.\n\n", RegistryPath)
	var rows [][]string
	for _, id := range ids {
		d := r.m.defs[id]
		rows = append(rows, []string{code(id), r.typeOf(id), code(r.units[id]), text(d.Brief)})
	}
	table(&r.b, []string{"Attribute", "Type", "Unit", "Description"}, rows)
	for _, id := range ids {
		d := r.m.defs[id]
		r.p("### %s\n\n", code(id))
		r.para(d.Brief)
		r.para(noteWithoutUnit(d.Note))
		r.bullet("Type", r.typeOf(id))
		if u := r.units[id]; u != "" {
			r.bullet("Unit", code(u))
		}
		r.bullet("Stability", text(d.Stability))
		if ex := examples(d.Examples, d.typ); len(ex) > 0 {
			r.bullet("Examples", strings.Join(ex, ", "))
		}
		r.bullet("Used by", r.usedByText(id))
		r.p("\n")
		if d.enum {
			var rows [][]string
			for _, m := range d.members {
				v := m.ID
				if m.Value.Kind == yaml.ScalarNode {
					v = m.Value.Value
				}
				desc := text(m.Brief)
				if n := text(m.Note); n != "" {
					desc = strings.TrimSpace(desc + " " + n)
				}
				rows = append(rows, []string{code(v), desc})
			}
			table(&r.b, []string{"Value", "Description"}, rows)
		}
	}
}

func (r *renderer) standardSection() {
	if len(r.standard) == 0 {
		return
	}
	r.p("## Standard attributes\n\n")
	r.p("From the OpenTelemetry semantic conventions %s (schema URL %s), through the Go package %s. "+
		"The description says how memlock-exporter fills the attribute; "+
		"the semantic conventions define it in full.\n\n",
		r.version, code(semconv.SchemaURL), code(r.src.StdPackage))
	var rows [][]string
	for _, k := range r.standard {
		s := r.src.Standard[k]
		rows = append(rows, []string{code(k), code(s.Type), text(s.Stability), r.briefOf(k), r.usedByText(k)})
	}
	table(&r.b, []string{"Attribute", "Type", "Upstream stability", "Description", "Used by"}, rows)
}

func (r *renderer) bullet(label, value string) {
	if value == "" {
		return
	}
	r.p("- %s: %s\n", label, value)
}

// briefOf returns an attribute's description, escaped.
func (r *renderer) briefOf(id string) string {
	if d, ok := r.m.defs[id]; ok {
		return text(d.Brief)
	}
	return text(r.src.Standard[id].Brief)
}

// typeOf spells an attribute's type for a table cell.
func (r *renderer) typeOf(id string) string {
	if d, ok := r.m.defs[id]; ok {
		if d.enum {
			return code(d.typ) + " (enum)"
		}
		return code(d.typ)
	}
	return code(r.src.Standard[id].Type)
}

// attributeTable lists the attributes of an event, span or metric:
// required first, then conditionally required, recommended and opt-in,
// each by name.
func (r *renderer) attributeTable(attrs []attr) {
	type row struct {
		id    string
		rank  int
		cells []string
	}
	var rows []row
	for _, a := range attrs {
		id := cmp.Or(a.Ref, a.ID)
		rank, level := requirement(a.RequirementLevel)
		typ := r.typeOf(id)
		if u := r.units[id]; u != "" {
			typ += ", unit " + code(u)
		}
		brief := text(a.Brief)
		if brief == "" || a.Ref == "" {
			brief = r.briefOf(id)
		}
		valueType := r.src.Standard[id].Type
		if d, ok := r.m.defs[id]; ok {
			valueType = d.typ
		}
		ex := ""
		if list := examples(a.Examples, valueType); len(list) > 0 {
			ex = "Examples: " + strings.Join(list, ", ")
		}
		desc := sentences(brief, text(a.Note), ex)
		rows = append(rows, row{id, rank, []string{code(id), typ, level, desc}})
	}
	slices.SortStableFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.id, b.id))
	})
	cells := make([][]string, len(rows))
	for i, rw := range rows {
		cells[i] = rw.cells
	}
	table(&r.b, []string{"Attribute", "Type", "Requirement level", "Description"}, cells)
}

// usedByText says which resources, events, metrics and spans carry an
// attribute: "resource `r`; all events; metrics `a`, `b`", in the order of
// the sections.
func (r *renderer) usedByText(id string) string {
	return r.listByKind(r.usedBy[id])
}

// listByKind spells names of groups by kind: "all events; metrics `a`, `b`".
func (r *renderer) listByKind(u [numKinds][]string) string {
	var totals [numKinds]int
	for kind, list := range r.byKind() {
		totals[kind] = len(list)
	}
	var parts []string
	for kind, list := range u {
		switch {
		case len(list) == 0:
		case len(list) == totals[kind] && len(list) > 1:
			parts = append(parts, "all "+kindNames[kind][1])
		default:
			n := kindNames[kind][0]
			if len(list) > 1 {
				n = kindNames[kind][1]
			}
			var cs []string
			for _, s := range slices.Sorted(slices.Values(list)) {
				cs = append(cs, code(s))
			}
			parts = append(parts, n+" "+strings.Join(cs, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

// human spells a bucket boundary in a unit a person reads at a glance:
// 2.5e-06 s is "2.5 µs", 16777216 By is "16 MiB". Other units get none.
func human(v float64, unit string) string {
	g := func(x float64) string { return strconv.FormatFloat(x, 'g', 10, 64) }
	switch unit {
	case "s":
		switch {
		case v < 1e-3:
			return g(v*1e6) + " µs"
		case v < 1:
			return g(v*1e3) + " ms"
		}
		return g(v) + " s"
	case "By":
		for _, p := range []struct {
			n    float64
			name string
		}{{math.Exp2(30), "GiB"}, {math.Exp2(20), "MiB"}, {math.Exp2(10), "KiB"}} {
			if v >= p.n {
				return g(v/p.n) + " " + p.name
			}
		}
		return g(v) + " B"
	}
	return ""
}
