package runner_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/runner"
)

// TestGuardKillsGroupsWhenServerGoes: closing the guard's pipe while a
// command runs is what the kernel does when the server dies by SIGKILL; the
// guard must then kill the command's whole group, background children too.
// (internal/integration's TestServerKilledMidStream does it for real.)
func TestGuardKillsGroupsWhenServerGoes(t *testing.T) {
	t.Parallel()
	g, err := runner.StartGuard()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	o := fast()
	o.Guard = g
	r := runner.New(o)
	p, err := r.Start(context.Background(), runner.Spec{Shell: "sleep 300 & sleep 300 & wait"})
	if err != nil {
		t.Fatal(err)
	}
	pgid := p.Pid()
	res := make(chan *runner.Result, 1)
	go func() { r, _ := p.Wait(&funcSink{out: func(runner.Stream, []byte) error { return nil }}); res <- r }()
	for deadline := time.Now().Add(10 * time.Second); len(testenv.GroupPIDs(pgid)) < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(testenv.GroupPIDs(pgid)); n != 3 {
		t.Fatalf("group has %d processes, want 3", n)
	}
	if err := g.Close(); err != nil {
		t.Errorf("guard exit: %v", err)
	}
	testenv.WaitGroupGone(t, pgid, 10*time.Second)
	if r := <-res; r.Signal != int(syscall.SIGKILL) {
		t.Errorf("command ended with %+v, want SIGKILL", r)
	}
}

// TestGuardForgetsEndedCommands: commands that end normally are removed
// from the guard, which then exits cleanly with nothing to kill.
func TestGuardForgetsEndedCommands(t *testing.T) {
	t.Parallel()
	g, err := runner.StartGuard()
	if err != nil {
		t.Fatal(err)
	}
	o := fast()
	o.Guard = g
	r := runner.New(o)
	for range 5 {
		if rec, res := run(t, r, context.Background(), runner.Spec{Shell: "echo hi"}); res.ExitCode != 0 {
			t.Fatalf("exit %d %v", res.ExitCode, rec)
		}
	}
	if err := g.Close(); err != nil {
		t.Errorf("guard exit: %v", err)
	}
	if len(testenv.GroupPIDs(g.Pid())) != 0 {
		t.Error("the guard still runs after Close")
	}
}
