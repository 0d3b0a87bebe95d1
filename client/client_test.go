package client_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/argtext"
	"github.com/rexec/rexec/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRefusesNonUTF8 runs commands with a word that is not UTF-8 through the
// gRPC client, Run and Session: each is refused before anything is sent,
// with one line naming the word. Before, Run failed with gRPC's own
// marshalling error ("string field contains invalid UTF-8"), which the CLI
// showed as the server's Internal.
func TestRefusesNonUTF8(t *testing.T) {
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	ctx := context.Background()
	marker := filepath.Join(t.TempDir(), "ran")
	cases := []struct {
		name  string
		start *rexecv1.SessionStart
		want  string
	}{
		{"argv", &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Argv: []string{"touch", marker, "\xffab"}}}, `argument 2 "\xffab" is not valid UTF-8; rexec passes text arguments`},
		{"shell", &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Shell: "touch " + marker + "\xc3"}}, "the shell command"},
		{"env", &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Argv: []string{"touch", marker}, Env: []string{"OK=1", "X=\xed\xa0\x80"}}}, "env entry 1"},
		{"dir", &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Argv: []string{"touch", marker}, Dir: "/tmp/\xfe"}}, "dir"},
		{"tty term (session only)", &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Argv: []string{"touch", marker}}, Tty: &rexecv1.Tty{Term: "xterm\xff"}}, "tty term"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check := func(call string, err error) {
				t.Helper()
				var te *argtext.Error
				if !errors.As(err, &te) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
					t.Errorf("%s: %v, want one line with %q", call, err, tc.want)
				}
			}
			if tc.start.GetTty() == nil {
				_, err := c.Run(ctx, tc.start.GetCommand(), io.Discard, io.Discard)
				check("Run", err)
			}
			_, err := c.Session(ctx, tc.start, nil, io.Discard, io.Discard)
			check("Session", err)
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a refused command ran")
	}
	if strings.Contains(srv.Log.String(), "command started") {
		t.Errorf("a refused command reached the server:\n%s", srv.Log.String())
	}
}
