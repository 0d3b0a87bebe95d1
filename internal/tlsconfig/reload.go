package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync/atomic"
)

// Loaded says what a load or reload of the server's files read.
type Loaded struct {
	// Cert is the server certificate presented from now on.
	Cert *x509.Certificate
	// ClientCAs is the number of CA certificates that verify clients (0
	// without mTLS).
	ClientCAs int
}

// Reloadable is rexecd's TLS configuration with files that can be read
// again while it serves: each new handshake uses the certificate, key and
// client CAs of the last load that succeeded. Connections already open keep
// what they were made with. It is safe for concurrent use.
type Reloadable struct {
	certFile, keyFile, clientCAFile string
	// cur is the complete configuration of new handshakes, swapped whole
	// so that a handshake never sees a certificate with another's key, or
	// the new certificate with the old CAs.
	cur    atomic.Pointer[tls.Config]
	loaded atomic.Pointer[Loaded]
}

// NewReloadable loads the files as Server does and returns a Reloadable
// serving them.
func NewReloadable(certFile, keyFile, clientCAFile string) (*Reloadable, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS needs both --tls-cert and --tls-key")
	}
	r := &Reloadable{certFile: certFile, keyFile: keyFile, clientCAFile: clientCAFile}
	if _, err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files again. On success new handshakes use them at
// once; on any error (a certificate that does not match its key — as when
// the certificate was replaced and the key not yet —, a missing or
// unparsable file, a CA file with no certificate) nothing changes and the
// error says which file is wrong.
func (r *Reloadable) Reload() (Loaded, error) {
	cfg, l, err := loadServer(r.certFile, r.keyFile, r.clientCAFile)
	if err != nil {
		return Loaded{}, err
	}
	r.cur.Store(cfg)
	r.loaded.Store(&l)
	return l, nil
}

// Current says what new handshakes use.
func (r *Reloadable) Current() Loaded { return *r.loaded.Load() }

// MutualTLS reports whether clients must present a certificate.
func (r *Reloadable) MutualTLS() bool { return r.clientCAFile != "" }

// Config returns the configuration to serve with (e.g. through
// credentials.NewTLS): it hands each new handshake the current one.
func (r *Reloadable) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{"h2"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.cur.Load(), nil
		},
	}
}
