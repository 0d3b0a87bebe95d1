package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
)

// TestAttackMatrixGrpcurl sends some rows of the attack matrix through the
// real grpcurl over mTLS (-cacert -cert -key), as a user of the README would.
func TestAttackMatrixGrpcurl(t *testing.T) {
	grpcurl := testenv.Tool(t, "grpcurl")
	e := startMTLS(t)
	srv := e.srv
	good := []string{"-cacert", e.good.CACert, "-cert", e.good.ClientCert, "-key", e.good.ClientKey}
	evil := []string{"-cacert", e.good.CACert, "-cert", e.bad.ClientCert, "-key", e.bad.ClientKey}
	now := time.Now()
	tok := func(k *interceptors.Key, at time.Time) []string {
		return []string{"-H", "authorization: " + interceptors.Mint(k, runMethod, srv.Addr, at)}
	}
	dir := t.TempDir()

	// Reflection works over mTLS.
	args := append(append([]string{}, good...), srv.Addr, "list")
	if out, stderr, err := run(t, grpcurl, args...); err != nil || !strings.Contains(out, "rexec.v1.ExecService") {
		t.Fatalf("list over mTLS: %v %s %s", err, out, stderr)
	}

	rows := []struct {
		name  string
		flags []string
		ok    bool
		want  string // in grpcurl's stderr
	}{
		{"control: valid token over mTLS", append(append([]string{}, good...), tok(srv.Key, now)...), true, ""},
		{"no token", good, false, "Code: Unauthenticated\n  Message: " + interceptors.UnauthenticatedMessage},
		{"expired", append(append([]string{}, good...), tok(srv.Key, now.Add(-2*time.Minute))...), false, "Code: Unauthenticated\n  Message: " + interceptors.UnauthenticatedMessage},
		{"valid key without scope", append(append([]string{}, good...), tok(e.echoOnly, now)...), false, "Code: PermissionDenied"},
		{"TLS required but plaintext dialed", append([]string{"-plaintext"}, tok(srv.Key, now)...), false, "Failed to dial"},
		{"client cert from an unknown CA", append(append([]string{}, evil...), tok(srv.Key, now)...), false, "Failed to dial"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			marker := filepath.Join(dir, "marker-"+strings.ReplaceAll(r.name, " ", "-"))
			args := append(append([]string{}, r.flags...), "-d", `{"shell":"touch `+marker+`"}`, srv.Addr, "rexec.v1.ExecService/Run")
			_, stderr, err := run(t, grpcurl, args...)
			_, statErr := os.Stat(marker)
			started := commandStarted(srv.Log.String(), marker)
			if r.ok {
				if err != nil || statErr != nil || !started {
					t.Fatalf("control: %v %s; marker %v; audit start %v", err, stderr, statErr, started)
				}
				return
			}
			t.Logf("grpcurl %s -> %s", r.name, strings.Join(strings.Fields(stderr), " "))
			if err == nil || !strings.Contains(stderr, r.want) {
				t.Fatalf("%v, stderr %q: want a failure saying %q", err, stderr, r.want)
			}
			if statErr == nil || started {
				t.Fatalf("the command ran: marker %v, audit start %v", statErr, started)
			}
		})
	}
}
