package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// otelEnv is the environment, for reading standard OTEL_* variables.
type otelEnv map[string]string

// get returns name's value; the empty string counts as unset.
func (e otelEnv) get(name string) (string, bool) {
	v := e[name]
	return v, v != ""
}

// pick returns the variable in effect for key (such as "ENDPOINT") and
// signal ("LOGS", "TRACES", "METRICS", or "" for the shared variable
// alone): the signal's own when set, else the shared one. ok is false when
// neither is.
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

// oneOf reads an enumerated variable: one of names (indexed by value), in
// any case; def when unset.
func oneOf[E ~uint8](e otelEnv, name string, names []string, def E) (E, error) {
	raw, ok := e.get(name)
	if !ok {
		return def, nil
	}
	var v E
	if enumParse(names, &v, []byte(raw)) != nil {
		return def, &Error{Var: name, Value: raw, Allowed: "must be " + orList(names) + " (case-insensitive)"}
	}
	return v, nil
}

// exporter reads OTEL_{LOGS,TRACES,METRICS}_EXPORTER: one of allowed.
func (e otelEnv) exporter(name string, allowed []Exporter) (Exporter, error) {
	raw, ok := e.get(name)
	if !ok {
		return defaultExporter, nil
	}
	for _, x := range allowed {
		if strings.EqualFold(raw, x.String()) {
			return x, nil
		}
	}
	msg := "must be " + exportersAllowed(allowed)
	if strings.Contains(raw, ",") {
		msg += "; one value, not a list" // the specification allows lists; we send each signal once
	}
	return defaultExporter, &Error{Var: name, Value: raw, Allowed: msg}
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
func (e otelEnv) millis(name string, def time.Duration) (time.Duration, error) {
	raw, set := e.get(name)
	return millis(name, raw, set, def)
}

func millis(name, raw string, set bool, def time.Duration) (time.Duration, error) {
	if !set {
		return def, nil
	}
	n, ok := positive(raw)
	if !ok {
		return 0, &Error{Var: name, Value: raw, Allowed: fmt.Sprintf("must be %s (e.g. %d)", millisAllowed, def.Milliseconds())}
	}
	return time.Duration(n) * time.Millisecond, nil
}

// count reads a variable holding a count of items; def when unset.
func (e otelEnv) count(name string, def int) (int, error) {
	raw, set := e.get(name)
	if !set {
		return def, nil
	}
	n, ok := positive(raw)
	if !ok {
		return 0, &Error{Var: name, Value: raw, Allowed: fmt.Sprintf("must be %s (e.g. %d)", countAllowed, def)}
	}
	return n, nil
}

// batch reads the batch processor variables starting with prefix
// ("OTEL_BLRP_" or "OTEL_BSP_").
func (e otelEnv) batch(prefix string, defDelay time.Duration) (Batch, error) {
	var b Batch
	var err error
	if b.ScheduleDelay, err = e.millis(prefix+"SCHEDULE_DELAY", defDelay); err != nil {
		return Batch{}, err
	}
	if b.ExportTimeout, err = e.millis(prefix+"EXPORT_TIMEOUT", defaultBatchExportTimeout); err != nil {
		return Batch{}, err
	}
	queueName := prefix + "MAX_QUEUE_SIZE"
	if b.MaxQueueSize, err = e.count(queueName, defaultMaxQueueSize); err != nil {
		return Batch{}, err
	}
	name := prefix + "MAX_EXPORT_BATCH_SIZE"
	raw, set := e.get(name)
	if !set {
		// As the SDK does: a smaller queue caps the default batch.
		b.MaxExportBatch = min(defaultMaxExportBatch, b.MaxQueueSize)
		return b, nil
	}
	if b.MaxExportBatch, err = e.count(name, defaultMaxExportBatch); err != nil {
		return Batch{}, err
	}
	if b.MaxExportBatch > b.MaxQueueSize {
		return Batch{}, &Error{Var: name, Value: raw,
			Allowed: fmt.Sprintf("must be a whole number from 1 to the queue size %d (%s)", b.MaxQueueSize, queueName)}
	}
	return b, nil
}

// export resolves the OTLP settings of signal ("LOGS", "TRACES" or
// "METRICS"); for "" it checks the shared variables alone, and the
// result's endpoint is not meaningful.
func (e otelEnv) export(signal string) (OTLPExport, error) {
	o := OTLPExport{Protocol: defaultProtocol, Compression: defaultCompression}

	protoName, raw, set := e.pick(signal, "PROTOCOL")
	if set {
		if enumParse(protocolNames, &o.Protocol, []byte(raw)) != nil {
			msg := "must be " + protocolAllowed
			if strings.EqualFold(raw, "http/json") {
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
		return OTLPExport{}, &Error{Var: insecureName, Value: insecureRaw, Allowed: "must be " + boolAllowed}
	}

	if name, raw, set := e.pick(signal, "HEADERS"); set {
		if o.Headers, err = parseHeaders(name, raw); err != nil {
			return OTLPExport{}, err
		}
	}

	if name, raw, set := e.pick(signal, "COMPRESSION"); set {
		if enumParse(compressionNames, &o.Compression, []byte(raw)) != nil {
			return OTLPExport{}, &Error{Var: name, Value: raw, Allowed: "must be " + compressionAllowed}
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
func resolveEndpoint(protocol Protocol, protoName, signal, name, raw string, set, insecure bool) (string, bool, error) {
	grpc := protocol == ProtocolGRPC
	path := "/v1/" + strings.ToLower(signal)
	if !set {
		if grpc {
			return defaultGRPCEndpoint, true, nil
		}
		return defaultHTTPEndpoint + path, true, nil
	}
	bad := func(value string) error {
		var allowed string
		if grpc {
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
	if grpc && !strings.Contains(raw, "://") {
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
	if grpc || signal == "" || name == "OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT" {
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
// with "***". The authority, where url.Parse looks for them, follows the
// scheme's "://" or, in a scheme-relative URL, the leading "//" ("//u@h").
func maskUserinfo(raw string) string {
	start := 2
	if !strings.HasPrefix(raw, "//") {
		i := strings.Index(raw, "://")
		if i < 0 {
			return "***"
		}
		start = i + 3
	}
	rest := raw[start:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return "***"
	}
	return raw[:start] + "***" + rest[at:]
}

// validPort reports whether p is a port number from 1 to 65535.
func validPort(p string) bool {
	n, err := strconv.ParseUint(p, 10, 16)
	return err == nil && n >= 1
}

// parseHeaders parses raw, the value of the variable name, as the
// specification's W3C-baggage-like list "k1=v1,k2=v2": keys are trimmed,
// values percent-decoded (a "+" stays a "+") then trimmed. A later entry
// with the same key wins.
func parseHeaders(name, raw string) (map[string]string, error) {
	out := make(map[string]string)
	for i, member := range strings.Split(raw, ",") {
		fail := func(why string) error {
			return &Error{Var: name, Value: maskHeaders(raw),
				Allowed: fmt.Sprintf("must be %s; entry %d %s (values not shown)", headersAllowed, i+1, why)}
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
