package otlpsend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"
)

// Signal selects the OTLP service a Client exports to.
type Signal int

const (
	// Logs exports ExportLogsServiceRequest bodies.
	Logs Signal = iota
	// Traces exports ExportTraceServiceRequest bodies.
	Traces
)

func (s Signal) String() string {
	switch s {
	case Logs:
		return "logs"
	case Traces:
		return "traces"
	}
	return fmt.Sprintf("Signal(%d)", int(s))
}

// items names what a partial-success count refers to, for messages.
func (s Signal) items() string {
	if s == Traces {
		return "spans"
	}
	return "log records"
}

const (
	// ProtocolGRPC is OTLP/gRPC.
	ProtocolGRPC = "grpc"
	// ProtocolHTTPProtobuf is OTLP/HTTP with protobuf bodies.
	ProtocolHTTPProtobuf = "http/protobuf"
)

// Config says where and how to send. The zero values of the optional fields
// match the defaults of the OpenTelemetry SDK's OTLP exporters.
type Config struct {
	// Protocol is "grpc" or "http/protobuf".
	Protocol string
	// Endpoint, already resolved by the caller per the OTel spec:
	// grpc: "host:port", "http://host:port" (plaintext) or "https://host:port"
	// (TLS); a path is ignored.
	// http/protobuf: the full URL to POST to, e.g.
	// "http://localhost:4318/v1/logs".
	Endpoint string
	// Insecure selects plaintext for a grpc Endpoint without a scheme; TLS
	// otherwise.
	Insecure bool
	// Headers are sent with every request, as gRPC metadata or HTTP headers.
	Headers map[string]string
	// Compression is "gzip" or "none"; "" means none.
	Compression string
	// Timeout bounds each attempt; 0 means 10s.
	Timeout time.Duration
	// CertificateFile is a PEM CA bundle to trust instead of the system roots.
	CertificateFile string
	// ClientCertificateFile and ClientKeyFile are a PEM pair for mutual TLS.
	ClientCertificateFile string
	ClientKeyFile         string
	// RetryMaxElapsed bounds retries of retryable failures; 0 means 1 minute;
	// negative means no retry; RetryForever retries until the context ends
	// or the client is closed.
	RetryMaxElapsed time.Duration
	// OnRetry, if set, is told of each failed attempt that will be
	// retried, with the wait before the next one, so that an outage is
	// known from its first failure rather than when Send gives up.
	OnRetry func(err error, wait time.Duration)
}

// RetryForever as Config.RetryMaxElapsed keeps retrying a retryable failure
// until the caller's context ends: a request is held until the collector
// takes it, refuses it for good, or the caller stops.
const RetryForever = time.Duration(math.MaxInt64)

const (
	defaultTimeout         = 10 * time.Second
	defaultRetryMaxElapsed = time.Minute

	// The SDK starts at 5s; our batches are frequent and a collector restart
	// is usually over in well under a second, so start lower.
	retryInitialInterval = 250 * time.Millisecond
	// The collector is usually a local agent: once it is back, records
	// should flow (and the outage be told) within a couple of seconds.
	// With 5s, a 30 s outage was reported as 33.6 s and its records
	// waited up to 5 s more; an attempt every 2 s costs nothing.
	retryMaxInterval = 2 * time.Second

	userAgent = "memlock-exporter-otlpsend"
)

// ErrClosed is returned by Send once Close has been called.
var ErrClosed = errors.New("client closed")

// PartialSuccessError reports that the collector accepted a request but
// rejected some of its items and said why. The request must not be sent
// again: the accepted items would be duplicated.
type PartialSuccessError struct {
	Signal   Signal
	Rejected int64
	Message  string
}

func (e *PartialSuccessError) Error() string {
	return fmt.Sprintf("collector rejected %d of the %s it was sent: %s", e.Rejected, e.Signal.items(), e.Message)
}

// Client sends encoded export requests for one signal to one collector. It is
// safe for concurrent use.
type Client struct {
	sig        Signal
	endpoint   string
	timeout    time.Duration
	maxElapsed time.Duration // negative: no retry; RetryForever: no bound
	onRetry    func(err error, wait time.Duration)
	tr         transport

	// life ends at Close so that waits and attempts in flight end with it.
	life      context.Context
	endLife   context.CancelFunc
	closeOnce sync.Once
	closeErr  error
}

// transport is one wire protocol.
type transport interface {
	// prepare turns a body into what attempts send, once per Send, so that
	// retries do not redo work such as compression. done must be called when
	// no attempt will use payload any more.
	prepare(body []byte) (payload []byte, done func(), err error)
	// attempt makes one export call. Failures worth repeating are wrapped in
	// *retryableError.
	attempt(ctx context.Context, payload []byte) (partialSuccess, error)
	close() error
}

// retryableError marks a failed attempt that may succeed if repeated;
// throttle is the minimum wait the server asked for, if any.
type retryableError struct {
	err      error
	throttle time.Duration
}

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// New validates cfg and prepares a client. It does not connect: an unreachable
// collector is reported by Send, so that the daemon can start before its
// collector does.
func New(sig Signal, cfg Config) (*Client, error) {
	if sig != Logs && sig != Traces {
		return nil, fmt.Errorf("create OTLP client: unknown signal %v", sig)
	}
	if cfg.Endpoint == "" {
		return nil, errors.New("create OTLP client: endpoint is empty: set the collector address")
	}
	var gzip bool
	switch strings.ToLower(cfg.Compression) {
	case "", "none":
	case "gzip":
		gzip = true
	default:
		return nil, fmt.Errorf("create OTLP client: unknown compression %q: use \"gzip\" or \"none\"", cfg.Compression)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("create OTLP client: negative timeout %v", cfg.Timeout)
	}
	if (cfg.ClientCertificateFile == "") != (cfg.ClientKeyFile == "") {
		return nil, errors.New("create OTLP client: client certificate and client key must be set together for mutual TLS")
	}

	c := &Client{sig: sig, timeout: cfg.Timeout, maxElapsed: cfg.RetryMaxElapsed, onRetry: cfg.OnRetry}
	if c.timeout == 0 {
		c.timeout = defaultTimeout
	}
	if c.maxElapsed == 0 {
		c.maxElapsed = defaultRetryMaxElapsed
	}

	var err error
	switch strings.ToLower(cfg.Protocol) {
	case ProtocolGRPC:
		c.tr, c.endpoint, err = newGRPC(sig, cfg, gzip)
	case ProtocolHTTPProtobuf:
		c.tr, c.endpoint, err = newHTTP(cfg, gzip)
	case "http/json":
		return nil, errors.New("create OTLP client: protocol http/json is not supported: use \"http/protobuf\" or \"grpc\"")
	default:
		return nil, fmt.Errorf("create OTLP client: unknown protocol %q: use \"grpc\" or \"http/protobuf\"", cfg.Protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("create OTLP %s client: %w", sig, err)
	}
	c.life, c.endLife = context.WithCancel(context.Background())
	return c, nil
}

// Endpoint returns a human-readable name of where c sends, for diagnostics.
func (c *Client) Endpoint() string { return c.endpoint }

// Close releases connections. Sends in progress end with an error, and later
// ones fail with ErrClosed.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.endLife()
		c.closeErr = c.tr.close()
	})
	return c.closeErr
}

// Send exports one encoded request: body is the protobuf encoding of an
// ExportLogsServiceRequest or ExportTraceServiceRequest, per the client's
// Signal. Retryable failures are retried with exponential backoff and jitter
// until RetryMaxElapsed has passed or ctx ends; each attempt is bounded by
// Timeout.
//
// On success err is nil and rejected is the number of items the collector
// refused through a partial-success response (usually 0). If the collector
// also explained the refusal, err is a *PartialSuccessError carrying that
// message and the same count; the request was still delivered and must not be
// sent again. Any other error means the request was not delivered, and
// rejected is 0; for gRPC the status stays reachable with status.Code.
//
// body is only read, and not retained after Send returns, so the caller may
// reuse it at once.
func (c *Client) Send(ctx context.Context, body []byte) (rejected int64, err error) {
	if c.life.Err() != nil {
		return 0, c.wrap(ErrClosed)
	}
	payload, done, err := c.tr.prepare(body)
	if err != nil {
		return 0, c.wrap(err)
	}
	defer done()

	var (
		bo       *backoff.ExponentialBackOff
		start    = time.Now()
		attempts int
	)
	for {
		attempts++
		ps, err := c.attempt(ctx, payload)
		if err == nil {
			if ps.message != "" {
				return ps.rejected, &PartialSuccessError{Signal: c.sig, Rejected: ps.rejected, Message: ps.message}
			}
			return ps.rejected, nil
		}

		var re *retryableError
		if !errors.As(err, &re) {
			return 0, c.wrap(err)
		}
		err = re.err
		switch {
		case c.life.Err() != nil:
			return 0, c.wrap(fmt.Errorf("%w during attempt %d: %w", ErrClosed, attempts, err))
		case ctx.Err() != nil:
			return 0, c.wrap(fmt.Errorf("stop retrying after %s: %w: %w", countAttempts(attempts), context.Cause(ctx), err))
		case c.maxElapsed < 0:
			return 0, c.wrap(fmt.Errorf("%w%s", err, giveUpHint(err)))
		}

		if bo == nil {
			bo = newRetryBackOff()
		}
		delay := max(bo.NextBackOff(), re.throttle)
		// Not elapsed+delay > maxElapsed: a server may ask for a delay
		// near the largest Duration, and the sum would wrap negative.
		if elapsed := time.Since(start); c.maxElapsed != RetryForever && delay > c.maxElapsed-elapsed {
			return 0, c.wrap(fmt.Errorf("give up after %s in %v%s: %w",
				countAttempts(attempts), elapsed.Round(time.Millisecond), giveUpHint(err), err))
		}
		if c.onRetry != nil {
			c.onRetry(c.wrap(fmt.Errorf("%w%s", err, giveUpHint(err))), delay)
		}
		if werr := c.wait(ctx, delay); werr != nil {
			return 0, c.wrap(fmt.Errorf("stop retrying after %s: %w: %w", countAttempts(attempts), werr, err))
		}
	}
}

// newRetryBackOff returns the waits between attempts: growing
// exponentially, and jittered so that clients that failed together do not
// all come back together.
func newRetryBackOff() *backoff.ExponentialBackOff {
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     retryInitialInterval,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          backoff.DefaultMultiplier,
		MaxInterval:         retryMaxInterval,
	}
	bo.Reset()
	return bo
}

func (c *Client) attempt(ctx context.Context, payload []byte) (partialSuccess, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	stop := context.AfterFunc(c.life, cancel)
	defer stop()
	return c.tr.attempt(actx, payload)
}

// wait sleeps between attempts, returning early with the reason if ctx ends
// or the client is closed.
func (c *Client) wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-c.life.Done():
		return ErrClosed
	}
}

func countAttempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

func (c *Client) wrap(err error) error {
	return fmt.Errorf("send %s to %s: %w", c.sig, c.endpoint, err)
}

// giveUpHint suggests what to check when retryable failures persisted.
func giveUpHint(err error) string {
	if errors.Is(err, context.DeadlineExceeded) || isGRPCDeadline(err) {
		return " (the collector is slow or overloaded: raise the timeout or send smaller batches)"
	}
	// gRPC reports failed handshakes as Unavailable, which is retried.
	if msg := err.Error(); strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:") {
		return " (TLS handshake failed: check the CA certificate file and that the collector serves TLS)"
	}
	return " (is the collector running and reachable?)"
}

// partialSuccess is the part of an Export*ServiceResponse we use. Logs and
// traces share its wire layout: field 1 holds a message whose field 1 is the
// rejected count (rejected_log_records / rejected_spans) and field 2 the
// error_message.
type partialSuccess struct {
	rejected int64
	message  string
}

// unmarshal decodes an Export*ServiceResponse. It is decoded as a logs
// response whatever the signal: the two share their wire layout (field 1,
// partial_success, holds the rejected count in field 1 and error_message in
// field 2).
func (p *partialSuccess) unmarshal(b []byte) error {
	var resp collogspb.ExportLogsServiceResponse
	if err := proto.Unmarshal(b, &resp); err != nil {
		return fmt.Errorf("decode export response: %w", err)
	}
	ps := resp.GetPartialSuccess()
	*p = partialSuccess{rejected: ps.GetRejectedLogRecords(), message: ps.GetErrorMessage()}
	return nil
}

// tlsConfig builds the client TLS settings from the PEM files in cfg, so that
// both transports trust and present the same certificates.
func tlsConfig(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CertificateFile != "" {
		pem, err := os.ReadFile(cfg.CertificateFile)
		if err != nil {
			return nil, fmt.Errorf("read CA certificate file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("parse CA certificate file %s: no PEM certificate found: point it at a PEM-encoded CA bundle", cfg.CertificateFile)
		}
		tc.RootCAs = pool
	}
	if cfg.ClientCertificateFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.ClientCertificateFile, cfg.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate and key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
