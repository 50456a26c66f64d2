package testutil

import (
	"net"
	"testing"
)

// FreeLoopbackAddr returns a loopback address ("127.0.0.1:port") that
// nothing listens on when it returns: for a server to start on, or for a
// collector that is down.
func FreeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free loopback port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
