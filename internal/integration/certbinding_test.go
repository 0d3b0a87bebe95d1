package integration

import (
	"context"
	"errors"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/internal/tlsconfig"
	"github.com/rexec/rexec/rawsock"
	"github.com/rexec/rexec/server"
)

// TestCertBoundKeys runs a real mTLS server (gRPC and raw) with keys bound
// to client certificates (cert=): a bound key works only with its
// certificate, matched by common name or URI SAN; any other certificate
// gets the one fixed Unauthenticated message and the log says why; the raw
// transport refuses a bound key at its handshake; and every command's
// audit line names the client certificate.
func TestCertBoundKeys(t *testing.T) {
	f, err := tlsconfig.WriteDemo(filepath.Join(t.TempDir(), "certs"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spiffe, _ := url.Parse("spiffe://example.org/ci")
	certs := map[string]string{}
	serials := map[string]string{}
	for name, id := range map[string]tlsconfig.Identity{
		"bob": {CommonName: "bob"},
		"ci":  {CommonName: "ci-runner", URIs: []*url.URL{spiffe}},
	} {
		p := filepath.Join(dir, name)
		c, err := tlsconfig.Issue(f.CACert, f.CAKey, p+".crt", p+".key", id)
		if err != nil {
			t.Fatal(err)
		}
		certs[name] = p
		serials[name] = c.SerialNumber.Text(16)
	}
	alice, err := tlsconfig.NewReloadable(f.ClientCert, f.ClientKey, "") // only to read its serial
	if err != nil {
		t.Fatal(err)
	}
	serials["alice"] = alice.Current().Cert.SerialNumber.Text(16)

	srvTLS, err := tlsconfig.NewReloadable(f.ServerCert, f.ServerKey, f.CACert)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := interceptors.ParseKeys([]byte(strings.Join([]string{
		"bound " + testSecret + " exec,echo cert=alice",
		"ci " + testSecret + " exec cert=spiffe://example.org/ci",
		"free " + testSecret + " exec,echo",
	}, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	bound, ci, free := keys[0], keys[1], keys[2]
	srv := testenv.StartServer(t, testenv.Options{
		Server:    server.Config{Creds: credentials.NewTLS(srvTLS.Config())},
		ExtraKeys: keys,
		Raw:       true,
	})
	tlsFor := func(who string) client.Option {
		cert, key := f.ClientCert, f.ClientKey
		if p, ok := certs[who]; ok {
			cert, key = p+".crt", p+".key"
		}
		cfg, err := tlsconfig.Client(f.CACert, cert, key)
		if err != nil {
			t.Fatal(err)
		}
		return client.WithTLS(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cases := []struct {
		name     string
		key      *interceptors.Key
		cert     string
		ok       bool
		identity string // client_cert= in the audit line
		reason   string // in the "auth refused" log line
	}{
		{"bound key with its certificate (CN)", bound, "alice", true, "alice", ""},
		{"bound key with another certificate", bound, "bob", false, "", `key "bound" is bound to client certificate "alice" (cert=), and this connection's certificate is "bob"`},
		{"URI SAN key with its certificate", ci, "ci", true, "spiffe://example.org/ci", ""},
		{"URI SAN key with another certificate", ci, "alice", false, "", `bound to client certificate "spiffe://example.org/ci"`},
		{"free key with any certificate", free, "bob", true, "bob", ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			marker := "case-" + string(rune('a'+i))
			cl := srv.Client(t, c.key, tlsFor(c.cert))
			var out strings.Builder
			exited, err := cl.Run(ctx, &rexecv1.RunRequest{Shell: "echo " + marker}, &out, io.Discard)
			if !c.ok {
				st := status.Convert(err)
				if st.Code() != codes.Unauthenticated || st.Message() != interceptors.UnauthenticatedMessage {
					t.Fatalf("got %v, want Unauthenticated with the fixed message", err)
				}
				if commandStarted(srv.Log.String(), marker) {
					t.Error("the command ran")
				}
				if !strings.Contains(unquoted(srv.Log.String()), c.reason) {
					t.Errorf("the log does not say %q", c.reason)
				}
				return
			}
			if err != nil || exited.GetExitCode() != 0 || out.String() != marker+"\n" {
				t.Fatalf("run: %v %v %q", err, exited, out.String())
			}
			line := auditLine(srv.Log.String(), "command started", marker)
			for _, want := range []string{"key_id=" + c.key.ID, "client_cert=" + c.identity, "client_cert_serial=" + serials[c.cert]} {
				if !strings.Contains(line, want+" ") {
					t.Errorf("audit line %q lacks %s", line, want)
				}
			}
			// The end line is written as the command's slot is freed, which
			// may be just after the client has its exit status.
			waitFor(t, "the command's end line with its client certificate", func() bool {
				return auditLine(srv.Log.String(), "command ended", "client_cert="+c.identity+" ") != ""
			})
		})
	}

	// The raw transport has no TLS: a bound key is refused at the handshake
	// and the log says why; a free key works there.
	if _, err := rawsock.Dial(ctx, srv.RawAddr, bound); !errors.Is(err, rawsock.ErrRefused) {
		t.Errorf("bound key over raw: %v, want ErrRefused", err)
	}
	// The server logs why after it has sent its refusal.
	waitFor(t, "the log saying why the raw handshake was refused", func() bool {
		return strings.Contains(unquoted(srv.Log.String()), `key "bound" is bound to client certificate "alice" (cert=) and this connection has no TLS`)
	})
	if _, err := srv.RawClient(t, free).Echo(ctx, "hi", false); err != nil {
		t.Errorf("free key over raw: %v", err)
	}
}

// testSecret is a valid key-file secret; the tests that use it only need
// keys with distinct ids.
const testSecret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// unquoted undoes the text log handler's quoting of quotes.
func unquoted(log string) string { return strings.ReplaceAll(log, `\"`, `"`) }

// auditLine returns the first log line with what and marker, or "".
func auditLine(log, what, marker string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, what) && strings.Contains(line, marker) {
			return line
		}
	}
	return ""
}
