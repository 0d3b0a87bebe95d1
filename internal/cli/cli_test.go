package cli_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"go.uber.org/goleak"

	"github.com/rexec/rexec/internal/cli"
	"github.com/rexec/rexec/internal/daemon"
	"github.com/rexec/rexec/internal/testenv"
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
		"rexecd": func() { os.Exit(daemon.Rexecd(os.Args[1:], os.Stdout, os.Stderr, os.Getenv)) },
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
			e.Setenv("XDG_STATE_HOME", "") // rexecd's journal: under $HOME, in the work dir
			e.Setenv("REXEC_ADDR", "")
			e.Setenv("REXEC_KEY_FILE", "")
			e.Setenv("REXEC_RAW_ADDR", "")
			e.Setenv("LANG", "")
			return nil
		},
		// [bashcompletion]: the package rexec's bash completion needs.
		// [cgroups]: root with a cgroup v2 hierarchy. [alice]: the test
		// user testenv.Alice exists, made here if need be (root, useradd).
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "bashcompletion":
				_, err := os.Stat("/usr/share/bash-completion/bash_completion")
				return err == nil, nil
			case "cgroups":
				return testenv.CgroupsHere() == "", nil
			case "alice":
				_, skip, err := testenv.MakeAlice()
				return skip == "" && err == nil, err
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// sleep DURATION
			"sleep": func(ts *testscript.TestScript, neg bool, args []string) {
				d, err := time.ParseDuration(args[0])
				ts.Check(err)
				time.Sleep(d)
			},
			// groupgone FILE: FILE (written by a remote command) holds a pgid;
			// wait for the group to exist, then for it to be gone within 5 s.
			"groupgone": func(ts *testscript.TestScript, neg bool, args []string) {
				pgid := 0
				for deadline := time.Now().Add(20 * time.Second); pgid == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					b, _ := os.ReadFile(ts.MkAbs(args[0]))
					pgid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
				}
				if pgid == 0 {
					ts.Fatalf("no pgid in %s", args[0])
				}
				start := time.Now()
				for time.Since(start) < 5*time.Second {
					if len(testenv.GroupPIDs(pgid)) == 0 {
						ts.Logf("process group %d gone %v after the check began", pgid, time.Since(start).Round(time.Millisecond))
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
				ts.Fatalf("process group %d still has %v", pgid, testenv.GroupPIDs(pgid))
			},
			// groupsize FILE N: wait until the group in FILE has N live processes.
			"groupsize": func(ts *testscript.TestScript, neg bool, args []string) {
				want, _ := strconv.Atoi(args[1])
				for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					b, _ := os.ReadFile(ts.MkAbs(args[0]))
					if pgid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pgid > 0 && len(testenv.GroupPIDs(pgid)) == want {
						return
					}
				}
				ts.Fatalf("the group in %s never had %d processes", args[0], want)
			},
			// ttyrun: run a command on a pseudo-terminal, typing as a user would (ttyrun_test.go).
			"ttyrun": ttyRun,
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
