package interceptors

import (
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rexec/rexec/internal/tlsconfig"
)

// verifiedConn returns the TLS state a server has after verifying the
// client certificate id against the CA of f, as mTLS does.
func verifiedConn(t *testing.T, f *tlsconfig.Files, id tlsconfig.Identity) *tls.ConnectionState {
	t.Helper()
	out := filepath.Join(t.TempDir(), "client")
	c, err := tlsconfig.Issue(f.CACert, f.CAKey, out+".crt", out+".key", id)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(f.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	chains, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Fatal(err)
	}
	return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, VerifiedChains: chains}
}

func TestCertIdentity(t *testing.T) {
	f, err := tlsconfig.WriteDemo(filepath.Join(t.TempDir(), "certs"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	spiffe, _ := url.Parse("spiffe://example.org/ci")
	conn := verifiedConn(t, f, tlsconfig.Identity{CommonName: "ci-runner", DNSNames: []string{"CI.example.org"}, URIs: []*url.URL{spiffe}})
	c := ClientCert(conn)
	for name, want := range map[string]bool{
		"ci-runner": true, "ci.example.org": true, "CI.EXAMPLE.ORG": true, "spiffe://example.org/ci": true,
		"CI-RUNNER": false, "ci": false, "*.example.org": false, "spiffe://example.org/ci/x": false, "": false,
		"rexec throwaway CA": false, // the issuer is not the subject
	} {
		if got := CertHasIdentity(c, name); got != want {
			t.Errorf("CertHasIdentity(%q) = %v, want %v", name, got, want)
		}
	}
	if got := CertIdentity(c, "spiffe://example.org/ci"); got != "spiffe://example.org/ci" {
		t.Errorf("CertIdentity with the matched name: %q", got)
	}
	if got := CertIdentity(c, ""); got != "ci-runner" {
		t.Errorf("CertIdentity: %q, want the common name", got)
	}
	noCN := ClientCert(verifiedConn(t, f, tlsconfig.Identity{URIs: []*url.URL{spiffe}}))
	if got := CertIdentity(noCN, ""); got != "spiffe://example.org/ci" {
		t.Errorf("CertIdentity without a CN: %q, want the URI SAN", got)
	}
	// A certificate presented but not verified names nobody.
	unverified := &tls.ConnectionState{PeerCertificates: conn.PeerCertificates}
	if ClientCert(unverified) != nil || ClientCert(nil) != nil {
		t.Error("ClientCert returned an unverified certificate")
	}
}

// TestVerifyCertBinding: a cert= key is accepted only on a connection
// whose verified client certificate has its identity, and is refused as
// unauthenticated (not denied) otherwise, even for a method it lacks the
// scope of; a key without cert= is accepted on any connection.
func TestVerifyCertBinding(t *testing.T) {
	f, err := tlsconfig.WriteDemo(filepath.Join(t.TempDir(), "certs"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ParseKeys([]byte("bound " + vectorSecretB64 + " echo cert=alice\nfree " + vectorSecretB64 + " echo\n"))
	if err != nil {
		t.Fatal(err)
	}
	bound, free := keys[0], keys[1]
	v := NewVerifier(NewKeyRing(keys), VerifierOptions{})
	alice := verifiedConn(t, f, tlsconfig.Identity{CommonName: "alice"})
	bob := verifiedConn(t, f, tlsconfig.Identity{CommonName: "bob"})
	tlsOnly := &tls.ConnectionState{}
	const echo = "/rexec.v1.EchoService/Echo"
	cases := []struct {
		name   string
		key    *Key
		method string
		conn   *tls.ConnectionState
		want   string // "" for accepted, "denied", or a reason fragment
	}{
		{"bound key, its certificate", bound, echo, alice, ""},
		{"bound key, another certificate", bound, echo, bob, `connection's certificate is "bob"`},
		{"bound key, TLS without a client certificate", bound, echo, tlsOnly, "no verified client certificate"},
		{"bound key, no TLS", bound, echo, nil, "has no TLS"},
		{"bound key, another certificate, a method out of its scopes", bound, vectorMethod, bob, "bound to client certificate"},
		{"bound key, its certificate, a method out of its scopes", bound, vectorMethod, alice, "denied"},
		{"free key, no TLS", free, echo, nil, ""},
		{"free key, any certificate", free, echo, bob, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := call(c.method)
			cl.TLS = c.conn
			check := func(what string, k *Key, err error) {
				t.Helper()
				if c.want == "" {
					if err != nil || k != c.key {
						t.Fatalf("%s: refused: %v", what, err)
					}
					return
				}
				ae, ok := err.(*AuthError)
				if !ok {
					t.Fatalf("%s: got %v, want an *AuthError", what, err)
				}
				if c.want == "denied" {
					if !ae.Denied {
						t.Fatalf("%s: got %v, want denied", what, err)
					}
					return
				}
				if ae.Denied || !strings.Contains(ae.Reason, c.want) {
					t.Fatalf("%s: got denied=%v %q, want unauthenticated saying %q", what, ae.Denied, ae.Reason, c.want)
				}
			}
			k, err := v.Verify(Mint(c.key, c.method, vectorAuthority, time.Now()), cl)
			check("Verify", k, err)
			// On a gRPC connection the token presented again, which
			// skips the HMAC, gets the same answer: the key's binding
			// and scope are checked on every call.
			cs := v.spent.open()
			defer v.spent.close(cs)
			tok := Mint(c.key, c.method, vectorAuthority, time.Now())
			for _, what := range []string{"first on a connection", "again on that connection"} {
				k, err := v.verifyOnConn(cs, tok, cl)
				check(what, k, err)
			}
		})
	}
}
