package integration

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rexec/rexec/internal/testenv"
)

// TestPythonClient runs docs/rexec_raw.py, a client written from
// docs/PROTOCOL.md alone, against a real raw listener.
func TestPythonClient(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not on PATH")
	}
	srv := testenv.StartServer(t, testenv.Options{Raw: true})
	script := filepath.Join(testenv.RepoRoot(), "docs", "rexec_raw.py")
	stdout, stderr, err := run(t, py, script, srv.RawAddr, srv.KeyFile, "echo hi; echo oops >&2; exit 3")
	var ee *exec.ExitError
	if !(err != nil && errors.As(err, &ee) && ee.ExitCode() == 3) || stdout != "hi\n" || stderr != "oops\n" {
		t.Errorf("python client: %v stdout %q stderr %q; want exit 3, hi, oops", err, stdout, stderr)
	}
	stdout, _, err = run(t, py, script, srv.RawAddr, srv.KeyFile, "kill -TERM $$")
	if !(err != nil && errors.As(err, &ee) && ee.ExitCode() == 143) {
		t.Errorf("python client, killed by TERM: %v %q, want exit 143", err, stdout)
	}
	// --timeout becomes the command's timeout_ms: the server kills it (TERM).
	stdout, _, err = run(t, py, script, "--timeout", "0.3", srv.RawAddr, srv.KeyFile, "sleep 5; echo slept")
	if !(err != nil && errors.As(err, &ee) && ee.ExitCode() == 143) || stdout != "" {
		t.Errorf("python client, --timeout 0.3 on sleep 5: %v %q, want exit 143 and no output", err, stdout)
	}
	// Its own failures: one line on stderr and 255, never a traceback or a hang.
	for name, args := range map[string][]string{
		"no arguments":         nil,
		"a bad timeout":        {"--timeout", "soon", srv.RawAddr, srv.KeyFile, "true"},
		"the gRPC port":        {srv.Addr, srv.KeyFile, "true"},
		"nothing listening":    {"127.0.0.1:1", srv.KeyFile, "true"},
		"a missing key file":   {srv.RawAddr, filepath.Join(t.TempDir(), "nokeys"), "true"},
		"one argument too few": {srv.RawAddr, srv.KeyFile},
	} {
		_, stderr, err := run(t, py, append([]string{script}, args...)...)
		if !(err != nil && errors.As(err, &ee) && ee.ExitCode() == 255) || !strings.HasPrefix(stderr, "rexec_raw.py: ") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("python client, %s: %v, stderr %q; want exit 255 and one line", name, err, stderr)
		}
		if strings.HasPrefix(name, "no arg") && !strings.Contains(stderr, "usage: rexec_raw.py") {
			t.Errorf("python client with no arguments does not print its usage: %q", stderr)
		}
		if name == "the gRPC port" && !strings.Contains(stderr, "gRPC port?") {
			t.Errorf("python client at the gRPC port: %q, want it to say so", stderr)
		}
	}
}
