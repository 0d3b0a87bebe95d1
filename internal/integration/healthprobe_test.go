package integration

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rexec/rexec/internal/bench"
	"github.com/rexec/rexec/internal/testenv"
)

// grpc-health-probe's exit statuses (its README).
const (
	probeServing       = 0
	probeConnectFailed = 2
	probeRPCFailed     = 3
	probeNotServing    = 4
)

// probe runs grpc-health-probe against addr and returns its exit status and
// output.
func probe(t *testing.T, tool, addr string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, tool, append([]string{"-addr", addr, "-connect-timeout", "2s", "-rpc-timeout", "2s"}, args...)...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("grpc-health-probe: %v %s", err, out)
	return 0, ""
}

// TestGrpcHealthProbe runs grpc-health-probe, the tool Kubernetes exec probes
// run, against a real rexecd: SERVING while it serves, a failing probe as
// soon as a shutdown begins (while running commands still have their grace),
// and with --auth-admin a probe that needs a fresh admin token per run.
func TestGrpcHealthProbe(t *testing.T) {
	t.Parallel()
	tool := testenv.Tool(t, "grpc-health-probe")
	bin := binaries(t)

	t.Run("serving, then failing during shutdown", func(t *testing.T) {
		t.Parallel()
		d, err := bench.StartDaemon(context.Background(), bin, "--shutdown-grace", "5m")
		if err != nil {
			t.Fatal(err)
		}
		defer d.Stop()
		if status, out := probe(t, tool, d.Addr); status != probeServing || !strings.Contains(out, "SERVING") {
			t.Fatalf("probe of a serving rexecd: status %d %q, want 0 and SERVING", status, out)
		}

		// A running command keeps rexecd in its shutdown grace after SIGTERM.
		pgidFile := filepath.Join(t.TempDir(), "pgid")
		cli, stderr, done := cliRun(t, bin, d, "echo $$ > "+pgidFile+"; echo up; sleep 300")
		defer syscall.Kill(-readPgid(t, pgidFile), syscall.SIGKILL) // should rexecd's guard fail
		if err := syscall.Kill(d.Pid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		var status int
		var out string
		waitFor(t, "a failing probe after SIGTERM", func() bool {
			status, out = probe(t, tool, d.Addr)
			return status != probeServing
		})
		if status != probeConnectFailed && status != probeNotServing {
			t.Errorf("probe during shutdown: status %d %q, want %d (connection refused) or %d (NOT_SERVING)",
				status, out, probeConnectFailed, probeNotServing)
		}
		t.Logf("probe during shutdown: status %d: %s", status, strings.TrimSpace(out))
		select {
		case err := <-done:
			t.Fatalf("the command ended (%v, %q) before the probe failed: the probe did not run during the shutdown", err, stderr)
		default:
		}

		// A second signal stops rexecd at once; rexec then ends too.
		if err := syscall.Kill(d.Pid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Logf("rexec after rexecd's second SIGTERM: %v %s", err, strings.TrimSpace(stderr.String()))
		case <-time.After(30 * time.Second):
			_ = cli.Process.Kill()
			<-done
			t.Fatal("rexec still runs 30s after rexecd's second SIGTERM")
		}
	})

	t.Run("auth-admin needs a fresh admin token per probe", func(t *testing.T) {
		t.Parallel()
		d, err := bench.StartDaemon(context.Background(), bin, "--auth-admin")
		if err != nil {
			t.Fatal(err)
		}
		defer d.Stop()
		if status, out := probe(t, tool, d.Addr); status != probeRPCFailed || !strings.Contains(out, "Unauthenticated") {
			t.Errorf("probe without a token: status %d %q, want %d and Unauthenticated", status, out, probeRPCFailed)
		}
		// What README tells Kubernetes users to run in an exec probe.
		tok, stderr, err := run(t, filepath.Join(bin, "rexec"), "--addr", d.Addr, "--key-file", d.KeyFile,
			"token", "--method", "/grpc.health.v1.Health/Check")
		if err != nil {
			t.Fatalf("rexec token: %v %s", err, stderr)
		}
		header := "authorization: " + strings.TrimSpace(tok)
		if status, out := probe(t, tool, d.Addr, "-rpc-header", header); status != probeServing || !strings.Contains(out, "SERVING") {
			t.Errorf("probe with a fresh admin token: status %d %q, want 0 and SERVING", status, out)
		}
		// A token is good once: a static header in a probe spec fails from
		// its second run on.
		if status, out := probe(t, tool, d.Addr, "-rpc-header", header); status != probeRPCFailed || !strings.Contains(out, "Unauthenticated") {
			t.Errorf("probe with the same token again: status %d %q, want %d and Unauthenticated", status, out, probeRPCFailed)
		}
	})
}
