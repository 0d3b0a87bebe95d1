package argtext_test

import (
	"errors"
	"testing"

	"go.uber.org/goleak"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/argtext"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCheck(t *testing.T) {
	long := string(make([]byte, 100)) + "\xff"
	for _, tc := range []struct {
		name  string
		start *rexecv1.SessionStart
		want  string // the error; empty: none
	}{
		{"text", &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Argv: []string{"echo", "é", "😀"}, Env: []string{"A=ü"}, Dir: "/tmp/ö"}, Tty: &rexecv1.Tty{Term: "xterm"}}, ""},
		{"argv[2]", &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Argv: []string{"printf", "%s", "\xffab"}}}, `argument 2 "\xffab" is not valid UTF-8; rexec passes text arguments`},
		{"argv[0]", &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Argv: []string{"\xc3"}}}, `argument 0 "\xc3" is not valid UTF-8; rexec passes text arguments`},
		{"encoded surrogate", &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Argv: []string{"x", "\xed\xa0\x80"}}}, `argument 1 "\xed\xa0\x80" is not valid UTF-8; rexec passes text arguments`},
		{"shell", &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Shell: "rm \xff"}}, `the shell command "rm \xff" is not valid UTF-8; rexec passes text arguments`},
		{"env", &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Shell: "true", Env: []string{"A=1", "B=\xff"}}}, `env entry 1 "B=\xff" is not valid UTF-8; rexec passes text arguments`},
		{"dir", &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Shell: "true", Dir: "/\xff"}}, `dir "/\xff" is not valid UTF-8; rexec passes text arguments`},
		{"term", &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Shell: "true"}, Tty: &rexecv1.Tty{Term: "\xff"}}, `tty term "\xff" is not valid UTF-8; rexec passes text arguments`},
		{"long word is cut", &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Shell: long}}, `the shell command "` + `\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00` + `"… is not valid UTF-8; rexec passes text arguments`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := argtext.CheckSession(tc.start)
			got := ""
			if err != nil {
				got = err.Error()
				var te *argtext.Error
				if !errors.As(err, &te) {
					t.Errorf("%T, want *argtext.Error", err)
				}
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if tc.start.GetTty() == nil {
				if err2 := argtext.Check(tc.start.GetCommand()); (err2 == nil) != (err == nil) {
					t.Errorf("Check and CheckSession disagree: %v, %v", err2, err)
				}
			}
		})
	}
}
