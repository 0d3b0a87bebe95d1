package rawserver_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/argtext"
	"github.com/rexec/rexec/rawsock/rawserver"
)

// TestClientRefusesNonUTF8 runs commands with a word that is not UTF-8
// through the Go raw client: it refuses before sending anything, naming the
// word, where it used to send U+FFFD in its place (encoding/json's
// Marshal), so that `rm $'\xff'x` acted on another name.
func TestClientRefusesNonUTF8(t *testing.T) {
	s := start(t, rawserver.Config{})
	c := s.dial(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "\xffx")
	good := filepath.Join(dir, "\ufffdx") // what U+FFFD in its place would name
	if err := os.WriteFile(good, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req  *rexecv1.RunRequest
		want string
	}{
		{&rexecv1.RunRequest{Argv: []string{"rm", "-f", bad}}, "argument 2"},
		{&rexecv1.RunRequest{Shell: "rm -f '" + bad + "'"}, "the shell command"},
		{&rexecv1.RunRequest{Argv: []string{"rm", "-f", good}, Env: []string{"X=\xff"}}, "env entry 0"},
		{&rexecv1.RunRequest{Argv: []string{"rm", "-f", good}, Dir: "/\xff"}, "dir"},
	} {
		_, err := c.Run(context.Background(), tc.req, io.Discard, io.Discard)
		var te *argtext.Error
		if !errors.As(err, &te) || !strings.HasPrefix(err.Error(), tc.want) || !strings.Contains(err.Error(), "is not valid UTF-8; rexec passes text arguments") {
			t.Errorf("%v: %v, want an *argtext.Error naming %s", tc.req, err, tc.want)
		}
	}
	if _, err := os.Stat(good); err != nil {
		t.Errorf("the file named with U+FFFD was removed: %v", err)
	}
	if strings.Contains(s.log.String(), "command started") {
		t.Errorf("a command reached the server:\n%s", s.log.String())
	}
	// The connection was not touched.
	if _, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard); err != nil {
		t.Errorf("a good command after the refused ones: %v", err)
	}
}
