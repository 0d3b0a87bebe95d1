package cli_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/rexec/rexec/internal/cli"
	"github.com/rexec/rexec/internal/testenv"
)

// TestRawExitStatus checks that `rexec run --raw` keeps the exit status
// contract exactly as the gRPC path does.
func TestRawExitStatus(t *testing.T) {
	srv := testenv.StartServer(t, testenv.Options{Raw: true})
	getenv := func(k string) string {
		switch k {
		case "REXEC_RAW_ADDR":
			return srv.RawAddr
		case "REXEC_KEY_FILE":
			return srv.KeyFile
		}
		return os.Getenv(k)
	}
	cases := []struct {
		args []string
		want int
		own  bool // rexec's own failure: a one-line error is owed
	}{
		{[]string{"run", "--raw", "--", "true"}, 0, false},
		{[]string{"run", "--raw", "--", "exit 1"}, 1, false},
		{[]string{"run", "--raw", "--", "exit 7"}, 7, false},
		{[]string{"run", "--raw", "--", "exit 255"}, 255, false},
		{[]string{"run", "--raw", "--", "kill -KILL $$"}, 128 + 9, false},
		{[]string{"run", "--raw", "--", "rexec-no-such-cmd", "arg"}, 127, false},
		{[]string{"run", "--raw", "--timeout", "200ms", "--", "sleep 5"}, 128 + 15, false},
		{[]string{"--raw-addr", "127.0.0.1:1", "run", "--raw", "--", "true"}, 255, true},
		{[]string{"run", "--raw", "--dir", "/nope", "--", "true"}, 255, true},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		env := cli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: getenv}
		if got := cli.Rexec(c.args, env); got != c.want {
			t.Errorf("rexec %s: exit %d, want %d (stderr %q)", strings.Join(c.args, " "), got, c.want, stderr.String())
		}
		if c.own && (!strings.HasPrefix(stderr.String(), "rexec: ") || strings.Count(stderr.String(), "\n") != 1) {
			t.Errorf("rexec %s: stderr %q, want one line", strings.Join(c.args, " "), stderr.String())
		}
	}
}
