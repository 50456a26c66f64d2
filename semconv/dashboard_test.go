package semconv_test

// Checks of the Grafana dashboard, deploy/grafana/memlock-exporter.json: it
// is a dashboard Grafana can import (title, uid, panels, each on the
// templated Prometheus data source), and every metric its PromQL names is
// one the daemon emits, spelled the way Prometheus shows OpenTelemetry
// metrics.

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/memlock-exporter/memlock-exporter/semconv"
)

const dashboardPath = "../deploy/grafana/memlock-exporter.json"

// prometheusUnits are the Prometheus spellings of the UCUM units of the
// OpenTelemetry-to-Prometheus naming convention (the one the daemon's
// OTEL_METRICS_EXPORTER=prometheus, Prometheus's OTLP receiver and the
// collector's Prometheus exporters apply by default). Annotations in
// braces ("{call}") have none.
var prometheusUnits = map[string]string{
	"s":    "seconds",
	"ms":   "milliseconds",
	"us":   "microseconds",
	"ns":   "nanoseconds",
	"By":   "bytes",
	"KiBy": "kibibytes",
	"MiBy": "mebibytes",
	"%":    "percent",
}

// prometheusPerUnits spell the denominator of a rate unit ("By/s").
var prometheusPerUnits = map[string]string{
	"s": "second", "m": "minute", "h": "hour", "d": "day",
}

var prometheusInvalid = regexp.MustCompile(`[^a-zA-Z0-9_:]+`)

// prometheusNames returns the series names Prometheus shows for metric m:
// its name with every other character than [a-zA-Z0-9_:] made an
// underscore, the unit's suffix (unless the name ends with it already),
// then _total for a counter, or _bucket, _sum and _count for a histogram.
func prometheusNames(m semconv.MetricDef) ([]string, error) {
	base := prometheusInvalid.ReplaceAllString(m.Name, "_")
	unit, err := prometheusUnit(m)
	if err != nil {
		return nil, err
	}
	if unit != "" && !strings.HasSuffix(base, "_"+unit) {
		base += "_" + unit
	}
	switch m.Instrument {
	case semconv.InstrumentCounter:
		return []string{base + "_total"}, nil
	case semconv.InstrumentHistogram:
		return []string{base + "_bucket", base + "_sum", base + "_count"}, nil
	case semconv.InstrumentGauge:
		return []string{base}, nil
	}
	return nil, fmt.Errorf("%s: instrument %q has no Prometheus mapping here; add one", m.Name, m.Instrument)
}

// prometheusUnit is the suffix for m's unit: "" for none or an annotation
// ({call}), "ratio" for a gauge of unit 1, "X_per_Y" for X/Y.
func prometheusUnit(m semconv.MetricDef) (string, error) {
	u := m.Unit
	if i := strings.Index(u, "{"); i >= 0 { // "{call}", or "By{page}" with an annotation
		u = u[:i]
	}
	switch {
	case u == "":
		return "", nil
	case u == "1":
		if m.Instrument == semconv.InstrumentGauge {
			return "ratio", nil
		}
		return "", nil
	}
	num, per, isRate := strings.Cut(u, "/")
	var out string
	if num != "" && num != "1" {
		p, ok := prometheusUnits[num]
		if !ok {
			return "", fmt.Errorf("%s: unit %q has no Prometheus spelling here; add it to prometheusUnits", m.Name, m.Unit)
		}
		out = p
	}
	if isRate {
		p, ok := prometheusPerUnits[per]
		if !ok {
			p, ok = prometheusUnits[per]
		}
		if !ok {
			return "", fmt.Errorf("%s: unit %q has no Prometheus spelling here; add it to prometheusPerUnits", m.Name, m.Unit)
		}
		if out == "" {
			out = "per_" + p
		} else {
			out += "_per_" + p
		}
	}
	return out, nil
}

// TestPrometheusNames: the names of every metric of the schema as the
// daemon's own Prometheus endpoint serves them (the scrape of
// OTEL_METRICS_EXPORTER=prometheus, see TestPrometheus in exporter), and
// the convention's other cases.
func TestPrometheusNames(t *testing.T) {
	scraped := map[string][]string{
		semconv.MetricCalls:            {"memlock_calls_total"},
		semconv.MetricCallDuration:     {"memlock_call_duration_seconds_bucket", "memlock_call_duration_seconds_sum", "memlock_call_duration_seconds_count"},
		semconv.MetricCallSize:         {"memlock_call_size_bytes_bucket", "memlock_call_size_bytes_sum", "memlock_call_size_bytes_count"},
		semconv.MetricEventsLost:       {"memlock_events_lost_total"},
		semconv.MetricSystemLocked:     {"memlock_system_locked_bytes"},
		semconv.MetricProcessLocked:    {"memlock_process_locked_bytes"},
		semconv.MetricProcessLimit:     {"memlock_process_limit_bytes"},
		semconv.MetricProcessUntracked: {"memlock_process_untracked_total"},
	}
	for _, m := range semconv.Metrics {
		want, ok := scraped[m.Name]
		if !ok {
			t.Errorf("%s: no expected Prometheus names; add the names a scrape shows to this table", m.Name)
			continue
		}
		got, err := prometheusNames(m)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("prometheusNames(%s %s %q) = %q, %v; want %q", m.Name, m.Instrument, m.Unit, got, err, want)
		}
		delete(scraped, m.Name)
	}
	for name := range scraped {
		t.Errorf("%s: in the table but not in semconv.Metrics", name)
	}

	for _, c := range []struct {
		name       string
		instrument semconv.Instrument
		unit       string
		want       []string // nil: an error
	}{
		{"http.server.request.duration", semconv.InstrumentHistogram, "s",
			[]string{"http_server_request_duration_seconds_bucket", "http_server_request_duration_seconds_sum", "http_server_request_duration_seconds_count"}},
		{"process.cpu.time", semconv.InstrumentCounter, "s", []string{"process_cpu_time_seconds_total"}},
		{"x.requests", semconv.InstrumentCounter, "{request}", []string{"x_requests_total"}},
		{"x.requests", semconv.InstrumentCounter, "", []string{"x_requests_total"}},
		{"x.size", semconv.InstrumentGauge, "By{page}", []string{"x_size_bytes"}},
		{"x.locked_bytes", semconv.InstrumentGauge, "By", []string{"x_locked_bytes"}}, // no second suffix
		{"x.rate", semconv.InstrumentGauge, "By/s", []string{"x_rate_bytes_per_second"}},
		{"x.calls.rate", semconv.InstrumentGauge, "1/s", []string{"x_calls_rate_per_second"}},
		{"system.memory.utilization", semconv.InstrumentGauge, "1", []string{"system_memory_utilization_ratio"}},
		{"x.count", semconv.InstrumentCounter, "1", []string{"x_count_total"}},
		{"x-y.z", semconv.InstrumentGauge, "ms", []string{"x_y_z_milliseconds"}},
		{"x.weird", semconv.InstrumentGauge, "furlong", nil},
		{"x.updown", semconv.Instrument("updowncounter"), "", nil},
	} {
		got, err := prometheusNames(semconv.MetricDef{Name: c.name, Instrument: c.instrument, Unit: c.unit})
		if c.want == nil {
			if err == nil {
				t.Errorf("prometheusNames(%s %s %q) = %q, want an error", c.name, c.instrument, c.unit, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("prometheusNames(%s %s %q) = %q, %v; want %q", c.name, c.instrument, c.unit, got, err, c.want)
		}
	}
}

// promQLKeywords are the identifiers of PromQL that are not metric names
// where they stand without a following "(": aggregation operators (which
// may be followed by "by (...)"), binary set operators and modifiers,
// literals.
var promQLKeywords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"inf": true, "nan": true,
}

// promQLLabelLists are the keywords followed by a list of label names.
var promQLLabelLists = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// promQLMetricNames returns the metric names a PromQL expression selects,
// in order, with repeats. It skips what is not one: function calls
// (identifiers before "("), keywords and aggregation operators, label
// lists (by, without, on, ignoring, group_left, group_right), label
// matchers in braces, ranges in brackets, strings, numbers and durations,
// and Grafana variables ($x, ${x}). A selector by {__name__=...} is an
// error: its name could not be checked.
func promQLMetricNames(expr string) ([]string, error) {
	var names []string
	s := []rune(expr)
	i := 0
	skipSpace := func(j int) int {
		for j < len(s) && unicode.IsSpace(s[j]) {
			j++
		}
		return j
	}
	// skipString returns the index after the string starting at s[j].
	skipString := func(j int) (int, error) {
		q := s[j]
		for j++; j < len(s); j++ {
			switch {
			case s[j] == '\\' && q != '`':
				j++
			case s[j] == q:
				return j + 1, nil
			}
		}
		return 0, fmt.Errorf("unterminated string in %q", expr)
	}
	// skipGroup returns the index after the group opened by s[j], which
	// may hold strings.
	skipGroup := func(j int) (int, string, error) {
		open := s[j]
		closeRune := map[rune]rune{'{': '}', '[': ']', '(': ')'}[open]
		depth, start := 0, j
		for j < len(s) {
			switch c := s[j]; {
			case c == '"' || c == '\'' || c == '`':
				next, err := skipString(j)
				if err != nil {
					return 0, "", err
				}
				j = next
				continue
			case c == open:
				depth++
			case c == closeRune:
				depth--
				if depth == 0 {
					return j + 1, string(s[start+1 : j]), nil
				}
			}
			j++
		}
		return 0, "", fmt.Errorf("unbalanced %c in %q", open, expr)
	}
	isIdentStart := func(c rune) bool { return c == '_' || c == ':' || unicode.IsLetter(c) }
	isIdent := func(c rune) bool { return isIdentStart(c) || unicode.IsDigit(c) }

	for i < len(s) {
		c := s[i]
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '"' || c == '\'' || c == '`':
			next, err := skipString(i)
			if err != nil {
				return nil, err
			}
			i = next
		case c == '{' || c == '[':
			next, inside, err := skipGroup(i)
			if err != nil {
				return nil, err
			}
			if c == '{' && strings.Contains(inside, "__name__") {
				return nil, fmt.Errorf("selector {%s} in %q: name the metric before the braces, so that it can be checked", inside, expr)
			}
			i = next
		case c == '$':
			i++
			if i < len(s) && s[i] == '{' {
				next, _, err := skipGroup(i)
				if err != nil {
					return nil, err
				}
				i = next
			} else {
				for i < len(s) && isIdent(s[i]) {
					i++
				}
			}
		case unicode.IsDigit(c) || c == '.' && i+1 < len(s) && unicode.IsDigit(s[i+1]):
			// A number (0.99, 1e-9, 0x1f) or a duration (5m, 1h30m).
			for i < len(s) && (isIdent(s[i]) || s[i] == '.' ||
				(s[i] == '-' || s[i] == '+') && (s[i-1] == 'e' || s[i-1] == 'E')) {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(s) && isIdent(s[i]) {
				i++
			}
			word := string(s[start:i])
			next := skipSpace(i)
			followedByParen := next < len(s) && s[next] == '('
			switch lower := strings.ToLower(word); {
			case promQLLabelLists[lower]:
				if followedByParen {
					end, _, err := skipGroup(next)
					if err != nil {
						return nil, err
					}
					i = end
				}
			case followedByParen, promQLKeywords[lower]:
				// a function or an operator
			default:
				names = append(names, word)
			}
		default:
			i++ // operators, parentheses, commas
		}
	}
	return names, nil
}

func TestPromQLMetricNames(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string // nil: an error
	}{
		{`memlock_calls_total`, []string{"memlock_calls_total"}},
		{`sum by (memlock_syscall, error_type) (rate(memlock_calls_total{job=~"$job", error_type!=""}[$__rate_interval]))`,
			[]string{"memlock_calls_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(memlock_call_duration_seconds_bucket{a="}{[("}[5m])))`,
			[]string{"memlock_call_duration_seconds_bucket"}},
		{`sum(rate(a_sum[1m])) / sum without (le) (rate(a_count[1m])) > 1e-9`, []string{"a_sum", "a_count"}},
		{`topk(20, x_bytes{instance=~"${instance}"} / on(pid) group_left(name) y_bytes) * 100`, []string{"x_bytes", "y_bytes"}},
		{`sum(x) by (job) and bool y offset 5m unless z or w @ 1609746000`, []string{"x", "y", "z", "w"}},
		{`label_replace(up, "a", '$1', 'b', "(.*)")`, []string{"up"}},
		{`count_values("v", build_info) or vector(0)`, []string{"build_info"}},
		{`avg_over_time(ns:metric:rate5m[1h:5m])`, []string{"ns:metric:rate5m"}},
		{`{__name__="memlock_calls_total"}`, nil},
		{`rate(x{a="b}[5m])`, nil},
	} {
		got, err := promQLMetricNames(c.expr)
		if c.want == nil {
			if err == nil {
				t.Errorf("promQLMetricNames(%s) = %q, want an error", c.expr, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("promQLMetricNames(%s) = %q, %v; want %q", c.expr, got, err, c.want)
		}
	}
}

func TestLabelValuesSelector(t *testing.T) {
	for q, want := range map[string]string{
		`label_values(memlock_calls_total, job)`:                           `memlock_calls_total`,
		`label_values(memlock_calls_total{job=~"$job", a=",}"}, instance)`: `memlock_calls_total{job=~"$job", a=",}"}`,
		`label_values(job)`: ``,
		`query_result(topk(5, memlock_process_locked_bytes))`: `topk(5, memlock_process_locked_bytes)`,
		`memlock_calls_total`: `memlock_calls_total`,
	} {
		if got := labelValuesSelector(q); got != want {
			t.Errorf("labelValuesSelector(%s) = %q, want %q", q, got, want)
		}
	}
}

// The parts of Grafana's dashboard model the checks read.
type grafanaDashboard struct {
	Title      string         `json:"title"`
	UID        string         `json:"uid"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string             `json:"name"`
			Type       string             `json:"type"`
			Query      json.RawMessage    `json:"query"`
			Datasource *grafanaDatasource `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	ID         int                `json:"id"`
	Type       string             `json:"type"`
	Title      string             `json:"title"`
	Datasource *grafanaDatasource `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Datasource *grafanaDatasource `json:"datasource"`
		Expr       string             `json:"expr"`
		RefID      string             `json:"refId"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // a row's panels
}

type grafanaDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// datasourceVar is the dashboard's data source variable.
const datasourceVar = "datasource"

func (d *grafanaDatasource) isVariable() bool {
	return d != nil && d.Type == "prometheus" && (d.UID == "${"+datasourceVar+"}" || d.UID == "$"+datasourceVar)
}

// grafanaBuiltins are the variables Grafana defines itself.
var grafanaBuiltins = map[string]bool{
	"__rate_interval": true, "__interval": true, "__interval_ms": true, "__range": true,
	"__range_s": true, "__range_ms": true, "__from": true, "__to": true, "__dashboard": true,
}

var grafanaVarRef = regexp.MustCompile(`\$(?:\{([A-Za-z0-9_]+)(?::[a-z]+)?\}|([A-Za-z0-9_]+))`)

// TestDashboard checks deploy/grafana/memlock-exporter.json: an importable
// dashboard whose panels all query the templated Prometheus data source,
// whose variables are defined, and whose PromQL names only metrics the
// daemon emits, each of them at least once.
func TestDashboard(t *testing.T) {
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("%s: title %q, uid %q: both must be set", dashboardPath, d.Title, d.UID)
	}
	if len(d.UID) > 40 {
		t.Errorf("%s: uid %q is longer than Grafana's 40 characters", dashboardPath, d.UID)
	}

	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type == "query" && !v.Datasource.isVariable() {
			t.Errorf("variable %s: datasource %+v, want {prometheus ${%s}}", v.Name, v.Datasource, datasourceVar)
		}
		if v.Name == datasourceVar {
			var q string
			if v.Type != "datasource" || json.Unmarshal(v.Query, &q) != nil || q != "prometheus" {
				t.Errorf("variable %s: type %q, query %s; want a datasource variable of type prometheus", v.Name, v.Type, v.Query)
			}
		}
	}
	if !vars[datasourceVar] {
		t.Errorf("no %q variable: the panels cannot name their data source", datasourceVar)
	}
	checkVars := func(where, text string) {
		for _, m := range grafanaVarRef.FindAllStringSubmatch(text, -1) {
			name := m[1] + m[2]
			if !vars[name] && !grafanaBuiltins[name] {
				t.Errorf("%s: $%s is not a variable of the dashboard", where, name)
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			var q struct {
				Query string `json:"query"`
			}
			var s string
			if json.Unmarshal(v.Query, &q) == nil && q.Query != "" {
				s = q.Query
			} else {
				_ = json.Unmarshal(v.Query, &s)
			}
			checkVars("variable "+v.Name, s)
			names, err := promQLMetricNames(labelValuesSelector(s))
			if err != nil {
				t.Errorf("variable %s: %v", v.Name, err)
			}
			checkMetricNames(t, "variable "+v.Name, names)
		}
	}

	var panels []grafanaPanel
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			panels = append(panels, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if len(panels) == 0 {
		t.Fatalf("%s: no panels", dashboardPath)
	}

	used := map[string]bool{}
	ids := map[int]string{}
	for _, p := range panels {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("%s: id %d is also %s's", where, p.ID, prev)
		}
		ids[p.ID] = p.Title
		if p.Title == "" || p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("%s: want a title and a gridPos", where)
		}
		if p.Type == "row" {
			continue
		}
		if !p.Datasource.isVariable() {
			t.Errorf("%s: datasource %+v, want {prometheus ${%s}}", where, p.Datasource, datasourceVar)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no queries", where)
		}
		for _, q := range p.Targets {
			where := where + " query " + q.RefID
			if q.Datasource != nil && !q.Datasource.isVariable() {
				t.Errorf("%s: datasource %+v, want {prometheus ${%s}}", where, q.Datasource, datasourceVar)
			}
			if strings.TrimSpace(q.Expr) == "" {
				t.Errorf("%s: empty expr", where)
				continue
			}
			checkVars(where, q.Expr)
			names, err := promQLMetricNames(q.Expr)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if len(names) == 0 {
				t.Errorf("%s: %s names no metric", where, q.Expr)
			}
			checkMetricNames(t, where, names)
			for _, n := range names {
				used[n] = true
			}
		}
	}

	// Every metric of the schema has a panel.
	for _, m := range semconv.Metrics {
		names, _ := prometheusNames(m)
		if !slices.ContainsFunc(names, func(n string) bool { return used[n] }) {
			t.Errorf("no panel shows %s (%s)", m.Name, strings.Join(names, ", "))
		}
	}
}

// labelValuesSelector returns the series selector of a Grafana variable
// query label_values(selector, label), "" for label_values(label), and
// any other query as it is (query_result(expr), or PromQL).
func labelValuesSelector(q string) string {
	q = strings.TrimSpace(q)
	inner, ok := strings.CutPrefix(q, "label_values(")
	if !ok || !strings.HasSuffix(inner, ")") {
		if expr, ok := strings.CutPrefix(q, "query_result("); ok {
			return strings.TrimSuffix(expr, ")")
		}
		return q
	}
	inner = strings.TrimSuffix(inner, ")")
	// The label is after the last comma outside braces and quotes.
	depth, quote, last := 0, rune(0), -1
	for i, c := range inner {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '{':
			depth++
		case c == '}':
			depth--
		case c == ',' && depth == 0:
			last = i
		}
	}
	if last < 0 {
		return ""
	}
	return inner[:last]
}

// checkMetricNames fails for each name that is not a Prometheus name of a
// metric of the schema.
func checkMetricNames(t *testing.T, where string, names []string) {
	t.Helper()
	known := map[string]bool{}
	for _, m := range semconv.Metrics {
		ns, err := prometheusNames(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			known[n] = true
		}
	}
	for _, n := range names {
		if !known[n] {
			t.Errorf("%s: metric %s is not one the daemon emits (known: %v)", where, n, slices.Sorted(maps.Keys(known)))
		}
	}
}
