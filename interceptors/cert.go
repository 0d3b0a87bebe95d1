package interceptors

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// ClientCert is the connection's verified client certificate: the leaf of
// the chain that the server's client CAs verified (mTLS). It is nil for a
// plaintext connection, for TLS without client certificates, and for a
// certificate that was presented but not verified: an unverified
// certificate names nobody.
func ClientCert(conn *tls.ConnectionState) *x509.Certificate {
	if conn == nil || len(conn.VerifiedChains) == 0 || len(conn.VerifiedChains[0]) == 0 {
		return nil
	}
	return conn.VerifiedChains[0][0]
}

// ConnFromContext returns the TLS state of a gRPC call's connection, or nil
// when it is not TLS.
func ConnFromContext(ctx context.Context) *tls.ConnectionState {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil
	}
	// A copy made only here: &ti.State would move ti to the heap on every
	// call, TLS or not (this runs in every call's auth).
	st := ti.State
	return &st
}

// CertHasIdentity reports whether name is one of c's identities: its
// subject common name, a DNS SAN (compared without case, as DNS does; a
// wildcard is not expanded, it is a name like any other), or a URI SAN
// (e.g. spiffe://example.org/ci) written out in full. Email and IP SANs do
// not count.
func CertHasIdentity(c *x509.Certificate, name string) bool {
	if c == nil || name == "" {
		return false
	}
	if c.Subject.CommonName == name {
		return true
	}
	for _, d := range c.DNSNames {
		if strings.EqualFold(d, name) {
			return true
		}
	}
	for _, u := range c.URIs {
		if u.String() == name {
			return true
		}
	}
	return false
}

// CertIdentity is the identity of c for logs: name when the key's cert=
// option matched it (the identity that authorized the call), else the
// subject common name, else the first URI SAN, else the first DNS SAN,
// else the whole subject.
func CertIdentity(c *x509.Certificate, name string) string {
	switch {
	case c == nil:
		return ""
	case CertHasIdentity(c, name):
		return name
	case c.Subject.CommonName != "":
		return c.Subject.CommonName
	case len(c.URIs) > 0:
		return c.URIs[0].String()
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	}
	return c.Subject.String()
}

// CheckConn says whether k may be used on a connection with TLS state conn
// (nil: no TLS, such as the raw transport). A key without cert= may be used
// on any; a key with cert=NAME only where ClientCert(conn) has the identity
// NAME. The error is for the server's log: the client is told only that
// authentication failed. A nil key passes (the caller has refused it).
func CheckConn(k *Key, conn *tls.ConnectionState) error {
	if k == nil || k.Cert == "" {
		return nil
	}
	c := ClientCert(conn)
	switch {
	case conn == nil:
		return fmt.Errorf("key %q is bound to client certificate %q (cert=) and this connection has no TLS (the raw transport cannot carry a certificate)", k.ID, k.Cert)
	case c == nil:
		return fmt.Errorf("key %q is bound to client certificate %q (cert=) and this connection has no verified client certificate (is --tls-client-ca given?)", k.ID, k.Cert)
	case !CertHasIdentity(c, k.Cert):
		return fmt.Errorf("key %q is bound to client certificate %q (cert=), and this connection's certificate is %q (serial %s)", k.ID, k.Cert, CertIdentity(c, ""), c.SerialNumber.Text(16))
	}
	return nil
}
