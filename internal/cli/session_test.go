package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/cli"
	"github.com/rexec/rexec/internal/testenv"
)

// TestRunScopes: rexec run streams stdin through Session, which needs the
// session scope; -n uses Run and needs only exec. The refusal says so.
func TestRunScopes(t *testing.T) {
	execOnly, err := interceptors.GenerateKey("execonly", interceptors.ScopeExec)
	if err != nil {
		t.Fatal(err)
	}
	srv := testenv.StartServer(t, testenv.Options{ExtraKeys: []*interceptors.Key{execOnly}})
	rexec := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		env := cli.Env{Stdin: strings.NewReader("in\n"), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
			switch k {
			case "REXEC_ADDR":
				return srv.Addr
			case "REXEC_KEY_FILE":
				return srv.KeyFile
			}
			return os.Getenv(k)
		}}
		code := cli.Rexec(args, env)
		return code, stdout.String(), stderr.String()
	}
	if code, out, errOut := rexec("--key-id", "execonly", "run", "-n", "--", "cat; echo ran"); code != 0 || out != "ran\n" {
		t.Errorf("run -n with an exec key: %d %q %q", code, out, errOut)
	}
	code, _, errOut := rexec("--key-id", "execonly", "run", "--", "cat")
	if code != cli.ExitFailure || !strings.Contains(errOut, "rexec run -n` needs only exec") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("run with an exec key: %d %q, want 255 and a one-line hint", code, errOut)
	}
	if code, out, errOut := rexec("run", "--", "cat"); code != 0 || out != "in\n" {
		t.Errorf("run with a full key: %d %q %q", code, out, errOut)
	}
	// The client's copy of the key lists no scopes (all), the server's only
	// exec: -n tries a Session (so that Ctrl-C would be forwarded), is
	// refused before anything runs, and runs the command with Run instead.
	line := (&interceptors.Key{ID: execOnly.ID, Secret: execOnly.Secret}).Line()
	clientKeys := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(clientKeys, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := rexec("--key-file", clientKeys, "--key-id", "execonly", "run", "-n", "--", "cat; echo ran"); code != 0 || out != "ran\n" {
		t.Errorf("run -n with a key the server allows exec only: %d %q %q, want Run's result", code, out, errOut)
	}
}
