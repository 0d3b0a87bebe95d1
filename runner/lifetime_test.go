package runner_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/runner"
)

// stallSink takes Started and the first output chunk, then blocks every
// later call until release is closed: a client that stopped reading.
type stallSink struct {
	release chan struct{}
	mu      sync.Mutex
	calls   int
	bytes   int64
	exited  *runner.Result
}

func (s *stallSink) Started(string, int) error { return nil }

func (s *stallSink) Output(_ runner.Stream, _ uint64, d []byte) error {
	s.mu.Lock()
	s.calls++
	s.bytes += int64(len(d))
	first := s.calls == 1
	s.mu.Unlock()
	if !first {
		<-s.release
	}
	return nil
}

func (s *stallSink) Exited(r *runner.Result) error {
	s.mu.Lock()
	s.exited = r
	s.mu.Unlock()
	return nil
}

// procAlive reports whether pid runs (exists and is not a zombie).
func procAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || len(b) < i+3 || b[i+2] != 'Z'
}

// waitUntil polls cond for at most within (a bound against a hang only).
func waitUntil(within time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// TestStalledSinkCannotHoldCommand: while the sink blocks (a client that
// reads nothing), the timeout still kills the command, and the slot is freed
// before the sink takes anything more; the sink then gets Exited, last.
func TestStalledSinkCannotHoldCommand(t *testing.T) {
	t.Parallel()
	r := runner.New(runner.Options{MaxConcurrent: 1, KillGrace: 200 * time.Millisecond, DrainGrace: 200 * time.Millisecond})
	p, err := r.Start(context.Background(), runner.Spec{Shell: "exec yes", Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sink := &stallSink{release: make(chan struct{})}
	type waited struct {
		res *runner.Result
		err error
	}
	done := make(chan waited, 1)
	go func() { res, err := p.Wait(sink); done <- waited{res, err} }()
	release := sync.OnceFunc(func() { close(sink.release) })
	var w waited
	defer func() {
		release()
		if w.res == nil {
			<-done
		}
	}()
	if !waitUntil(10*time.Second, func() bool { return !procAlive(p.Pid()) }) {
		t.Fatalf("`yes` still runs 10 s past its timeout while the sink is blocked")
	}
	if !waitUntil(10*time.Second, func() bool { return r.Running() == 0 }) {
		t.Fatal("the slot is still held while the sink is blocked, though the command is gone")
	}
	q, err := r.Start(context.Background(), runner.Spec{Argv: []string{"true"}})
	if err != nil {
		t.Fatalf("next command while the stalled one's sink still blocks: %v", err)
	}
	if _, err := q.Wait(&discardSink{}); err != nil {
		t.Fatal(err)
	}
	release()
	w = <-done
	if w.err != nil || sink.exited != w.res {
		t.Fatalf("Wait: %v; Exited %v", w.err, sink.exited)
	}
	if w.res.Reason != runner.ReasonTimeout || w.res.SentSignal != 15 {
		t.Errorf("reason %v sent signal %d, want timeout and TERM", w.res.Reason, w.res.SentSignal)
	}
	// All the runner read and counted reaches the sink once it reads again;
	// what was left in the pipe is output incomplete, and counted.
	if sink.bytes != w.res.StdoutBytes || !w.res.OutputIncomplete || w.res.Unread == 0 {
		t.Errorf("sink got %d bytes of %d read, incomplete %v, unread %d: want equal, true, > 0", sink.bytes, w.res.StdoutBytes, w.res.OutputIncomplete, w.res.Unread)
	}
}

// TestDrainGraceIsABound: a background child that keeps writing does not
// keep the call open: the drain grace counts from the leader's exit, not
// from the last output. Before, each tick restarted it, so the call ran
// until its timeout.
func TestDrainGraceIsABound(t *testing.T) {
	t.Parallel()
	r := runner.New(runner.Options{DrainGrace: 300 * time.Millisecond, KillGrace: 200 * time.Millisecond})
	rec, res := run(t, r, context.Background(), runner.Spec{
		Shell:   "(while :; do echo tick; sleep 0.05; done) & exit 3",
		Timeout: 20 * time.Second,
	})
	if res.Reason != runner.ReasonExited || res.ExitCode != 3 || !res.OutputIncomplete {
		t.Errorf("reason %v exit %d incomplete %v, want exited 3 and output incomplete", res.Reason, res.ExitCode, res.OutputIncomplete)
	}
	if !strings.HasPrefix(rec.stdout.String(), "tick\n") {
		t.Errorf("stdout %q, want ticks", clipped(rec.stdout.String()))
	}
	testenv.WaitGroupGone(t, res.Pid, 5*time.Second)
}

func clipped(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// slowSink takes its time over every chunk, as a slow client does.
type slowSink struct {
	discardSink
	delay time.Duration
}

func (s *slowSink) Output(st runner.Stream, seq uint64, b []byte) error {
	time.Sleep(s.delay)
	return s.discardSink.Output(st, seq, b)
}

// TestSlowSinkAfterGroupGoneGetsAll: the command has exited and its group is
// gone, a few MiB are still in the pipe and the sink takes longer than the
// drain grace to read them: every byte arrives and nothing is called
// incomplete (the grace bounds holders of the pipe, not slow readers).
func TestSlowSinkAfterGroupGoneGetsAll(t *testing.T) {
	t.Parallel()
	r := runner.New(runner.Options{DrainGrace: 100 * time.Millisecond})
	p, err := r.Start(context.Background(), runner.Spec{Argv: []string{"head", "-c", "3000000", "/dev/zero"}})
	if err != nil {
		t.Fatal(err)
	}
	s := &slowSink{delay: 40 * time.Millisecond}
	res, err := p.Wait(s)
	if err != nil {
		t.Fatal(err)
	}
	if s.n != 3000000 || res.OutputIncomplete || res.ExitCode != 0 {
		t.Errorf("got %d bytes, incomplete %v, exit %d: want all 3000000, complete, 0", s.n, res.OutputIncomplete, res.ExitCode)
	}
}

// TestTTYHangupReachesJobs: cancelling an interactive bash on a terminal
// hangs the terminal up first, as sshd does, so that bash sends SIGHUP to its
// jobs (which live in their own process groups). Before, bash ignored TERM
// and got KILL, and its job `sleep 304` lived on.
func TestTTYHangupReachesJobs(t *testing.T) {
	t.Parallel()
	r := runner.New(runner.Options{KillGrace: 500 * time.Millisecond, DrainGrace: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	job, done := ttyShellJob(ctx, t, r, "sleep 304 & echo JOB=$((0+$!))\n")
	cancel()
	res := <-done
	if !waitUntil(10*time.Second, func() bool { return !procAlive(job) }) {
		t.Errorf("bash's job `sleep 304` (pid %d) outlived the cancelled call (bash ended by %s)", job, res.SignalName)
	}
}

// TestTTYSessionEndsWithCall: whatever a shell on a terminal leaves in the
// terminal's session ends with the call, also when the shell does not pass
// the hangup on to its jobs, or not in time. Before, the jobs' own groups
// were reached only by the shell's SIGHUP, so a job lived on with ppid 1
// when the shell did not send it (a HUP trap; on a busy machine, a shell
// KILLed before it acted on the hangup, or one that sent it while its job
// had not yet exec'd and still ran bash's catching handler), when the job
// ignored it, or when the shell exited leaving a disowned job.
func TestTTYSessionEndsWithCall(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, line string
		cancel     bool
	}{
		// A HUP trap replaces bash's passing the hangup on to its jobs.
		{"the shell traps the hangup", "trap 'echo hup' HUP; sleep 304 & echo JOB=$((0+$!))\n", true},
		// The job says its pid once it ignores SIGHUP, as nohup would.
		{"the job ignores the hangup", "(trap '' HUP; echo JOB=$BASHPID; exec sleep 304) &\n", true},
		// No cancel: the shell exits by itself, the job holds the terminal.
		{"the shell exits, its job disowned", "sleep 304 & disown; echo JOB=$((0+$!)); exit\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := runner.New(runner.Options{KillGrace: 500 * time.Millisecond, DrainGrace: 300 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			job, done := ttyShellJob(ctx, t, r, c.line)
			if c.cancel {
				cancel()
			}
			select {
			case res := <-done:
				if !waitUntil(10*time.Second, func() bool { return !procAlive(job) }) {
					t.Errorf("job %d outlived the call (bash ended by %q, exit %d)", job, res.SignalName, res.ExitCode)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the call did not end")
			}
		})
	}
}

// ttyShellJob starts `bash --norc -i` on a terminal, types line, which must
// start a job and print its pid as JOB=N, and returns that pid (alive) and
// the call's result once Wait returns. The job is killed at cleanup.
func ttyShellJob(ctx context.Context, t *testing.T, r *runner.Runner, line string) (int, <-chan *runner.Result) {
	t.Helper()
	// HISTFILE empty: the shell saves no history (in root's home).
	p, err := r.Start(ctx, runner.Spec{Argv: []string{"bash", "--norc", "-i"}, Env: []string{"HISTFILE="}, TTY: &runner.TTY{Rows: 24, Cols: 80}, OpenStdin: true})
	if err != nil {
		t.Fatal(err)
	}
	jobRe := regexp.MustCompile(`JOB=([0-9]+)`)
	jobPid := make(chan int, 1)
	var (
		mu  sync.Mutex
		out strings.Builder
	)
	done := make(chan *runner.Result, 1)
	go func() {
		res, _ := p.Wait(&funcSink{out: func(_ runner.Stream, d []byte) error {
			mu.Lock()
			defer mu.Unlock()
			out.Write(d)
			if m := jobRe.FindStringSubmatch(out.String()); m != nil {
				n, _ := strconv.Atoi(m[1])
				select {
				case jobPid <- n:
				default:
				}
			}
			return nil
		}})
		done <- res
	}()
	if _, err := p.Stdin().Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	var job int
	select {
	case job = <-jobPid:
	case <-time.After(20 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("no job pid; terminal said %q", out.String())
	}
	t.Cleanup(func() { _ = killPid(job) })
	if !procAlive(job) {
		t.Fatalf("job %d not running before the call ends", job)
	}
	return job, done
}

func killPid(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// TestKernelStringLimits: a string execve would refuse (E2BIG: the kernel's
// MAX_ARG_STRLEN, 131072 bytes counting the NUL) is a FieldError naming
// the field, not a failure to start; one byte less runs.
func TestKernelStringLimits(t *testing.T) {
	t.Parallel()
	r := runner.New(runner.Options{})
	const maxStr = 32 * 4096
	long := func(n int) string { return ": " + strings.Repeat("x", n-2) }
	for _, c := range []struct {
		name, field string
		spec        runner.Spec
	}{
		{"shell of 131072 bytes", "shell", runner.Spec{Shell: long(maxStr)}},
		{"argv entry of 131072 bytes", "argv", runner.Spec{Argv: []string{"true", strings.Repeat("x", maxStr)}}},
		{"env entry of 128 KiB", "env", runner.Spec{Shell: "true", Env: []string{"A=" + strings.Repeat("x", 128<<10-2)}}},
		{"tty.term with a NUL", "tty.term", runner.Spec{Shell: "true", TTY: &runner.TTY{Rows: 24, Cols: 80, Term: "xterm\x00"}}},
		{"tty.term of 1 MiB", "tty.term", runner.Spec{Shell: "true", TTY: &runner.TTY{Rows: 24, Cols: 80, Term: strings.Repeat("x", 1<<20)}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := r.Start(context.Background(), c.spec)
			var fe *runner.FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				if err == nil {
					res, _ := p.Wait(&discardSink{})
					t.Fatalf("started (exit %d), want a FieldError naming %s", res.ExitCode, c.field)
				}
				t.Fatalf("err %v, want a FieldError naming %s", err, c.field)
			}
		})
	}
	for _, spec := range []runner.Spec{
		{Shell: long(maxStr - 1)},
		{Shell: "true", Env: []string{"A=" + strings.Repeat("x", maxStr-3)}},
	} {
		if _, res := run(t, r, context.Background(), spec); res.ExitCode != 0 {
			t.Errorf("a string of %d bytes (the most execve takes): exit %d, want 0", maxStr-1, res.ExitCode)
		}
	}
}

// TestArgv0UsesTheCommandsPATH: argv[0] is looked up in the PATH the command
// gets (the request's env), as the shell form does, not in the server's.
func TestArgv0UsesTheCommandsPATH(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/rexec-mytool", []byte("#!/bin/sh\necho mytool ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := runner.New(fast())
	env := []string{"PATH=/rexec/no/such:" + dir + ":/usr/bin:/bin"}
	rec, res := run(t, r, context.Background(), runner.Spec{Argv: []string{"rexec-mytool"}, Env: env})
	if res.ExitCode != 0 || rec.stdout.String() != "mytool ran\n" {
		t.Errorf("argv form: exit %d stdout %q stderr %q, want 0 and mytool's line", res.ExitCode, rec.stdout.String(), rec.stderr.String())
	}
	// Without the request's PATH, it is not found, as before.
	if _, res := run(t, r, context.Background(), runner.Spec{Argv: []string{"rexec-mytool"}}); res.ExitCode != 127 {
		t.Errorf("without the PATH: exit %d, want 127", res.ExitCode)
	}
}
