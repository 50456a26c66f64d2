package otlpsend

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

const (
	// maxResponseBody bounds what we read of a response: partial-success
	// messages are small, and an error page is only quoted.
	maxResponseBody = 1 << 20
	// errorSnippetLen is how much of an error response goes into the error.
	errorSnippetLen = 256
)

type httpTransport struct {
	url    string
	client *http.Client
	header http.Header
	gzip   bool
}

func newHTTP(cfg Config, gz bool) (*httpTransport, string, error) {
	const want = "want a full URL such as http://localhost:4318/v1/logs"
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return nil, "", fmt.Errorf("parse endpoint: %w: %s", err, want)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, "", fmt.Errorf("parse endpoint %q: %s", u.Redacted(), want)
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Batches are hundreds of KiB: fewer, larger writes.
	tr.WriteBufferSize = 64 << 10
	// Concurrent senders would otherwise reopen connections beyond the
	// default of 2 idle ones per host.
	tr.MaxIdleConnsPerHost = 16
	if u.Scheme == "https" {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, "", err
		}
		tr.TLSClientConfig = tc
	}

	h := make(http.Header, len(cfg.Headers)+3)
	for k, v := range cfg.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/x-protobuf")
	h.Set("User-Agent", userAgent)
	if gz {
		h.Set("Content-Encoding", "gzip")
	}

	t := &httpTransport{
		url: u.String(),
		client: &http.Client{
			Transport: tr,
			// A redirected POST may become a GET without body; report it
			// instead so that the endpoint gets fixed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		header: h,
		gzip:   gz,
	}
	return t, u.Redacted(), nil
}

var (
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(io.Discard) }}
	gzipBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

func (t *httpTransport) prepare(body []byte) ([]byte, func(), error) {
	if !t.gzip {
		return body, func() {}, nil
	}
	buf := gzipBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(buf)
	_, err := zw.Write(body)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	zw.Reset(io.Discard)
	gzipWriters.Put(zw)
	if err != nil {
		gzipBuffers.Put(buf)
		return nil, nil, fmt.Errorf("compress request: %w", err)
	}
	// Attempts fence off their readers before returning, so nothing reads
	// the buffer once done runs.
	return buf.Bytes(), func() { gzipBuffers.Put(buf) }, nil
}

func (t *httpTransport) attempt(ctx context.Context, payload []byte) (partialSuccess, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, nil)
	if err != nil {
		return partialSuccess{}, fmt.Errorf("build request: %w", err)
	}
	req.Header = t.header.Clone()
	// net/http may still be writing the body when the response has arrived
	// (an early error reply) and returns without waiting for that; the fence
	// stops such reads before we return, so the caller may reuse payload.
	f := &fence{}
	defer f.close()
	if len(payload) > 0 {
		req.ContentLength = int64(len(payload))
		req.Body = f.reader(payload)
		req.GetBody = func() (io.ReadCloser, error) { return f.reader(payload), nil }
	}

	resp, err := t.client.Do(req)
	if err != nil {
		return partialSuccess{}, classifyHTTPError(err)
	}
	defer func() {
		// Draining lets the connection be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
		_ = resp.Body.Close()
	}()

	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return decodeHTTPResponse(resp)
	}

	snippet := readSnippet(resp.Body)
	statusErr := fmt.Errorf("collector answered %s: %s", resp.Status, snippet)
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return partialSuccess{}, &retryableError{err: statusErr, throttle: retryAfter(resp.Header.Get("Retry-After"))}
	case http.StatusUnauthorized, http.StatusForbidden:
		return partialSuccess{}, fmt.Errorf("%w (check the credentials in the configured headers)", statusErr)
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return partialSuccess{}, fmt.Errorf("%w (check the endpoint URL and its path, e.g. /v1/logs or /v1/traces)", statusErr)
	case http.StatusRequestEntityTooLarge:
		return partialSuccess{}, fmt.Errorf("%w (send smaller batches or raise the collector's limit)", statusErr)
	}
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		return partialSuccess{}, fmt.Errorf("%w (the collector redirects to %q: set the endpoint to that URL)", statusErr, resp.Header.Get("Location"))
	}
	return partialSuccess{}, statusErr
}

func (t *httpTransport) close() error {
	t.client.CloseIdleConnections()
	return nil
}

// decodeHTTPResponse reads the partial success of a 2xx response. Like the
// SDK, it only decodes protobuf bodies: anything else carries no OTLP answer.
func decodeHTTPResponse(resp *http.Response) (partialSuccess, error) {
	var ps partialSuccess
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/x-protobuf" {
			return ps, nil
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		// The collector has accepted the request and only its answer is
		// lost; failing would make the caller send it again.
		return ps, nil
	}
	if err := ps.unmarshal(body); err != nil {
		return ps, fmt.Errorf("%w (the endpoint answered %s but not with an OTLP response: is it a collector?)", err, resp.Status)
	}
	return ps, nil
}

// classifyHTTPError sorts failures to get a response. Connection failures
// are retried, as their gRPC counterpart (Unavailable) is; the SDK does not
// retry them, but a collector restart should not lose a minute of batches.
// Certificate and protocol mismatches will not fix themselves.
func classifyHTTPError(err error) error {
	var (
		verifyErr    *tls.CertificateVerificationError
		authorityErr x509.UnknownAuthorityError
		hostErr      x509.HostnameError
		invalidErr   x509.CertificateInvalidError
		recordErr    tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &verifyErr), errors.As(err, &authorityErr), errors.As(err, &hostErr), errors.As(err, &invalidErr):
		return fmt.Errorf("%w (set the CA certificate file to the collector's CA, or fix its certificate)", err)
	case errors.Is(err, http.ErrSchemeMismatch), errors.As(err, &recordErr):
		return fmt.Errorf("%w (the collector does not speak TLS here: use an http:// endpoint)", err)
	}
	return &retryableError{err: err}
}

// retryAfter parses a Retry-After header, in seconds or as an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	// A count of seconds too large for a Duration means "not for ages":
	// the largest Duration, rather than a product that wraps, or nothing.
	if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); (err == nil || errors.Is(err, strconv.ErrRange)) && s > 0 {
		return time.Duration(min(s, int64(math.MaxInt64/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// readSnippet quotes the start of an error response on one line, since
// collectors and proxies put the reason there.
func readSnippet(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, errorSnippetLen+1))
	truncated := len(b) > errorSnippetLen
	if truncated {
		b = b[:errorSnippetLen]
	}
	s := strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(string(b), " "))
	s = strings.Join(strings.Fields(s), " ")
	switch {
	case s == "":
		return "(empty body)"
	case truncated:
		return strconv.Quote(s + "...")
	}
	return strconv.Quote(s)
}

// fence lets the request bodies of one attempt be withdrawn: after close
// returns, no reader of the fence touches its bytes again.
type fence struct {
	mu     sync.Mutex
	closed bool
}

var errWithdrawn = errors.New("request body withdrawn: the attempt is over")

func (f *fence) reader(b []byte) io.ReadCloser { return &fencedReader{f: f, b: b} }

func (f *fence) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
}

type fencedReader struct {
	f *fence
	b []byte
}

func (r *fencedReader) Read(p []byte) (int, error) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	if r.f.closed {
		return 0, errWithdrawn
	}
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func (r *fencedReader) Close() error { return nil }
