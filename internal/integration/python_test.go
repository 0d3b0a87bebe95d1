package integration

import (
	"errors"
	"os/exec"
	"path/filepath"
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
}
