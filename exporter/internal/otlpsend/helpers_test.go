package otlpsend

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// testLogs builds n log records that look like ours, compressible like ours.
func testLogs(n int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "memlock-exporter-test")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("otlpsend-test")
	ts := pcommon.NewTimestampFromTime(time.Unix(1_700_000_000, 0))
	for i := range n {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(ts + pcommon.Timestamp(i))
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.Body().SetStr(fmt.Sprintf("process %d locked %d pages of memory", 1000+i%50, i*4))
		lr.Attributes().PutInt("process.pid", int64(1000+i%50))
		lr.Attributes().PutStr("process.executable.name", "postgres")
	}
	return ld
}

func encodeLogs(t testing.TB, ld plog.Logs) []byte {
	t.Helper()
	b, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	if err != nil {
		t.Fatalf("encode logs: %v", err)
	}
	return b
}

// logsJSON gives a comparable rendering of logs.
func logsJSON(t testing.TB, ld plog.Logs) string {
	t.Helper()
	b, err := plogotlp.NewExportRequestFromLogs(ld).MarshalJSON()
	if err != nil {
		t.Fatalf("render logs: %v", err)
	}
	return string(b)
}

func testTraces(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for i := range n {
		sp := ss.Spans().AppendEmpty()
		sp.SetName(fmt.Sprintf("mlock %d", i))
		sp.SetTraceID(pcommon.TraceID{1, 2, 3, byte(i)})
		sp.SetSpanID(pcommon.SpanID{4, 5, byte(i)})
	}
	return td
}

// exportCall is what a test server saw of one Export call.
type exportCall struct {
	json string
	md   metadata.MD
}

// recorder collects calls and answers them through handle (nil: plain
// success).
type recorder struct {
	mu     sync.Mutex
	calls  []exportCall
	handle func(call int) (rejected int64, msg string, err error)
}

func (r *recorder) record(ctx context.Context, json string) (int64, string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	r.mu.Lock()
	r.calls = append(r.calls, exportCall{json: json, md: md})
	n, h := len(r.calls), r.handle
	r.mu.Unlock()
	if h == nil {
		return 0, "", nil
	}
	return h(n)
}

func (r *recorder) snapshot() []exportCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exportCall(nil), r.calls...)
}

type logsServer struct {
	plogotlp.UnimplementedGRPCServer
	rec *recorder
}

func (s *logsServer) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	js, err := req.MarshalJSON()
	if err != nil {
		return plogotlp.ExportResponse{}, err
	}
	rejected, msg, err := s.rec.record(ctx, string(js))
	resp := plogotlp.NewExportResponse()
	if rejected != 0 || msg != "" {
		resp.PartialSuccess().SetRejectedLogRecords(rejected)
		resp.PartialSuccess().SetErrorMessage(msg)
	}
	return resp, err
}

type tracesServer struct {
	ptraceotlp.UnimplementedGRPCServer
	rec *recorder
}

func (s *tracesServer) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	js, err := req.MarshalJSON()
	if err != nil {
		return ptraceotlp.ExportResponse{}, err
	}
	rejected, msg, err := s.rec.record(ctx, string(js))
	resp := ptraceotlp.NewExportResponse()
	if rejected != 0 || msg != "" {
		resp.PartialSuccess().SetRejectedSpans(rejected)
		resp.PartialSuccess().SetErrorMessage(msg)
	}
	return resp, err
}

// countingListener counts the bytes servers read, which tells whether the
// client compressed.
type countingListener struct {
	net.Listener
	read  atomic.Int64
	mu    sync.Mutex
	conns []net.Conn
	total int
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.conns = append(l.conns, c)
	l.total++
	l.mu.Unlock()
	return &countingConn{Conn: c, n: &l.read}, nil
}

func (l *countingListener) accepted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// dropAll cuts every accepted connection, as a crashing collector would.
func (l *countingListener) dropAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// startGRPC serves on a fresh loopback port until the test ends.
func startGRPC(t testing.TB, register func(*grpc.Server), opts ...grpc.ServerOption) (string, *countingListener) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	cl := &countingListener{Listener: lis}
	srv := grpc.NewServer(opts...)
	register(srv)
	go func() { _ = srv.Serve(cl) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), cl
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

func newClient(t testing.TB, sig Signal, cfg Config) *Client {
	t.Helper()
	c, err := New(sig, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// rawMessage is a gRPC message as its bytes on the wire: protobuf-go hands
// a type that decodes and encodes itself (as generated code did before the
// protobuf APIv2) the bytes as they are, so a test server on the standard
// codec sees exactly what the client sent, and decodes nothing.
type rawMessage struct {
	keep bool // keep what Unmarshal is given in b
	b    []byte
}

func (*rawMessage) Reset()         {}
func (*rawMessage) String() string { return "rawMessage" }
func (*rawMessage) ProtoMessage()  {}

func (m *rawMessage) Unmarshal(b []byte) error {
	if m.keep {
		m.b = bytes.Clone(b)
	}
	return nil
}

func (m *rawMessage) Marshal() ([]byte, error) { return m.b, nil }

// rawServer answers every method through handle, which receives requests
// as rawMessages.
func rawServer(handle func(grpc.ServerStream) error) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(64 << 20),
		grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error { return handle(ss) }),
	}
}

// acceptAll discards a request and answers with an empty response.
func acceptAll(ss grpc.ServerStream) error {
	if err := ss.RecvMsg(&rawMessage{}); err != nil {
		return err
	}
	return ss.SendMsg(&rawMessage{})
}

// pki is a throwaway CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type pki struct {
	caFile, clientCert, clientKey string
	pool                          *x509.CertPool
	server                        tls.Certificate
}

func newPKI(t testing.TB) pki {
	t.Helper()
	dir := t.TempDir()
	caKey := genKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "otlpsend test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("create CA: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("parse CA: %v", err)
	}
	leaf := func(serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key := genKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: "otlpsend test"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			DNSNames:     []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatalf("create certificate: %v", err)
		}
		return der, key
	}
	p := pki{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)

	srvDER, srvKey := leaf(2, x509.ExtKeyUsageServerAuth)
	p.server = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}

	cliDER, cliKey := leaf(3, x509.ExtKeyUsageClientAuth)
	p.clientCert = writePEM(t, dir, "client.pem", "CERTIFICATE", cliDER)
	keyDER, err := x509.MarshalECPrivateKey(cliKey)
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	p.clientKey = writePEM(t, dir, "client-key.pem", "EC PRIVATE KEY", keyDER)
	return p
}

func genKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return k
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	return path
}
