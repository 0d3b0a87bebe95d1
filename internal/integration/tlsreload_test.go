package integration

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/tlsconfig"
)

// TestTLSReloadSIGHUP runs the real rexecd binary with mTLS and rotates its
// files under it with SIGHUP: a new connection gets the new server
// certificate (its serial) while an open one keeps working; a pair whose
// key does not match keeps the certificate in use and the log says why; a
// new client CA file takes effect (its clients in, the old CA's out); and a
// key file that binds a key to a certificate (cert=) is applied by the
// same signal.
func TestTLSReloadSIGHUP(t *testing.T) {
	bin := filepath.Join(binaries(t), "rexecd")
	dir := t.TempDir()
	f, err := tlsconfig.WriteDemo(filepath.Join(dir, "certs"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	// The server's client CA file is its own, so that it can be replaced.
	clientCA := filepath.Join(dir, "client-ca.crt")
	copyPEM(t, f.CACert, clientCA)
	key, _ := interceptors.GenerateKey("ops", interceptors.ScopeExec, interceptors.ScopeEcho)
	keyFile := filepath.Join(dir, "keys")
	writeKeys(t, keyFile, 0o600, key.Line())
	addrFile := filepath.Join(dir, "addr")

	d := spawnRexecd(t, bin, nil, "--listen", "127.0.0.1:0", "--addr-file", addrFile, "--keys", keyFile, "--state-dir", t.TempDir(),
		"--tls-cert", f.ServerCert, "--tls-key", f.ServerKey, "--tls-client-ca", clientCA, "--shutdown-grace", "2s")
	cmd, log := d.cmd, d.log
	addr := readAddrFile(t, addrFile)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// echo calls Echo on c and returns the serial of the server
	// certificate of c's connection.
	echo := func(c *client.Client) (*big.Int, error) {
		var p peer.Peer
		if _, err := rexecEcho(ctx, c, grpc.Peer(&p)); err != nil {
			return nil, err
		}
		return p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].SerialNumber, nil
	}
	// dial makes a new connection presenting the client certificate at
	// prefix (.crt, .key), or alice's.
	dial := func(prefix string) *client.Client {
		cert, k := f.ClientCert, f.ClientKey
		if prefix != "" {
			cert, k = prefix+".crt", prefix+".key"
		}
		cfg, err := tlsconfig.Client(f.CACert, cert, k)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New(addr, client.WithKey(key), client.WithTLS(cfg))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	hup := func(what string, n int) {
		t.Helper()
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, what, func() bool { return strings.Count(log.String(), what) == n })
	}
	serialOf := func(path string) *big.Int {
		b, _ := os.ReadFile(path)
		blk, _ := pem.Decode(b)
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c.SerialNumber
	}

	// rexecd's stderr reaches log through a pipe and os/exec's copying
	// goroutine, so a line rexecd wrote before an event the test sees (the
	// address file, a reply) may not be in log yet: wait for it.
	first := serialOf(f.ServerCert)
	waitFor(t, "the start log to give the certificate's serial", func() bool {
		return strings.Contains(log.String(), `msg="TLS certificate loaded" serial=`+first.Text(16))
	})
	old := dial("")
	if got, err := echo(old); err != nil || got.Cmp(first) != 0 {
		t.Fatalf("first connection: serial %v (%v), want %x", got, err, first)
	}

	// 1. Rotate the server certificate.
	srvID := tlsconfig.Identity{CommonName: "localhost", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true}
	next, err := tlsconfig.Issue(f.CACert, f.CAKey, f.ServerCert, f.ServerKey, srvID)
	if err != nil {
		t.Fatal(err)
	}
	hup("msg=\"TLS reloaded\"", 1)
	if !strings.Contains(log.String(), "serial="+next.SerialNumber.Text(16)) {
		t.Errorf("the reload log does not give the new serial %x", next.SerialNumber)
	}
	if got, err := echo(dial("")); err != nil || got.Cmp(next.SerialNumber) != 0 {
		t.Fatalf("new connection after the rotation: serial %v (%v), want the new %x", got, err, next.SerialNumber)
	}
	if got, err := echo(old); err != nil || got.Cmp(first) != 0 {
		t.Errorf("the connection made before: serial %v (%v), want it kept working with %x", got, err, first)
	}

	// 2. A certificate whose key is not its own: kept the one in use.
	other := filepath.Join(dir, "other")
	if _, err := tlsconfig.Issue(f.CACert, f.CAKey, other+".crt", other+".key", srvID); err != nil {
		t.Fatal(err)
	}
	copyPEM(t, other+".crt", f.ServerCert)
	hup("TLS reload failed; keeping the old certificate and client CAs", 1)
	if line := auditLine(log.String(), "TLS reload failed", "private key does not match public key"); !strings.Contains(line, "serial="+next.SerialNumber.Text(16)) {
		t.Errorf("the failure line %q does not say why and which certificate is kept", line)
	}
	if got, err := echo(dial("")); err != nil || got.Cmp(next.SerialNumber) != 0 {
		t.Fatalf("new connection after a bad pair: serial %v (%v), want the kept %x", got, err, next.SerialNumber)
	}

	// 3. The pair fixed, and a new client CA: its certificates are let in,
	// the old CA's are not.
	copyPEM(t, other+".key", f.ServerKey)
	g, err := tlsconfig.WriteDemo(filepath.Join(dir, "ca2"), "carol")
	if err != nil {
		t.Fatal(err)
	}
	copyPEM(t, g.CACert, clientCA)
	hup("msg=\"TLS reloaded\"", 2)
	carol := strings.TrimSuffix(g.ClientCert, ".crt")
	if err := os.Rename(g.ClientKey, carol+".key"); err != nil {
		t.Fatal(err)
	}
	if got, err := echo(dial(carol)); err != nil || got.Cmp(serialOf(other+".crt")) != 0 {
		t.Fatalf("the new CA's client: serial %v (%v), want the fixed pair's", got, err)
	}
	if _, err := echo(dial("")); status.Code(err) != codes.Unavailable {
		t.Errorf("the old CA's client after the CA swap: %v, want refused in the handshake (Unavailable)", err)
	}

	// 4. The key file binds the key to another certificate: the same
	// signal applies it.
	writeKeys(t, keyFile, 0o600, key.Line()+" cert=dave")
	hup("keys reloaded", 4)
	_, err = echo(dial(carol))
	if st := status.Convert(err); st.Code() != codes.Unauthenticated || st.Message() != interceptors.UnauthenticatedMessage {
		t.Errorf("a call with the key now bound to dave, from carol: %v, want the fixed Unauthenticated", err)
	}
	waitFor(t, "the log to say why carol was refused", func() bool {
		return strings.Contains(unquoted(log.String()), `key "ops" is bound to client certificate "dave" (cert=), and this connection's certificate is "carol"`)
	})
}

// rexecEcho is one Echo call with call options.
func rexecEcho(ctx context.Context, c *client.Client, opts ...grpc.CallOption) (string, error) {
	resp, err := rexecv1.NewEchoServiceClient(c.Conn()).Echo(ctx, &rexecv1.EchoRequest{Message: "hi"}, opts...)
	return resp.GetMessage(), err
}

// copyPEM replaces to with from's bytes at once (a rename).
func copyPEM(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(to+".tmp", to); err != nil {
		t.Fatal(err)
	}
}
