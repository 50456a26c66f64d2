package otlpsend

import "crypto/tls"

// TLSConfig returns the client TLS settings of cfg's certificate files, so
// that other clients of the same collector (the SDK's metric exporters)
// trust and present the same certificates as a Client.
func TLSConfig(cfg Config) (*tls.Config, error) { return tlsConfig(cfg) }
