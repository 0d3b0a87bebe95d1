package cli_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/rexec/rexec/internal/cli"
	"github.com/rexec/rexec/internal/testenv"
)

// TestExitStatus checks the exit status contract exactly: the remote code,
// 128+N for signal N, 255 for rexec's own failure — over gRPC and --raw alike.
func TestExitStatus(t *testing.T) {
	srv := testenv.StartServer(t, testenv.Options{Raw: true})
	env := func(stdout, stderr *bytes.Buffer) cli.Env {
		return cli.Env{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: stderr, Getenv: func(k string) string {
			switch k {
			case "REXEC_ADDR":
				return srv.Addr
			case "REXEC_RAW_ADDR":
				return srv.RawAddr
			case "REXEC_KEY_FILE":
				return srv.KeyFile
			}
			return os.Getenv(k)
		}}
	}
	cases := []struct {
		args []string
		want int
		own  bool // rexec's own failure: a one-line error is owed
	}{
		{[]string{"run", "--", "true"}, 0, false},
		{[]string{"run", "--", "exit 1"}, 1, false},
		{[]string{"run", "--", "exit 7"}, 7, false},
		{[]string{"run", "--", "exit 255"}, 255, false},
		{[]string{"run", "--", "kill -KILL $$"}, 128 + 9, false},
		{[]string{"run", "--", "kill -TERM $$"}, 128 + 15, false},
		{[]string{"run", "--", "rexec-no-such-cmd"}, 127, false},
		{[]string{"run", "--", "rexec-no-such-cmd", "arg"}, 127, false},
		{[]string{"run", "--timeout", "200ms", "--", "sleep 5"}, 128 + 15, false},
		{[]string{"run"}, 255, true},
		{[]string{"nosuchcommand"}, 255, true},
		{[]string{"--addr", "127.0.0.1:1", "run", "--", "true"}, 255, true},
		{[]string{"run", "--dir", "/nope", "--", "true"}, 255, true},
		{[]string{"run", "--raw", "--", "exit 7"}, 7, false},
		{[]string{"run", "--raw", "--", "exit 255"}, 255, false},
		{[]string{"run", "--raw", "--", "kill -KILL $$"}, 128 + 9, false},
		{[]string{"run", "--raw", "--", "rexec-no-such-cmd", "arg"}, 127, false},
		{[]string{"run", "--raw", "--timeout", "200ms", "--", "sleep 5"}, 128 + 15, false},
		{[]string{"--raw-addr", "127.0.0.1:1", "run", "--raw", "--", "true"}, 255, true},
		{[]string{"run", "--raw", "--dir", "/nope", "--", "true"}, 255, true},
		// usage errors: one line naming the flag, never a flag dump
		{[]string{"run", "--timeout", "abc", "--", "true"}, 255, true},
		{[]string{"run", "--timeout", "-1s", "--", "true"}, 255, true},
		{[]string{"run", "--bogus", "--", "true"}, 255, true},
		{[]string{"run", "-timeout", "5", "--", "true"}, 255, true},
		{[]string{"-addr", srv.Addr, "run", "--", "true"}, 255, true},
		{[]string{"run", "-i", "-n", "--", "true"}, 255, true},
		{[]string{"run", "--env", "NOEQUALS", "--", "true"}, 255, true},
		{[]string{"shell", "extra"}, 255, true},
		{[]string{"echo", "--nope"}, 255, true},
		{[]string{"keygen", "--scopes", "root"}, 255, true},
		{[]string{"completion"}, 255, true},
		{[]string{"completion", "tcsh"}, 255, true},
		{[]string{"frames", "--big", "x"}, 255, true},
		// what a newcomer types
		{[]string{"run", "--timeout", "0.2", "--", "sleep 5"}, 128 + 15, false},
		{[]string{"run", "-it", "--", "exit 3"}, 3, false},
		{[]string{"--help"}, 0, false},
		{[]string{"run", "--help"}, 0, false},
		{[]string{"version"}, 0, false},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		if got := cli.Rexec(c.args, env(&stdout, &stderr)); got != c.want {
			t.Errorf("rexec %s: exit %d, want %d (stderr %q)", strings.Join(c.args, " "), got, c.want, stderr.String())
		}
		if line := stderr.String(); c.own && (!strings.HasPrefix(line, "rexec: ") || strings.Count(line, "\n") != 1) {
			t.Errorf("rexec %s: stderr %q, want one line that starts with rexec:", strings.Join(c.args, " "), line)
		}
	}
}
