package config

import (
	"errors"
	"fmt"
	"math/bits"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memlock-exporter/memlock-exporter/bpf"
)

// fuzzVariables are the variables FuzzVariable picks from: every one Load
// reads (GOMEMLIMIT is the runtime's), with the _LOGS_, _TRACES_ and
// _METRICS_ forms of each OTEL_EXPORTER_OTLP_* one.
func fuzzVariables() []Variable {
	const otlp = "OTEL_EXPORTER_OTLP_"
	var out []Variable
	for _, v := range Variables() {
		if v.Name == "GOMEMLIMIT" || slices.ContainsFunc(out, func(o Variable) bool { return o.Name == v.Name }) {
			continue
		}
		out = append(out, v)
		key, ok := strings.CutPrefix(v.Name, otlp)
		if !ok || strings.HasPrefix(key, "LOGS_") || strings.HasPrefix(key, "TRACES_") || strings.HasPrefix(key, "METRICS_") {
			continue
		}
		for _, signal := range []string{"LOGS_", "TRACES_", "METRICS_"} {
			if name := otlp + signal + key; !slices.ContainsFunc(Variables(), func(o Variable) bool { return o.Name == name }) {
				out = append(out, Variable{Name: name, Default: v.Default, Allowed: v.Allowed})
			}
		}
	}
	return out
}

// FuzzVariable sets one variable, picked by index from the table of
// variables, to a fuzzed value (with httpProtocol, the shared protocol is
// http/protobuf besides, so that endpoints are checked as URLs too). Load
// must either succeed with a value within the variable's bounds and rules,
// which reads back the same when written out again, or fail with a
// one-line *Error that names the variable and the value (masked where it
// may hold a secret) and says what is allowed.
func FuzzVariable(f *testing.F) {
	vars := fuzzVariables()
	index := func(name string) uint {
		i := slices.IndexFunc(vars, func(v Variable) bool { return v.Name == name })
		if i < 0 {
			f.Fatalf("no variable %s", name)
		}
		return uint(i)
	}
	// Every variable with its default and with a value that is wrong...
	for i, v := range vars {
		f.Add(uint(i), v.Default, false)
		f.Add(uint(i), "x", false)
	}
	// ...and values close to the edges.
	for _, s := range []struct {
		name, value string
		http        bool
	}{
		{"MEMLOCK_EXPORTER_LOG_LEVEL", "WaRn", false},
		{"MEMLOCK_EXPORTER_LOG_LEVEL", "info+2", false},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE", "4KiB", false},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE", "1gib", false},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE", "3MiB", false},
		{"MEMLOCK_EXPORTER_RINGBUF_SIZE", "9007199254740992GiB", false},
		{"MEMLOCK_EXPORTER_WAKEUP_BYTES", "1048575", false},
		{"MEMLOCK_EXPORTER_WAKEUP_BYTES", "1MiB", false},
		{"MEMLOCK_EXPORTER_FLUSH_INTERVAL", "1000us", false},
		{"MEMLOCK_EXPORTER_FLUSH_INTERVAL", "999us", false},
		{"MEMLOCK_EXPORTER_FLUSH_INTERVAL", "1m0.000000001s", false},
		{"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT", "1ns", false},
		{"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT", "-0s", false},
		{"MEMLOCK_EXPORTER_SYSCALLS", "MLOCK, Mlock2 ,munlock", false},
		{"MEMLOCK_EXPORTER_SYSCALLS", "mlock2,munlock", false},
		{"MEMLOCK_EXPORTER_SYSCALLS", "mlock,,munlock", false},
		{"MEMLOCK_EXPORTER_KERNEL_HOOK", "Tracepoint", false},
		{"MEMLOCK_EXPORTER_UPROBES", "On", false},
		{"MEMLOCK_EXPORTER_LIBC_PATHS", "/a/libc.so.6:/proc/1/root/lib/ld-musl-x86_64.so.1", false},
		{"MEMLOCK_EXPORTER_LIBC_PATHS", "/a::/b", false},
		{"MEMLOCK_EXPORTER_PROCESS_CACHE_SIZE", "1048577", false},
		{"MEMLOCK_EXPORTER_PROCESS_METRICS_MAX", "007", false},
		{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION", "1e-3", false},
		{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION", "NaN", false},
		{"MEMLOCK_EXPORTER_LIMIT_WARN_FRACTION", "0x1p-2", false},
		{"MEMLOCK_EXPORTER_HEALTH_ADDR", "[::1]:8686", false},
		{"MEMLOCK_EXPORTER_HEALTH_ADDR", ":08686", false},
		{"MEMLOCK_EXPORTER_HEALTH_ADDR", ":0", false},
		{"OTEL_SDK_DISABLED", "TRUE", false},
		{"OTEL_METRICS_EXPORTER", "prometheus", false},
		{"OTEL_LOGS_EXPORTER", "prometheus", false},
		{"OTEL_LOGS_EXPORTER", "otlp,console", false},
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", false},
		{"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "HTTP/Protobuf", false},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317", false},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "[::1]:4317", false},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://user:hunter2@collector:4317", false},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://example.com/a%2Fb/", true},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/p?tenant=a#frag", true},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", true},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "//@", true},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "//u:p@collector:4318/x", true},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://u:p@t:4318/v1/traces", true},
		{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://collector:99999", false},
		{"OTEL_EXPORTER_OTLP_LOGS_INSECURE", "False", false},
		{"OTEL_EXPORTER_OTLP_HEADERS", " api-key = secret%20value , X-Tenant=t%2C1%3D2", false},
		{"OTEL_EXPORTER_OTLP_HEADERS", "k=%zz", false},
		{"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "bad key=secret", false},
		{"OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP", false},
		{"OTEL_EXPORTER_OTLP_TIMEOUT", "2147483647", false},
		{"OTEL_EXPORTER_OTLP_TIMEOUT", "2147483648", false},
		{"OTEL_EXPORTER_OTLP_CLIENT_KEY", "/etc/key.pem", false},
		{"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "8193", false},
		{"OTEL_BSP_MAX_QUEUE_SIZE", "100", false},
		{"OTEL_TRACES_SAMPLER", "parentbased_traceidratio", false},
		{"OTEL_TRACES_SAMPLER_ARG", "0.25", false},
		{"OTEL_TRACES_SAMPLER_ARG", "-0", false},
		{"OTEL_EXPORTER_PROMETHEUS_PORT", "65535", false},
		{"OTEL_EXPORTER_PROMETHEUS_PORT", "0", false},
		{"OTEL_EXPORTER_PROMETHEUS_HOST", "::", false},
		{"OTEL_RESOURCE_ATTRIBUTES", "z=1, team = a%20b ,a=%C3%A9,k=x=y", false},
		{"OTEL_RESOURCE_ATTRIBUTES", "a=1,,b=2", false},
		{"OTEL_SERVICE_NAME", "checkout\n", false},
	} {
		f.Add(index(s.name), s.value, s.http)
	}

	fs := fields()
	f.Fuzz(func(t *testing.T, i uint, value string, httpProtocol bool) {
		v := vars[i%uint(len(vars))]
		environ := []string{v.Name + "=" + value}
		if httpProtocol && v.Name != "OTEL_EXPORTER_OTLP_PROTOCOL" {
			environ = append(environ, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf")
		}
		c, err := Load(environ)
		if err != nil {
			checkFuzzError(t, err, v, value)
			return
		}
		if len(c.Warnings) != 0 {
			t.Errorf("%q: warnings %q", environ, c.Warnings)
		}
		checkConfig(t, c)
		checkTelemetry(t, c.Telemetry)
		if value == "" && !httpProtocol && !reflect.DeepEqual(c, defaults()) {
			t.Errorf("%s empty is not the defaults: %+v", v.Name, c)
		}

		// Ours read back the same when written as the daemon writes them.
		j := slices.IndexFunc(fs, func(f field) bool { return f.name == v.Name })
		if j < 0 {
			return
		}
		fv := reflect.ValueOf(c).Field(fs[j].index)
		if fs[j].min != "" || fs[j].gt != "" || fs[j].max != "" || fs[j].pow2 {
			checkBounds(t, fs[j], fv, value)
		}
		again := format(fv)
		environ[0] = v.Name + "=" + again
		c2, err := Load(environ)
		if err != nil {
			t.Fatalf("%s=%q loaded, but not as written back, %q: %v", v.Name, value, again, err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Errorf("%s=%q and %q, its value written back, differ:\n%+v\n%+v", v.Name, value, again, c, c2)
		}
	})
}

// checkFuzzError asserts err is the one-line *Error of variable v set to
// value.
func checkFuzzError(t *testing.T, err error, v Variable, value string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s=%q: error %v is %T, want *Error", v.Name, value, err, err)
	}
	if e.Var != v.Name {
		t.Errorf("%s=%q: error names %s: %v", v.Name, value, e.Var, err)
	}
	want := value
	switch {
	case strings.HasSuffix(v.Name, "_HEADERS"):
		want = maskHeaders(value)
		checkMaskedHeaders(t, value, e.Value)
	case strings.HasSuffix(v.Name, "_ENDPOINT"):
		// A URL's user and password are masked; a grpc host:port is
		// shown as it is (no "://": url.Parse may still find a user in
		// "//user@host:port", but such a value is no URL to us).
		if u, perr := url.Parse(value); perr == nil && u.User != nil && (e.Value != value || strings.Contains(value, "://")) {
			want = maskUserinfo(value)
			// The mask takes the place of exactly what url.Parse reads
			// as the user and password.
			m, perr := url.Parse(want)
			if perr != nil || m.User == nil || m.User.Username() != "***" || hasPassword(m.User) || m.Host != u.Host || m.Path != u.Path || m.RawQuery != u.RawQuery {
				t.Errorf("%s=%q: masked as %q, which url.Parse reads as %+v, %v", v.Name, value, want, m, perr)
			}
		}
	}
	if e.Value != want {
		t.Errorf("%s=%q: error has the value %q, want %q", v.Name, value, e.Value, want)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	if w := e.Var + "=" + strconv.Quote(e.Value) + ": " + e.Allowed; msg != w {
		t.Errorf("error = %q, want %q", msg, w)
	}
	if !strings.Contains(e.Allowed, "must ") {
		t.Errorf("%s=%q: error %q does not say what is allowed", v.Name, value, msg)
	}
	if !strings.HasPrefix(v.Name, Prefix) {
		return // the standard variables' errors may quote part of the value
	}
	for _, lib := range []string{"env:", "parse error on field", "strconv.", "time: ", "%!"} {
		if strings.Contains(e.Allowed, lib) {
			t.Errorf("%s=%q: error %q has a library's %q", v.Name, value, msg, lib)
		}
	}
	if !strings.HasPrefix(e.Allowed, "must be "+strings.SplitN(v.Allowed, ",", 2)[0]) {
		t.Errorf("%s=%q: error %q disagrees with --help's %q", v.Name, value, msg, v.Allowed)
	}
}

func hasPassword(u *url.Userinfo) bool { _, ok := u.Password(); return ok }

// checkBounds asserts the value of field f is within its bounds' tags.
func checkBounds(t *testing.T, f field, v reflect.Value, raw string) {
	t.Helper()
	n := number(v)
	if n != n { // NaN
		t.Errorf("%s=%q: NaN accepted", f.name, raw)
	}
	if (f.min != "" && n < f.bound(f.min)) || (f.gt != "" && n <= f.bound(f.gt)) || (f.max != "" && n > f.bound(f.max)) {
		t.Errorf("%s=%q: %v is out of bounds (min %q, above %q, max %q)", f.name, raw, v, f.min, f.gt, f.max)
	}
	if f.pow2 && (v.Int() <= 0 || bits.OnesCount64(uint64(v.Int())) != 1) {
		t.Errorf("%s=%q: %v is not a power of two", f.name, raw, v)
	}
}

// format writes a Config field's value as a user would set it.
func format(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case Syscalls:
		names := make([]string, len(x))
		for i, s := range x {
			names[i] = s.String()
		}
		return strings.Join(names, ",")
	case LibcPaths:
		return strings.Join(x, ":")
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case fmt.Stringer: // Bytes, time.Duration, Switch and the enums
		return x.String()
	case int:
		return strconv.Itoa(x)
	}
	if v.Kind() == reflect.String {
		return v.String()
	}
	panic("format: no case for " + v.Type().String())
}

// checkConfig asserts what Config documents of our variables after Load.
func checkConfig(t *testing.T, c Config) {
	t.Helper()
	if c.WakeupBytes <= 0 || c.WakeupBytes >= c.RingbufSize {
		t.Errorf("WakeupBytes %d not above 0 and below RingbufSize %d", c.WakeupBytes, c.RingbufSize)
	}
	if len(c.Syscalls) == 0 {
		t.Error("no syscalls")
	}
	for i, s := range c.Syscalls {
		if !s.Valid() || slices.Contains(c.Syscalls[:i], s) {
			t.Errorf("syscalls %v: %v invalid or repeated", c.Syscalls, s)
		}
	}
	if slices.Contains(c.Syscalls, bpf.SyscallMlock2) && !slices.Contains(c.Syscalls, bpf.SyscallMlock) {
		t.Errorf("syscalls %v: mlock2 without mlock", c.Syscalls)
	}
	for _, p := range c.LibcPaths {
		if !strings.HasPrefix(p, "/") || strings.Contains(p, ":") {
			t.Errorf("libc path %q", p)
		}
	}
	if c.HealthAddr != "" {
		host, port, err := net.SplitHostPort(string(c.HealthAddr))
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 || strings.ContainsAny(host, " \t\n") {
			t.Errorf("health address %q", c.HealthAddr)
		}
	}
	if int(c.LogFormat) >= len(logFormatNames) || int(c.KernelHook) >= len(kernelHookNames) ||
		!slices.Contains(logLevels, c.LogLevel.Level()) {
		t.Errorf("enum out of range: %+v", c)
	}
}

// checkTelemetry asserts what Telemetry documents after Load.
func checkTelemetry(t *testing.T, tel Telemetry) {
	t.Helper()
	millis := func(name string, d time.Duration) {
		if d < time.Millisecond || d > maxOTELInt*time.Millisecond || d%time.Millisecond != 0 {
			t.Errorf("%s = %v, want whole milliseconds from 1 to %d", name, d, maxOTELInt)
		}
	}
	for _, s := range []struct {
		name string
		x    Exporter
		ok   []Exporter
	}{{"logs", tel.LogsExporter, signalExporters}, {"traces", tel.TracesExporter, signalExporters}, {"metrics", tel.MetricsExporter, metricExporters}} {
		if !slices.Contains(s.ok, s.x) {
			t.Errorf("%s exporter %v", s.name, s.x)
		}
	}
	for _, s := range []struct {
		signal string
		o      OTLPExport
	}{{"logs", tel.Logs}, {"traces", tel.Traces}, {"metrics", tel.Metrics}} {
		o := s.o
		millis(s.signal+" timeout", o.Timeout)
		if int(o.Protocol) >= len(protocolNames) || int(o.Compression) >= len(compressionNames) {
			t.Errorf("%s: protocol %v, compression %v", s.signal, o.Protocol, o.Compression)
		}
		if (o.ClientCertificate == "") != (o.ClientKey == "") {
			t.Errorf("%s: client certificate %q without key %q or the reverse", s.signal, o.ClientCertificate, o.ClientKey)
		}
		for k, v := range o.Headers {
			if !validHeaderKey(k) || strings.TrimSpace(v) != v || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
				t.Errorf("%s: header %q: %q", s.signal, k, v)
			}
		}
		if o.Protocol == ProtocolGRPC && !strings.Contains(o.Endpoint, "://") {
			continue // host:port
		}
		u, err := url.Parse(o.Endpoint)
		if err != nil || u.Hostname() == "" || u.User != nil {
			t.Errorf("%s: endpoint %q: %+v, %v", s.signal, o.Endpoint, u, err)
			continue
		}
		if scheme := strings.ToLower(u.Scheme); scheme != "http" && scheme != "https" || o.Insecure != (scheme == "http") {
			t.Errorf("%s: endpoint %q, insecure %v", s.signal, o.Endpoint, o.Insecure)
		}
	}
	for _, s := range []struct {
		name string
		b    Batch
	}{{"OTEL_BLRP_", tel.LogBatch}, {"OTEL_BSP_", tel.SpanBatch}} {
		millis(s.name+"SCHEDULE_DELAY", s.b.ScheduleDelay)
		millis(s.name+"EXPORT_TIMEOUT", s.b.ExportTimeout)
		if s.b.MaxQueueSize < 1 || s.b.MaxQueueSize > maxOTELInt || s.b.MaxExportBatch < 1 || s.b.MaxExportBatch > s.b.MaxQueueSize {
			t.Errorf("%s: queue %d, batch %d", s.name, s.b.MaxQueueSize, s.b.MaxExportBatch)
		}
	}
	if !(tel.SamplerRatio >= 0 && tel.SamplerRatio <= 1) || int(tel.Sampler) >= len(samplerNames) {
		t.Errorf("sampler %v, ratio %v", tel.Sampler, tel.SamplerRatio)
	}
	millis("OTEL_METRIC_EXPORT_INTERVAL", tel.MetricInterval)
	millis("OTEL_METRIC_EXPORT_TIMEOUT", tel.MetricTimeout)
	if int(tel.MetricTemporality) >= len(temporalityNames) || tel.PrometheusPort < 1 || tel.PrometheusPort > 65535 || tel.PrometheusHost == "" {
		t.Errorf("temporality %v, prometheus %q:%d", tel.MetricTemporality, tel.PrometheusHost, tel.PrometheusPort)
	}
}

// checkMaskedHeaders asserts masked is raw with every value hidden.
func checkMaskedHeaders(t *testing.T, raw, masked string) {
	t.Helper()
	rm, mm := strings.Split(raw, ","), strings.Split(masked, ",")
	if len(rm) != len(mm) {
		t.Fatalf("headers %q masked as %q: %d entries, want %d", raw, masked, len(mm), len(rm))
	}
	for i, m := range mm {
		k, _, found := strings.Cut(rm[i], "=")
		switch {
		case found && m != k+"=***",
			!found && strings.TrimSpace(rm[i]) != "" && m != "***",
			!found && strings.TrimSpace(rm[i]) == "" && m != rm[i]:
			t.Errorf("headers %q masked as %q: entry %d is %q", raw, masked, i+1, m)
		}
	}
}

// FuzzHeaders: OTEL_EXPORTER_OTLP_HEADERS (or a signal's own) parses into
// HTTP tokens and values without control characters, which written back
// percent-encoded parse the same; Load gives them to the signals the
// variable is for. A bad list is an *Error whose value shows no header
// value.
func FuzzHeaders(f *testing.F) {
	for _, s := range []string{
		"api-key=abc",
		" api-key = secret%20value , X-Tenant=t%2C1%3D2 ,authorization=Basic%20dXNlcjpwYXNz",
		"k=a+b", "k=%C3%A9t%C3%A9", "k=", "k=a=b", "k=1,k=2",
		"k", "k=1,", ",", "bad key=v", "k=%zz", "k=%0A", "k=\x7f", "=v", "k=%09tab%09",
	} {
		f.Add(s, uint8(0))
	}
	f.Add("x=y", uint8(2))
	signals := []string{"", "LOGS_", "TRACES_", "METRICS_"}
	f.Fuzz(func(t *testing.T, raw string, signal uint8) {
		name := "OTEL_EXPORTER_OTLP_" + signals[int(signal)%len(signals)] + "HEADERS"
		h, err := parseHeaders(name, raw)
		if err != nil {
			checkFuzzError(t, err, Variable{Name: name}, raw)
		} else {
			var b []string
			for k, v := range h {
				if !validHeaderKey(k) || strings.TrimSpace(v) != v || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
					t.Errorf("%q: header %q: %q", raw, k, v)
				}
				b = append(b, k+"="+url.PathEscape(v))
			}
			again := strings.Join(b, ",")
			if h2, err := parseHeaders(name, again); err != nil || !reflect.DeepEqual(h, h2) {
				t.Errorf("%q parsed as %q, written back as %q, which parses as %q, %v", raw, h, again, h2, err)
			}
		}
		if raw == "" {
			return
		}
		c, lerr := Load([]string{name + "=" + raw})
		if (lerr == nil) != (err == nil) || (err != nil && lerr.Error() != err.Error()) {
			t.Fatalf("%s=%q: Load says %v, parseHeaders %v", name, raw, lerr, err)
		}
		if err != nil {
			return
		}
		for _, s := range []struct {
			signal string
			o      OTLPExport
		}{{"LOGS_", c.Telemetry.Logs}, {"TRACES_", c.Telemetry.Traces}, {"METRICS_", c.Telemetry.Metrics}} {
			mine := signal%4 == 0 || signals[int(signal)%len(signals)] == s.signal
			if mine && !reflect.DeepEqual(s.o.Headers, h) || !mine && s.o.Headers != nil {
				t.Errorf("%s=%q: %sheaders %q, parsed %q", name, raw, s.signal, s.o.Headers, h)
			}
		}
	})
}

// FuzzResourceAttributes: OTEL_RESOURCE_ATTRIBUTES parses into trimmed,
// non-empty keys and decoded values, one per entry in order, which written
// back percent-encoded parse the same; a bad list is an *Error naming the
// variable, the value and the entry at fault.
func FuzzResourceAttributes(f *testing.F) {
	for _, s := range []string{
		"deployment.environment.name=prod,team=a%20b",
		"z=1, team = a%20b ,a=%C3%A9,k=x=y,k=2,e=",
		"service.name=checkout", "k8s.pod.name=web-0,k8s.namespace.name=shop",
		"a=1,,b=2", "a", "=x", "a=%", "a=%2", " = ", "a=%2C%3D", "a=b,",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		const name = "OTEL_RESOURCE_ATTRIBUTES"
		attrs, err := parseResource(raw)
		if err != nil {
			checkFuzzError(t, err, Variable{Name: name}, raw)
			var e *Error
			errors.As(err, &e)
			entries := strings.Count(raw, ",") + 1
			var n int
			if _, serr := fmt.Sscanf(e.Allowed[strings.Index(e.Allowed, "; entry ")+len("; entry "):], "%d", &n); serr != nil || n < 1 || n > entries {
				t.Errorf("%q: error %q does not name one of its %d entries", raw, err, entries)
			}
		} else {
			if n := strings.Count(raw, ",") + 1; len(attrs) != n {
				t.Errorf("%q: %d attributes from %d entries", raw, len(attrs), n)
			}
			var b []string
			for _, a := range attrs {
				if a.Key == "" || strings.TrimSpace(a.Key) != a.Key || strings.ContainsAny(a.Key, "=,") {
					t.Errorf("%q: key %q", raw, a.Key)
				}
				b = append(b, a.Key+"="+url.PathEscape(a.Value))
			}
			again := strings.Join(b, ",")
			if attrs2, err := parseResource(again); err != nil || !slices.Equal(attrs, attrs2) {
				t.Errorf("%q parsed as %q, written back as %q, which parses as %q, %v", raw, attrs, again, attrs2, err)
			}
		}
		if raw == "" {
			return
		}
		c, lerr := Load([]string{name + "=" + raw})
		if (lerr == nil) != (err == nil) || (err != nil && lerr.Error() != err.Error()) {
			t.Fatalf("Load says %v, parseResource %v", lerr, err)
		}
		if err == nil && !slices.Equal(c.Telemetry.ResourceAttributes, attrs) {
			t.Errorf("Load's attributes %q, parsed %q", c.Telemetry.ResourceAttributes, attrs)
		}
	})
}
