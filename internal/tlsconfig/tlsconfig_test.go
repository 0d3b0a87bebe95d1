package tlsconfig

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// handshake runs a real TLS handshake over loopback TCP and returns the
// client's error and the server's.
func handshake(t *testing.T, srv, cli *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	done := make(chan error, 1)
	go func() {
		c, err := lis.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		done <- tls.Server(c, srv).Handshake()
	}()
	c, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cli = cli.Clone()
	cli.ServerName = "127.0.0.1"
	tc := tls.Client(c, cli)
	clientErr = tc.Handshake()
	if clientErr == nil {
		// In TLS 1.3 the server checks the client's certificate after the
		// client's handshake is done; a read makes its verdict arrive.
		tc.Write([]byte{0})
		var b [1]byte
		_, rerr := tc.Read(b[:])
		if rerr != nil && strings.Contains(rerr.Error(), "certificate") {
			clientErr = rerr
		}
	}
	c.Close()
	return clientErr, <-done
}

func TestMutualTLS(t *testing.T) {
	good, err := WriteDemo(filepath.Join(t.TempDir(), "good"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	evil, err := WriteDemo(filepath.Join(t.TempDir(), "evil"), "mallory")
	if err != nil {
		t.Fatal(err)
	}
	mtls, err := Server(good.ServerCert, good.ServerKey, good.CACert)
	if err != nil {
		t.Fatal(err)
	}
	tlsOnly, err := Server(good.ServerCert, good.ServerKey, "")
	if err != nil {
		t.Fatal(err)
	}
	client := func(ca, cert, key string) *tls.Config {
		t.Helper()
		c, err := Client(ca, cert, key)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cases := []struct {
		name string
		srv  *tls.Config
		cli  *tls.Config
		ok   bool
	}{
		{"mTLS, client cert from the CA", mtls, client(good.CACert, good.ClientCert, good.ClientKey), true},
		{"mTLS, no client cert", mtls, client(good.CACert, "", ""), false},
		{"mTLS, client cert from an unknown CA", mtls, client(good.CACert, evil.ClientCert, evil.ClientKey), false},
		{"TLS, no client cert", tlsOnly, client(good.CACert, "", ""), true},
		{"server cert from an unknown CA", tlsOnly, client(evil.CACert, "", ""), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cerr, serr := handshake(t, c.srv, c.cli)
			if c.ok && (cerr != nil || serr != nil) {
				t.Fatalf("refused: client %v, server %v", cerr, serr)
			}
			if !c.ok && cerr == nil && serr == nil {
				t.Fatal("handshake succeeded")
			}
		})
	}
}

func TestWriteDemoFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	f, err := WriteDemo(dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{f.CAKey, f.ServerKey, f.ClientKey} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, want mode 0600", p, err)
		}
	}
	if _, err := WriteDemo(dir, "alice"); err == nil || !strings.Contains(err.Error(), "not overwriting") {
		t.Errorf("second WriteDemo: %v, want a refusal", err)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := Server("a", "", ""); err == nil {
		t.Error("Server without a key: accepted")
	}
	if _, err := Client("", "c", ""); err == nil {
		t.Error("Client cert without a key: accepted")
	}
	notPEM := filepath.Join(t.TempDir(), "ca.crt")
	os.WriteFile(notPEM, []byte("hello"), 0o644)
	if _, err := Client(notPEM, "", ""); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("non-PEM CA: %v", err)
	}
}
