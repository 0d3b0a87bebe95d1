package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// Server returns the TLS configuration of rexecd: it presents the
// certificate in certFile with the key in keyFile. When clientCAFile is not
// empty every client must present a certificate that a CA in it signed
// (mTLS); otherwise clients are not asked for one. The files are read once;
// NewReloadable gives a configuration that can read them again.
func Server(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS needs both --tls-cert and --tls-key")
	}
	cfg, _, err := loadServer(certFile, keyFile, clientCAFile)
	return cfg, err
}

// loadServer reads the server's files into a complete configuration, and
// says what it loaded.
func loadServer(certFile, keyFile, clientCAFile string) (*tls.Config, Loaded, error) {
	var l Loaded
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, l, fmt.Errorf("server certificate (%s, %s): %w", certFile, keyFile, err)
	}
	l.Cert = cert.Leaf // set by LoadX509KeyPair since Go 1.23
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2"},
	}
	if clientCAFile != "" {
		pool, n, err := loadPool(clientCAFile)
		if err != nil {
			return nil, l, fmt.Errorf("client CA: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		l.ClientCAs = n
	}
	return cfg, l, nil
}

// Client returns the TLS configuration of a rexec client: it trusts the CAs
// in caFile (the system's roots when caFile is empty) and, when certFile and
// keyFile are given, presents that certificate to a server that asks (mTLS).
// The server name is checked against the address dialed.
func Client(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13}
	if caFile != "" {
		pool, _, err := loadPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("server CA: %w", err)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a client certificate needs both --tls-cert and --tls-key")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// loadPool reads the PEM certificates in file into a pool and counts them.
// A block that is not a parsable certificate is an error naming it, not
// skipped: a CA file cut short by a copy must not quietly trust fewer CAs.
func loadPool(file string) (*x509.CertPool, int, error) {
	rest, err := os.ReadFile(file)
	if err != nil {
		return nil, 0, err
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: certificate %d: %w", file, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, 0, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, n, nil
}
