package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rexec/rexec/client"
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

// TestWrongPortSaysRaw points the gRPC client at rexecd's raw port: the
// call fails with a *WrongPortError that names the address, where it said
// "http2: frame too large … is it running?" (plaintext) or "first record
// does not look like a TLS handshake" (TLS). The call's own error stays
// inside, status code and all.
func TestWrongPortSaysRaw(t *testing.T) {
	srv := testenv.StartServer(t, testenv.Options{Raw: true})
	ctx := context.Background()
	for name, opts := range map[string][]client.Option{
		"plaintext": {client.WithKey(srv.Key)},
		"tls":       {client.WithKey(srv.Key), client.WithTLS(&tls.Config{InsecureSkipVerify: true})},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := client.New(srv.RawAddr, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Run(ctx, &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard)
			var wp *client.WrongPortError
			if !errors.As(err, &wp) || wp.Addr != srv.RawAddr || status.Code(err) != codes.Unavailable {
				t.Errorf("Run at the raw port: %v, want a *WrongPortError for %s wrapping Unavailable", err, srv.RawAddr)
			}
			_, err = c.Echo(ctx, "x", false)
			if !errors.As(err, &wp) {
				t.Errorf("Echo at the raw port: %v, want a *WrongPortError", err)
			}
			_, err = c.Session(ctx, &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Shell: "true"}}, nil, io.Discard, io.Discard)
			if !errors.As(err, &wp) {
				t.Errorf("Session at the raw port: %v, want a *WrongPortError", err)
			}
		})
	}
	// A port where nothing listens is not the raw port.
	c, err := client.New("127.0.0.1:1", client.WithKey(srv.Key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Run(ctx, &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard)
	var wp *client.WrongPortError
	if errors.As(err, &wp) || status.Code(err) != codes.Unavailable {
		t.Errorf("a closed port: %v, want plain Unavailable", err)
	}
}
