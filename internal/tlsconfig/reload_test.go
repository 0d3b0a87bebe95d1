package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// tlsServer serves TLS with cfg on loopback: each connection is handshaken
// and echoed until the client closes it.
func tlsServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { lis.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return lis.Addr().String()
}

// dialSerial connects with cli, round-trips a byte (so that a TLS 1.3
// server's verdict on the client certificate arrives) and returns the
// serial of the server's certificate, and the open connection.
func dialSerial(t *testing.T, addr string, cli *tls.Config) (*big.Int, *tls.Conn, error) {
	t.Helper()
	cli = cli.Clone()
	cli.ServerName = "127.0.0.1"
	c, err := tls.Dial("tcp", addr, cli)
	if err != nil {
		return nil, nil, err
	}
	var b [1]byte
	if _, err = c.Write(b[:]); err == nil {
		_, err = io.ReadFull(c, b[:])
	}
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c.ConnectionState().PeerCertificates[0].SerialNumber, c, nil
}

func mustClient(t *testing.T, ca, cert, key string) *tls.Config {
	t.Helper()
	c, err := Client(ca, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReloadServerCertificate rotates the server's certificate under a
// live listener: new connections get the new one, open ones keep theirs,
// and a bad pair or a missing file changes nothing.
func TestReloadServerCertificate(t *testing.T) {
	f, err := WriteDemo(filepath.Join(t.TempDir(), "certs"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReloadable(f.ServerCert, f.ServerKey, f.CACert)
	if err != nil {
		t.Fatal(err)
	}
	addr := tlsServer(t, r.Config())
	cli := mustClient(t, f.CACert, f.ClientCert, f.ClientKey)
	first, oldConn, err := dialSerial(t, addr, cli)
	if err != nil {
		t.Fatal(err)
	}
	if first.Cmp(r.Current().Cert.SerialNumber) != 0 {
		t.Fatalf("served serial %x, loaded %x", first, r.Current().Cert.SerialNumber)
	}

	srvID := Identity{CommonName: "localhost", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true}
	next, err := Issue(f.CACert, f.CAKey, f.ServerCert, f.ServerKey, srvID)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := dialSerial(t, addr, cli); got.Cmp(first) != 0 {
		t.Fatalf("before Reload a new connection got serial %x, want the old %x", got, first)
	}
	l, err := r.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if l.Cert.SerialNumber.Cmp(next.SerialNumber) != 0 || l.ClientCAs != 1 {
		t.Errorf("Reload says serial %x and %d CAs, want %x and 1", l.Cert.SerialNumber, l.ClientCAs, next.SerialNumber)
	}
	if got, _, err := dialSerial(t, addr, cli); err != nil || got.Cmp(next.SerialNumber) != 0 {
		t.Fatalf("after Reload: serial %v (%v), want the new %x", got, err, next.SerialNumber)
	}
	// The connection made before still works, with the certificate it got.
	if _, err := oldConn.Write([]byte{2}); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(io.LimitReader(oldConn, 1)); err != nil || len(b) != 1 {
		t.Fatalf("old connection after Reload: %v", err)
	}

	// A certificate whose key is another's (the cert replaced, the key not
	// yet), a missing key, and junk: each keeps the current pair.
	other, third := filepath.Join(t.TempDir(), "other"), filepath.Join(t.TempDir(), "third")
	for _, p := range []string{other, third} {
		if _, err := Issue(f.CACert, f.CAKey, p+".crt", p+".key", srvID); err != nil {
			t.Fatal(err)
		}
	}
	bad := []struct {
		name  string
		setup func()
		want  string
	}{
		{"mismatched pair", func() { copyFile(t, third+".key", f.ServerKey) }, "private key does not match public key"},
		{"missing key", func() { os.Remove(f.ServerKey) }, "no such file"},
		{"junk certificate", func() { os.WriteFile(f.ServerCert, []byte("junk"), 0o644) }, "failed to find any PEM data"},
		{"junk client CA", func() { os.WriteFile(f.CACert, []byte("junk"), 0o644) }, "no PEM certificate"},
	}
	caPEM, _ := os.ReadFile(f.CACert)
	for _, b := range bad {
		// Each case breaks one file of a set that would load.
		copyFile(t, other+".crt", f.ServerCert)
		copyFile(t, other+".key", f.ServerKey)
		os.WriteFile(f.CACert, caPEM, 0o644)
		b.setup()
		if _, err := r.Reload(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: Reload said %v, want an error with %q", b.name, err, b.want)
		}
		if r.Current().Cert.SerialNumber.Cmp(next.SerialNumber) != 0 {
			t.Errorf("%s: Current changed", b.name)
		}
		if got, _, err := dialSerial(t, addr, cli); err != nil || got.Cmp(next.SerialNumber) != 0 {
			t.Errorf("%s: a new connection got serial %v (%v), want the kept %x", b.name, got, err, next.SerialNumber)
		}
	}
	// Fixed files load again.
	copyFile(t, other+".crt", f.ServerCert)
	copyFile(t, other+".key", f.ServerKey)
	os.WriteFile(f.CACert, caPEM, 0o644)
	if _, err := r.Reload(); err != nil {
		t.Fatalf("Reload of fixed files: %v", err)
	}
	if got, _, err := dialSerial(t, addr, cli); err != nil || got.Cmp(next.SerialNumber) == 0 {
		t.Errorf("after the fix: serial %v (%v), want other's", got, err)
	}
}

// TestReloadClientCA swaps the CA that verifies client certificates: after
// the reload a certificate of the old CA is refused and one of the new CA
// accepted.
func TestReloadClientCA(t *testing.T) {
	f, err := WriteDemo(filepath.Join(t.TempDir(), "a"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	g, err := WriteDemo(filepath.Join(t.TempDir(), "b"), "bob")
	if err != nil {
		t.Fatal(err)
	}
	clientCA := filepath.Join(t.TempDir(), "client-ca.crt")
	copyFile(t, f.CACert, clientCA)
	r, err := NewReloadable(f.ServerCert, f.ServerKey, clientCA)
	if err != nil {
		t.Fatal(err)
	}
	addr := tlsServer(t, r.Config())
	alice := mustClient(t, f.CACert, f.ClientCert, f.ClientKey)
	bob := mustClient(t, f.CACert, g.ClientCert, g.ClientKey) // trusts the server's CA, presents CA b's cert
	if _, _, err := dialSerial(t, addr, alice); err != nil {
		t.Fatalf("alice before: %v", err)
	}
	if _, _, err := dialSerial(t, addr, bob); err == nil {
		t.Fatal("bob before: accepted")
	}
	copyFile(t, g.CACert, clientCA)
	if l, err := r.Reload(); err != nil || l.ClientCAs != 1 {
		t.Fatalf("Reload: %v %+v", err, l)
	}
	if _, _, err := dialSerial(t, addr, bob); err != nil {
		t.Errorf("bob after: %v", err)
	}
	if _, _, err := dialSerial(t, addr, alice); err == nil {
		t.Error("alice after the CA swap: accepted")
	}
}

// TestReloadWhileHandshaking reloads over and over while clients connect:
// every handshake gets one whole, valid pair (the race detector watches).
func TestReloadWhileHandshaking(t *testing.T) {
	f, err := WriteDemo(filepath.Join(t.TempDir(), "certs"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReloadable(f.ServerCert, f.ServerKey, f.CACert)
	if err != nil {
		t.Fatal(err)
	}
	addr := tlsServer(t, r.Config())
	cli := mustClient(t, f.CACert, f.ClientCert, f.ClientKey)
	// Certificates made ahead, so that the loop only copies and reloads.
	dir := t.TempDir()
	serials := map[string]bool{r.Current().Cert.SerialNumber.String(): true}
	for i := range 3 {
		p := filepath.Join(dir, string(rune('a'+i)))
		c, err := Issue(f.CACert, f.CAKey, p+".crt", p+".key", Identity{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
		if err != nil {
			t.Fatal(err)
		}
		serials[c.SerialNumber.String()] = true
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 60; i++ {
			p := filepath.Join(dir, string(rune('a'+i%3)))
			copyFile(t, p+".key", f.ServerKey)
			copyFile(t, p+".crt", f.ServerCert)
			r.Reload() // may see a new key with the old cert: must fail, not serve it
		}
		close(done)
	}()
	n := 0
	for loop := true; loop && n < 500; n++ {
		select {
		case <-done:
			loop = false
		default:
		}
		got, c, err := dialSerial(t, addr, cli)
		if err != nil {
			t.Fatalf("handshake %d: %v", n, err)
		}
		if !serials[got.String()] {
			t.Fatalf("handshake %d: unknown serial %x", n, got)
		}
		c.Close()
	}
	wg.Wait()
	t.Logf("%d handshakes during 60 reloads", n)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := replaceFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestIssueIdentities: Issue puts the identity's names in the certificate,
// for the right use, signed by the CA.
func TestIssueIdentities(t *testing.T) {
	f, err := WriteDemo(filepath.Join(t.TempDir(), "certs"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("spiffe://example.org/ci")
	out := filepath.Join(t.TempDir(), "ci")
	c, err := Issue(f.CACert, f.CAKey, out+".crt", out+".key", Identity{CommonName: "ci", DNSNames: []string{"ci.example.org"}, URIs: []*url.URL{u}})
	if err != nil {
		t.Fatal(err)
	}
	pool, _, err := loadPool(f.CACert)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("not a client certificate of the CA: %v", err)
	}
	if c.Subject.CommonName != "ci" || c.DNSNames[0] != "ci.example.org" || c.URIs[0].String() != u.String() {
		t.Errorf("names: %v %v %v", c.Subject.CommonName, c.DNSNames, c.URIs)
	}
	if fi, err := os.Stat(out + ".key"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, want mode 0600", err)
	}
	if _, err := tls.LoadX509KeyPair(out+".crt", out+".key"); err != nil {
		t.Errorf("pair: %v", err)
	}
}
