package config

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of the standard log and trace settings, as in the OpenTelemetry
// specification (the endpoint and protocol defaults are in sdkdefaults.go),
// but for the queue and batch sizes. The specification's queue of 2048
// holds 40 ms of events at 50 000 calls/s, so a collector that pauses that
// long loses some; 8192 (about 8 MiB of encoded records at most) rides out
// 160 ms. Its batch of 512 means 100 exports a second at that rate, and
// each export has a fixed cost (a gRPC call, goroutine and thread wake-ups)
// that came to about 0.8 µs per event on a 2-CPU machine; batches of 2048
// (the exporter also ends a batch at 2 MiB) cost a quarter of that.
const (
	defaultOTLPTimeout        = 10 * time.Second
	defaultBLRPScheduleDelay  = time.Second
	defaultBSPScheduleDelay   = 5 * time.Second
	defaultBatchExportTimeout = 30 * time.Second
	defaultMaxQueueSize       = 8192
	defaultMaxExportBatch     = 2048
	defaultSampler            = "parentbased_always_on"

	// maxOTELInt is the largest count or number of milliseconds accepted.
	maxOTELInt = math.MaxInt32
)

// OTLPExport is where and how one signal (logs or traces) is sent, resolved
// from the environment per the OpenTelemetry specification, with our
// defaults. Each field comes from the signal's own variable
// (OTEL_EXPORTER_OTLP_LOGS_* or OTEL_EXPORTER_OTLP_TRACES_*) when set, else
// from the shared OTEL_EXPORTER_OTLP_* one.
type OTLPExport struct {
	// Protocol is "grpc" (our default) or "http/protobuf".
	Protocol string
	// Endpoint is, for grpc, the endpoint as given (a URL or host:port),
	// default "http://localhost:4317"; for http/protobuf, the full URL: a
	// signal-specific endpoint as given, the shared one with "/v1/logs" or
	// "/v1/traces" appended to its path, default
	// "http://localhost:4318/v1/logs" (or /v1/traces).
	Endpoint string
	// Insecure means plaintext: true for an http:// endpoint, false for
	// https://, and OTEL_EXPORTER_OTLP_*INSECURE for a grpc host:port.
	Insecure bool
	// Headers are sent with every export; nil when none. Signal-specific
	// headers replace the shared set entirely.
	Headers map[string]string
	// Compression is "gzip" or "none" (the default).
	Compression string
	// Timeout bounds one export request; default 10s.
	Timeout time.Duration
	// Certificate, ClientCertificate and ClientKey are PEM file paths, ""
	// when unset; they are not opened here. The client certificate and key
	// are both set or both empty.
	Certificate, ClientCertificate, ClientKey string
}

// Batch is a batch processor's settings.
type Batch struct {
	// ScheduleDelay is the longest an item waits before it is sent: logs
	// 1s (OTEL_BLRP_SCHEDULE_DELAY), traces 5s (OTEL_BSP_SCHEDULE_DELAY).
	ScheduleDelay time.Duration
	// ExportTimeout bounds one export, retries included; default 30s.
	ExportTimeout time.Duration
	// MaxQueueSize is the most items waiting; default 8192 (the
	// specification says 2048; see defaultMaxQueueSize).
	MaxQueueSize int
	// MaxExportBatch is the most items per export, at most MaxQueueSize;
	// default 2048 (the specification says 512; see defaultMaxExportBatch),
	// or MaxQueueSize when that is smaller.
	MaxExportBatch int
}

// Telemetry holds the standard OTEL_* settings of the log and trace
// pipelines (which of them Config.OTLPEncoder chooses is Load's business).
type Telemetry struct {
	// LogsExporter is OTEL_LOGS_EXPORTER: "otlp" (default), "console" or "none".
	LogsExporter string
	// TracesExporter is OTEL_TRACES_EXPORTER: "otlp" (default), "console" or "none".
	TracesExporter string
	// MetricsExporter is OTEL_METRICS_EXPORTER: "otlp" (default),
	// "prometheus", "console" or "none". Only checked here: the SDK reads
	// it, with the other metric settings, itself.
	MetricsExporter string
	// Logs and Traces are the OTLP settings of each signal.
	Logs, Traces OTLPExport
	// LogBatch is OTEL_BLRP_*, SpanBatch OTEL_BSP_*.
	LogBatch, SpanBatch Batch
	// Sampler is OTEL_TRACES_SAMPLER: "always_on", "always_off",
	// "traceidratio", "parentbased_always_on" (default),
	// "parentbased_always_off" or "parentbased_traceidratio".
	Sampler string
	// SamplerRatio is OTEL_TRACES_SAMPLER_ARG, used by the ratio samplers:
	// 0 to 1, default 1.
	SamplerRatio float64
}

// LoadTelemetry reads the settings of the log and trace pipelines from
// environ, as Load does: "NAME=value" entries, the last one of a name wins.
// A standard OTEL_* variable set to the empty string counts as unset.
// Enumerated values are case-insensitive and returned in lower case.
//
// Every problem is returned as an *Error; values of header variables are
// masked in it (Value shows only the keys). When there are several, the
// first in this order is reported: OTEL_LOGS_EXPORTER, OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER; the
// shared OTEL_EXPORTER_OTLP_* variables, then those in effect for logs, then
// for traces, each time in the order PROTOCOL, ENDPOINT, INSECURE, HEADERS,
// COMPRESSION, TIMEOUT, CERTIFICATE, CLIENT_CERTIFICATE, CLIENT_KEY;
// OTEL_BLRP_*, then OTEL_BSP_*, each in the order SCHEDULE_DELAY,
// EXPORT_TIMEOUT, MAX_QUEUE_SIZE, MAX_EXPORT_BATCH_SIZE; then
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
//
// The shared variables are checked even where both signals override them,
// because the SDK's metric exporter uses them too.
func LoadTelemetry(environ []string) (Telemetry, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			vars[k] = v
		}
	}
	e := otelEnv(vars)
	var t Telemetry
	var err error

	signals := []string{"otlp", "console", "none"}
	if t.LogsExporter, err = e.oneOf("OTEL_LOGS_EXPORTER", "otlp", signals...); err != nil {
		return Telemetry{}, err
	}
	if t.TracesExporter, err = e.oneOf("OTEL_TRACES_EXPORTER", "otlp", signals...); err != nil {
		return Telemetry{}, err
	}
	if t.MetricsExporter, err = e.oneOf("OTEL_METRICS_EXPORTER", "otlp", "otlp", "prometheus", "console", "none"); err != nil {
		return Telemetry{}, err
	}

	if _, err = e.export(""); err != nil {
		return Telemetry{}, err
	}
	if t.Logs, err = e.export("LOGS"); err != nil {
		return Telemetry{}, err
	}
	if t.Traces, err = e.export("TRACES"); err != nil {
		return Telemetry{}, err
	}

	if t.LogBatch, err = e.batch("OTEL_BLRP_", defaultBLRPScheduleDelay); err != nil {
		return Telemetry{}, err
	}
	if t.SpanBatch, err = e.batch("OTEL_BSP_", defaultBSPScheduleDelay); err != nil {
		return Telemetry{}, err
	}

	if t.Sampler, err = e.oneOf("OTEL_TRACES_SAMPLER", defaultSampler,
		"always_on", "always_off", "traceidratio",
		"parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"); err != nil {
		return Telemetry{}, err
	}
	t.SamplerRatio = 1
	if raw, ok := e.get("OTEL_TRACES_SAMPLER_ARG"); ok {
		r, perr := strconv.ParseFloat(raw, 64)
		if perr != nil || !(r >= 0 && r <= 1) { // NaN fails too
			return Telemetry{}, &Error{Var: "OTEL_TRACES_SAMPLER_ARG", Value: raw,
				Allowed: "must be a number from 0 to 1, the fraction of traces sampled (e.g. 0.25)"}
		}
		t.SamplerRatio = r
	}
	return t, nil
}

// otelEnv is the environment, for reading standard OTEL_* variables.
type otelEnv map[string]string

// get returns name's value; the empty string counts as unset.
func (e otelEnv) get(name string) (string, bool) {
	v := e[name]
	return v, v != ""
}

// pick returns the variable in effect for key (such as "ENDPOINT") and
// signal ("LOGS", "TRACES", or "" for the shared variable alone): the
// signal's own when set, else the shared one. ok is false when neither is.
func (e otelEnv) pick(signal, key string) (name, raw string, ok bool) {
	if signal != "" {
		name = "OTEL_EXPORTER_OTLP_" + signal + "_" + key
		if raw, ok = e.get(name); ok {
			return name, raw, true
		}
	}
	name = "OTEL_EXPORTER_OTLP_" + key
	raw, ok = e.get(name)
	return name, raw, ok
}

// oneOf reads an enumerated variable: one of allowed, in any case; def when
// unset.
func (e otelEnv) oneOf(name, def string, allowed ...string) (string, error) {
	raw, ok := e.get(name)
	if !ok {
		return def, nil
	}
	v := strings.ToLower(raw)
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	msg := "must be " + orList(allowed) + " (case-insensitive)"
	if strings.Contains(raw, ",") {
		msg += "; one value, not a list"
	}
	return "", &Error{Var: name, Value: raw, Allowed: msg}
}

// orList writes "a", "a or b", "a, b or c".
func orList(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// positive parses a whole number from 1 to maxOTELInt: digits only.
func positive(raw string) (int, bool) {
	n, err := strconv.ParseUint(raw, 10, 32)
	if err != nil || n < 1 || n > maxOTELInt {
		return 0, false
	}
	return int(n), true
}

// millis reads a variable holding milliseconds; def when unset.
func millis(name, raw string, set bool, def time.Duration) (time.Duration, error) {
	if !set {
		return def, nil
	}
	n, ok := positive(raw)
	if !ok {
		return 0, &Error{Var: name, Value: raw,
			Allowed: fmt.Sprintf("must be a whole number of milliseconds from 1 to %d (e.g. %d)", maxOTELInt, def.Milliseconds())}
	}
	return time.Duration(n) * time.Millisecond, nil
}

// count reads a variable holding a count of items; def when unset.
func count(name, raw string, set bool, def int) (int, error) {
	if !set {
		return def, nil
	}
	n, ok := positive(raw)
	if !ok {
		return 0, &Error{Var: name, Value: raw,
			Allowed: fmt.Sprintf("must be a whole number from 1 to %d (e.g. %d)", maxOTELInt, def)}
	}
	return n, nil
}

// batch reads the batch processor variables starting with prefix
// ("OTEL_BLRP_" or "OTEL_BSP_").
func (e otelEnv) batch(prefix string, defDelay time.Duration) (Batch, error) {
	var b Batch
	var err error
	name := prefix + "SCHEDULE_DELAY"
	raw, set := e.get(name)
	if b.ScheduleDelay, err = millis(name, raw, set, defDelay); err != nil {
		return Batch{}, err
	}
	name = prefix + "EXPORT_TIMEOUT"
	raw, set = e.get(name)
	if b.ExportTimeout, err = millis(name, raw, set, defaultBatchExportTimeout); err != nil {
		return Batch{}, err
	}
	queueName := prefix + "MAX_QUEUE_SIZE"
	raw, set = e.get(queueName)
	if b.MaxQueueSize, err = count(queueName, raw, set, defaultMaxQueueSize); err != nil {
		return Batch{}, err
	}
	name = prefix + "MAX_EXPORT_BATCH_SIZE"
	raw, set = e.get(name)
	if !set {
		// As the SDK does: a smaller queue caps the default batch.
		b.MaxExportBatch = min(defaultMaxExportBatch, b.MaxQueueSize)
		return b, nil
	}
	if b.MaxExportBatch, err = count(name, raw, set, defaultMaxExportBatch); err != nil {
		return Batch{}, err
	}
	if b.MaxExportBatch > b.MaxQueueSize {
		return Batch{}, &Error{Var: name, Value: raw,
			Allowed: fmt.Sprintf("must be a whole number from 1 to the queue size %d (%s)", b.MaxQueueSize, queueName)}
	}
	return b, nil
}

// export resolves the OTLP settings of signal ("LOGS" or "TRACES"); for
// "" it checks the shared variables alone, and the result's endpoint is not
// meaningful.
func (e otelEnv) export(signal string) (OTLPExport, error) {
	var o OTLPExport

	protoName, raw, set := e.pick(signal, "PROTOCOL")
	o.Protocol = defaultOTLPProtocol
	if set {
		o.Protocol = strings.ToLower(raw)
		if o.Protocol != "grpc" && o.Protocol != "http/protobuf" {
			msg := "must be grpc or http/protobuf (case-insensitive)"
			if o.Protocol == "http/json" {
				msg += "; http/json is not supported"
			}
			return OTLPExport{}, &Error{Var: protoName, Value: raw, Allowed: msg}
		}
	} else {
		protoName = "" // the default
	}

	// INSECURE only matters for a grpc host:port, which the endpoint
	// decides; its own error comes after the endpoint's.
	insecureName, insecureRaw, insecureSet := e.pick(signal, "INSECURE")
	insecure, insecureErr := false, error(nil)
	if insecureSet {
		insecure, insecureErr = parseBool(insecureRaw)
	}
	endpointName, raw, set := e.pick(signal, "ENDPOINT")
	var err error
	if o.Endpoint, o.Insecure, err = resolveEndpoint(o.Protocol, protoName, signal, endpointName, raw, set, insecure); err != nil {
		return OTLPExport{}, err
	}
	if insecureErr != nil {
		return OTLPExport{}, &Error{Var: insecureName, Value: insecureRaw, Allowed: "must be true or false (case-insensitive)"}
	}

	if name, raw, set := e.pick(signal, "HEADERS"); set {
		if o.Headers, err = parseHeaders(name, raw); err != nil {
			return OTLPExport{}, err
		}
	}

	o.Compression = "none"
	if name, raw, set := e.pick(signal, "COMPRESSION"); set {
		o.Compression = strings.ToLower(raw)
		if o.Compression != "gzip" && o.Compression != "none" {
			return OTLPExport{}, &Error{Var: name, Value: raw, Allowed: "must be gzip or none (case-insensitive)"}
		}
	}

	name, raw, set := e.pick(signal, "TIMEOUT")
	if o.Timeout, err = millis(name, raw, set, defaultOTLPTimeout); err != nil {
		return OTLPExport{}, err
	}

	// Paths are only recorded: the files are read when the exporter starts.
	_, o.Certificate, _ = e.pick(signal, "CERTIFICATE")
	certName, cert, _ := e.pick(signal, "CLIENT_CERTIFICATE")
	keyName, key, _ := e.pick(signal, "CLIENT_KEY")
	o.ClientCertificate, o.ClientKey = cert, key
	switch {
	case cert != "" && key == "":
		return OTLPExport{}, &Error{Var: certName, Value: cert,
			Allowed: "must come with its key: set " + signalVars(signal, "CLIENT_KEY") + " too"}
	case cert == "" && key != "":
		return OTLPExport{}, &Error{Var: keyName, Value: key,
			Allowed: "must come with its certificate: set " + signalVars(signal, "CLIENT_CERTIFICATE") + " too"}
	}
	return o, nil
}

// signalVars names the variables that can set key for signal.
func signalVars(signal, key string) string {
	if signal == "" {
		return "OTEL_EXPORTER_OTLP_" + key
	}
	return "OTEL_EXPORTER_OTLP_" + signal + "_" + key + " or OTEL_EXPORTER_OTLP_" + key
}

// resolveEndpoint checks raw, the value of the variable name in effect for
// signal's endpoint (set false: none is), under protocol (chosen by the
// variable protoName, "" for the default), and returns the endpoint to use
// and whether it is plaintext. insecure is the INSECURE setting, which only
// a grpc host:port obeys.
func resolveEndpoint(protocol, protoName, signal, name, raw string, set, insecure bool) (string, bool, error) {
	path := "/v1/" + strings.ToLower(signal)
	if !set {
		if protocol == "grpc" {
			return defaultOTLPGRPCEndpoint, true, nil
		}
		return defaultOTLPHTTPEndpoint + path, true, nil
	}
	bad := func(value string) error {
		var allowed string
		if protocol == "grpc" {
			allowed = "must be host:port or an http:// (plaintext) or https:// (TLS) URL with a host and no user:password (e.g. http://collector:4317)"
		} else {
			example := "http://collector:4318"
			if signal != "" && strings.HasPrefix(name, "OTEL_EXPORTER_OTLP_"+signal+"_") {
				example += path // the full URL
			}
			allowed = "must be an http:// (plaintext) or https:// (TLS) URL with a host and no user:password (e.g. " + example + ")"
		}
		by := "the default"
		if protoName != "" {
			by = protoName
		}
		return &Error{Var: name, Value: value, Allowed: fmt.Sprintf("with protocol %s (%s), %s", protocol, by, allowed)}
	}
	if protocol == "grpc" && !strings.Contains(raw, "://") {
		host, port, err := net.SplitHostPort(raw)
		if err != nil || host == "" || !validPort(port) || strings.ContainsAny(raw, "/?#@ ") {
			return "", false, bad(raw)
		}
		return raw, insecure, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, bad(raw)
	}
	if u.User != nil {
		return "", false, bad(maskUserinfo(raw))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Opaque != "" ||
		(u.Port() != "" || strings.HasSuffix(u.Host, ":")) && !validPort(u.Port()) {
		return "", false, bad(raw)
	}
	plaintext := u.Scheme == "http"
	if protocol == "grpc" || signal == "" || name == "OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT" {
		return raw, plaintext, nil // as given
	}
	// The shared endpoint is a base URL: append the signal's path.
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	if u.RawPath != "" {
		u.RawPath = strings.TrimSuffix(u.RawPath, "/") + path
	}
	return u.String(), plaintext, nil
}

// maskUserinfo replaces the user:password in URL raw, which url.Parse found,
// with "***".
func maskUserinfo(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return "***"
	}
	rest := raw[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return "***"
	}
	return raw[:i+3] + "***" + rest[at:]
}

// validPort reports whether p is a port number from 1 to 65535.
func validPort(p string) bool {
	n, err := strconv.ParseUint(p, 10, 16)
	return err == nil && n >= 1
}

// headersAllowed is what a headers variable must hold.
const headersAllowed = "must be key=value pairs separated by commas, each key an HTTP token and each value percent-encoded (e.g. api-key=abc,x-tenant=a%20b)"

// parseHeaders parses raw, the value of the variable name, as the
// specification's W3C-baggage-like list "k1=v1,k2=v2": keys are trimmed,
// values percent-decoded (a "+" stays a "+") then trimmed. A later entry
// with the same key wins.
func parseHeaders(name, raw string) (map[string]string, error) {
	out := make(map[string]string)
	for i, member := range strings.Split(raw, ",") {
		fail := func(why string) error {
			return &Error{Var: name, Value: maskHeaders(raw),
				Allowed: fmt.Sprintf("%s; entry %d %s (values not shown)", headersAllowed, i+1, why)}
		}
		k, v, found := strings.Cut(member, "=")
		if !found {
			if strings.TrimSpace(member) == "" {
				return nil, fail("is empty")
			}
			return nil, fail("has no =")
		}
		key := strings.TrimSpace(k)
		if !validHeaderKey(key) {
			return nil, fail(fmt.Sprintf("has the key %q, which is not an HTTP token", key))
		}
		val, err := url.PathUnescape(v)
		if err != nil {
			return nil, fail(fmt.Sprintf("(key %q) has a bad percent-escape in its value", key))
		}
		val = strings.TrimSpace(val)
		for _, c := range []byte(val) {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return nil, fail(fmt.Sprintf("(key %q) has a control character in its value", key))
			}
		}
		out[key] = val
	}
	return out, nil
}

// maskHeaders hides the values of a headers variable, which often hold
// credentials: "k1=***,k2=***", and "***" for an entry without "=".
func maskHeaders(raw string) string {
	members := strings.Split(raw, ",")
	for i, m := range members {
		if k, _, found := strings.Cut(m, "="); found {
			members[i] = k + "=***"
		} else if strings.TrimSpace(m) != "" {
			members[i] = "***"
		}
	}
	return strings.Join(members, ",")
}

// validHeaderKey reports whether k is an HTTP token (RFC 9110), as the
// OpenTelemetry Go SDK requires.
func validHeaderKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
