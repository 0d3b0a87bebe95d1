package cli_test

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/cli"
)

// TestKeygenUniqueIDs: `rexec keygen >> keys` twice gives a file the server
// accepts: the default ids differ (they were both "default" once, and a key
// file with one id twice is refused).
func TestKeygenUniqueIDs(t *testing.T) {
	var file bytes.Buffer
	for range 2 {
		var stdout, stderr bytes.Buffer
		env := cli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: os.Getenv}
		if code := cli.Rexec([]string{"keygen"}, env); code != 0 {
			t.Fatalf("rexec keygen: exit %d, %q", code, stderr.String())
		}
		if !regexp.MustCompile(`^[A-Za-z0-9_.-]+-[0-9a-f]{6} [A-Za-z0-9+/]+=*\n$`).MatchString(stdout.String()) {
			t.Errorf("rexec keygen printed %q, want USER.HOST-XXXXXX SECRET", stdout.String())
		}
		file.Write(stdout.Bytes())
	}
	keys, err := interceptors.ParseKeys(file.Bytes())
	if err != nil {
		t.Fatalf("two keygen lines in one file: %v\n%s", err, file.String())
	}
	if keys[0].ID == keys[1].ID {
		t.Errorf("both keys are %q", keys[0].ID)
	}
}
