package cli_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"go.uber.org/goleak"

	"github.com/rexec/rexec/internal/cli"
)

// leakChecked runs the tests, then fails the run if goroutines leaked.
type leakChecked struct{ m *testing.M }

func (l leakChecked) Run() int {
	code := l.m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

func TestMain(m *testing.M) {
	testscript.Main(leakChecked{m}, map[string]func(){
		"rexec":  func() { os.Exit(cli.Rexec(os.Args[1:], cli.OSEnv())) },
		"rexecd": func() { os.Exit(cli.Rexecd(os.Args[1:], cli.OSEnv())) },
	})
}

// TestScripts runs testdata/script/*.txtar: the CLI as a user types it,
// against a real rexecd started by the script.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			e.Setenv("HOME", e.WorkDir+"/home")
			e.Setenv("XDG_CONFIG_HOME", "")
			e.Setenv("REXEC_ADDR", "")
			e.Setenv("REXEC_KEY_FILE", "")
			e.Setenv("REXEC_RAW_ADDR", "")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// waitaddr FILE [VAR]: wait for rexecd's --addr-file, then point
			// REXEC_ADDR (or VAR) at it.
			"waitaddr": func(ts *testscript.TestScript, neg bool, args []string) {
				name := "REXEC_ADDR"
				if len(args) > 1 {
					name = args[1]
				}
				deadline := time.Now().Add(20 * time.Second)
				for time.Now().Before(deadline) {
					if b, err := os.ReadFile(ts.MkAbs(args[0])); err == nil && len(b) > 0 {
						ts.Setenv(name, strings.TrimSpace(string(b)))
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
				ts.Fatalf("rexecd did not write %s", args[0])
			},
		},
	})
}
