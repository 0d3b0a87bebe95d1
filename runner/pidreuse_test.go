package runner_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rexec/rexec/runner"
)

// pidNSEnv tells the test binary that it runs inside the pid namespace.
const pidNSEnv = "REXEC_TEST_IN_PID_NAMESPACE"

// TestPidReuseNeverSignalsAnother: one command's cleanup must never signal
// another command's group through a reused pid. It runs the scenario of the
// issue in a fresh pid namespace (unshare --pid --fork --mount-proc), where
// /proc/sys/kernel/ns_last_pid says which pid comes next: command A runs
// `setsid sleep 20 & exit 0` (its leader exits, its group empties, the
// escaped sleep holds the pipes through the drain); then B is started so
// that it gets A's pid if that pid is free. B must survive A's cleanup, and
// A's Signal must not reach a later command that got A's pid.
func TestPidReuseNeverSignalsAnother(t *testing.T) {
	if os.Getenv(pidNSEnv) == "1" {
		pidReuseInNamespace(t)
		return
	}
	t.Parallel()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare(1) not found: the pid-reuse test needs util-linux's unshare")
	}
	if out, err := exec.Command(unshare, "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		t.Skipf("unshare --pid --fork --mount-proc is not allowed here (%v: %s): run as root for the pid-reuse test", err, out)
	}
	cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", os.Args[0],
		"-test.run=^TestPidReuseNeverSignalsAnother$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), pidNSEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in the pid namespace:\n%s", out)
	if err != nil {
		t.Fatalf("the scenario failed in its pid namespace: %v", err)
	}
}

func pidReuseInNamespace(t *testing.T) {
	r := runner.New(runner.Options{DrainGrace: 500 * time.Millisecond, KillGrace: 200 * time.Millisecond})
	nextPid := func(pid int) {
		t.Helper()
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Fatalf("ns_last_pid: %v", err)
		}
	}
	a, err := r.Start(context.Background(), runner.Spec{Shell: "setsid sleep 20 & exit 0"})
	if err != nil {
		t.Fatal(err)
	}
	pidA := a.Pid()
	aDone := make(chan *runner.Result, 1)
	go func() { res, _ := a.Wait(&discardSink{}); aDone <- res }()
	if !waitUntil(10*time.Second, func() bool { return !procAlive(pidA) }) {
		t.Fatal("A's leader did not exit")
	}
	nextPid(pidA)
	b, err := r.Start(context.Background(), runner.Spec{Argv: []string{"sleep", "30"}})
	if err != nil {
		t.Fatal(err)
	}
	pidB := b.Pid()
	t.Logf("A's leader %d exited; B started as %d (the same pid: %v)", pidA, pidB, pidA == pidB)
	bDone := make(chan *runner.Result, 1)
	go func() { res, _ := b.Wait(&discardSink{}); bDone <- res }()
	resA := <-aDone
	t.Logf("A ended: exit %d, output incomplete %v", resA.ExitCode, resA.OutputIncomplete)
	time.Sleep(200 * time.Millisecond) // a signal A sent would have landed
	if !procAlive(pidB) {
		t.Fatalf("B (pid %d) was killed by A's cleanup: %v", pidB, <-bDone)
	}

	// A is released: its pid is free now. C gets it; A's Signal must not reach it.
	nextPid(pidA)
	c, err := r.Start(context.Background(), runner.Spec{Argv: []string{"sleep", "30"}})
	if err != nil {
		t.Fatal(err)
	}
	cDone := make(chan *runner.Result, 1)
	go func() { res, _ := c.Wait(&discardSink{}); cDone <- res }()
	t.Logf("C started as %d after A's release (A's pid: %v)", c.Pid(), c.Pid() == pidA)
	if err := a.Signal(syscall.SIGKILL); err == nil {
		t.Error("A.Signal after A ended: no error")
	}
	time.Sleep(200 * time.Millisecond)
	if !procAlive(c.Pid()) {
		t.Fatalf("C (pid %d) was killed by A's Signal: %v", c.Pid(), <-cDone)
	}
	for _, p := range []*runner.Process{b, c} {
		_ = p.Signal(syscall.SIGKILL)
	}
	<-bDone
	<-cDone
}
