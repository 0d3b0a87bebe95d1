package runner_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/runner"
)

func TestMain(m *testing.M) {
	if helperMain() {
		return
	}
	// A variable of the server's own environment, which no command may see
	// unless Options.EnvFromDaemon names it.
	os.Setenv(daemonSecret, "s3cret")
	goleak.VerifyTestMain(m)
}

// recorder is a Sink that keeps every event.
type recorder struct {
	mu      sync.Mutex
	started bool
	pid     int
	stdout  bytes.Buffer
	stderr  bytes.Buffer
	order   []string // "o:data" / "e:data" in seq order
	seqs    []uint64
	exited  *runner.Result
	onOut   func(data []byte) error
}

func (r *recorder) Started(id string, pid int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started, r.pid = true, pid
	return nil
}

func (r *recorder) Output(s runner.Stream, seq uint64, data []byte) error {
	r.mu.Lock()
	if s == runner.Stdout {
		r.stdout.Write(data)
		r.order = append(r.order, "o:"+string(data))
	} else {
		r.stderr.Write(data)
		r.order = append(r.order, "e:"+string(data))
	}
	r.seqs = append(r.seqs, seq)
	f := r.onOut
	r.mu.Unlock()
	if f != nil {
		return f(data)
	}
	return nil
}

func (r *recorder) Exited(res *runner.Result) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exited = res
	return nil
}

func run(t *testing.T, r *runner.Runner, ctx context.Context, spec runner.Spec) (*recorder, *runner.Result) {
	t.Helper()
	p, err := r.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	rec := &recorder{}
	res, err := p.Wait(rec)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if rec.exited != res {
		t.Fatalf("Exited event %v, Wait result %v", rec.exited, res)
	}
	for i, s := range rec.seqs {
		if s != uint64(i+1) {
			t.Fatalf("seq %d at position %d: want 1,2,3,...", s, i)
		}
	}
	return rec, res
}

func fast() runner.Options {
	return runner.Options{KillGrace: 500 * time.Millisecond, DrainGrace: 300 * time.Millisecond}
}

func TestExitStatusAndStreams(t *testing.T) {
	t.Parallel()
	r := runner.New(fast())
	cases := []struct {
		name           string
		spec           runner.Spec
		code, sig      int
		stdout, stderr string
	}{
		{"zero", runner.Spec{Shell: "true"}, 0, 0, "", ""},
		{"one", runner.Spec{Shell: "false"}, 1, 0, "", ""},
		{"seven with both streams", runner.Spec{Shell: "echo out; echo err >&2; exit 7"}, 7, 0, "out\n", "err\n"},
		{"255", runner.Spec{Shell: "exit 255"}, 255, 0, "", ""},
		{"argv, no shell", runner.Spec{Argv: []string{"printf", "%s|", "a b", "$HOME"}}, 0, 0, "a b|$HOME|", ""},
		{"killed by signal", runner.Spec{Shell: "kill -KILL $$"}, -1, 9, "", ""},
		{"env", runner.Spec{Shell: "echo $REXEC_T", Env: []string{"REXEC_T=x=y"}}, 0, 0, "x=y\n", ""},
		{"dir", runner.Spec{Shell: "pwd", Dir: "/tmp"}, 0, 0, "/tmp\n", ""},
		{"stdin", runner.Spec{Shell: "tr a-z A-Z", Stdin: strings.NewReader("hello")}, 0, 0, "HELLO", ""},
		{"no stdin is /dev/null", runner.Spec{Shell: "cat"}, 0, 0, "", ""},
		{"not found is 127", runner.Spec{Argv: []string{"rexec-no-such-command"}}, 127, 0, "", "rexec: exec: \"rexec-no-such-command\": executable file not found in $PATH\n"},
		{"not executable is 126", runner.Spec{Argv: []string{"/etc/passwd"}}, 126, 0, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rec, res := run(t, r, context.Background(), c.spec)
			if res.ExitCode != c.code || res.Signal != c.sig {
				t.Errorf("exit %d signal %d, want %d %d", res.ExitCode, res.Signal, c.code, c.sig)
			}
			if got := rec.stdout.String(); got != c.stdout {
				t.Errorf("stdout %q, want %q", got, c.stdout)
			}
			if c.stderr != "" && rec.stderr.String() != c.stderr {
				t.Errorf("stderr %q, want %q", rec.stderr.String(), c.stderr)
			}
			if res.Reason != runner.ReasonExited {
				t.Errorf("reason %v, want exited", res.Reason)
			}
			if c.code < 126 && !rec.started {
				t.Error("no Started event")
			}
		})
	}
}

func TestSignalName(t *testing.T) {
	for n, name := range map[int]string{9: "KILL", 15: "TERM", 2: "INT", 1: "HUP", 0: ""} {
		if got := runner.SignalName(n); got != name {
			t.Errorf("SignalName(%d) = %q, want %q", n, got, name)
		}
	}
}

func TestBadSpec(t *testing.T) {
	t.Parallel()
	r := runner.New(runner.Options{MaxEnv: 2, MaxArgBytes: 64, MaxTimeout: time.Minute})
	file, _ := os.Executable()
	cases := []struct {
		name, field string
		spec        runner.Spec
		pre         bool
	}{
		{"empty", "command", runner.Spec{}, false},
		{"both", "command", runner.Spec{Shell: "true", Argv: []string{"true"}}, false},
		{"argv NUL", "argv", runner.Spec{Argv: []string{"echo", "a\x00b"}}, false},
		{"empty argv0", "argv", runner.Spec{Argv: []string{""}}, false},
		{"shell too long", "shell", runner.Spec{Shell: strings.Repeat("x", 65)}, false},
		{"env without =", "env", runner.Spec{Shell: "true", Env: []string{"FOO"}}, false},
		{"too many env", "env", runner.Spec{Shell: "true", Env: []string{"A=1", "B=2", "C=3"}}, false},
		{"negative timeout", "timeout", runner.Spec{Shell: "true", Timeout: -1}, false},
		{"huge timeout", "timeout", runner.Spec{Shell: "true", Timeout: time.Hour}, false},
		{"no dir", "dir", runner.Spec{Shell: "true", Dir: "/no/such/dir"}, true},
		{"dir is a file", "dir", runner.Spec{Shell: "true", Dir: file}, true},
		{"tty without size", "tty.size", runner.Spec{Shell: "true", TTY: &runner.TTY{}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.Start(context.Background(), c.spec)
			var fe *runner.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err %v, want a *FieldError", err)
			}
			if fe.Field != c.field || fe.Precondition != c.pre {
				t.Errorf("field %q precondition %v, want %q %v (%v)", fe.Field, fe.Precondition, c.field, c.pre, err)
			}
		})
	}
	if n := r.Running(); n != 0 {
		t.Errorf("%d slots held after refused starts", n)
	}
}

func TestCancelKillsWholeGroup(t *testing.T) {
	t.Parallel()
	r := runner.New(fast())
	ctx, cancel := context.WithCancel(context.Background())
	p, err := r.Start(ctx, runner.Spec{Shell: "sleep 300 & sleep 300 & echo ready; wait"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	rec.onOut = func([]byte) error {
		if n := len(testenv.GroupPIDs(p.Pid())); n != 3 {
			t.Errorf("group has %d processes before cancel, want 3 (sh and two sleeps)", n)
		}
		cancel()
		return nil
	}
	res, err := p.Wait(rec)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != runner.ReasonCancelled || res.SignalName != "TERM" {
		t.Errorf("reason %v signal %q, want cancelled TERM", res.Reason, res.SignalName)
	}
	testenv.WaitGroupGone(t, p.Pid(), 5*time.Second)
}

func TestTermIgnoredEscalatesToKill(t *testing.T) {
	t.Parallel()
	r := runner.New(fast())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, res := run(t, r, ctx, runner.Spec{Shell: "trap '' TERM; sleep 300 & echo started; while :; do sleep 0.05; done"})
	if res.SignalName != "KILL" || res.SentSignalName != "KILL" {
		t.Errorf("signal %q sent %q, want KILL after the TERM grace", res.SignalName, res.SentSignalName)
	}
	testenv.WaitGroupGone(t, res.Pid, 5*time.Second)
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	r := runner.New(fast())
	_, res := run(t, r, context.Background(), runner.Spec{Shell: "sleep 300 & sleep 300", Timeout: 200 * time.Millisecond})
	if !res.TimedOut() || res.Reason != runner.ReasonTimeout || res.SignalName != "TERM" || res.SentSignal != 15 {
		t.Errorf("timed out %v reason %v signal %q sent %d, want true timeout TERM 15", res.TimedOut(), res.Reason, res.SignalName, res.SentSignal)
	}
	testenv.WaitGroupGone(t, res.Pid, 5*time.Second)
}

// TestTimeoutTrappedStillSaysTERM: a command that handles the timeout's TERM
// and exits 0 by itself still reports the signal rexec sent, so that its
// status is 143, not 0.
func TestTimeoutTrappedStillSaysTERM(t *testing.T) {
	t.Parallel()
	r := runner.New(fast())
	_, res := run(t, r, context.Background(), runner.Spec{Shell: `trap "exit 0" TERM; sleep 5 & wait`, Timeout: 200 * time.Millisecond})
	if res.ExitCode != 0 || res.Signal != 0 || res.SentSignal != 15 || res.SentSignalName != "TERM" || !res.TimedOut() {
		t.Errorf("exit %d signal %d sent %d %q timed out %v, want 0 0 15 TERM true", res.ExitCode, res.Signal, res.SentSignal, res.SentSignalName, res.TimedOut())
	}
}

// TestSentSignalOnlyWhenRexecEndedIt: a command that exits by itself, or is
// killed by a signal it sent itself, reports no sent signal.
func TestSentSignalOnlyWhenRexecEndedIt(t *testing.T) {
	t.Parallel()
	r := runner.New(fast())
	for _, sh := range []string{"exit 3", "kill -TERM $$", "sleep 300 & echo done"} {
		_, res := run(t, r, context.Background(), runner.Spec{Shell: sh, Timeout: time.Minute})
		if res.SentSignal != 0 || res.Reason != runner.ReasonExited {
			t.Errorf("%q: sent %d reason %v, want 0 and exited", sh, res.SentSignal, res.Reason)
		}
	}
}

func TestShutdownCause(t *testing.T) {
	t.Parallel()
	r := runner.New(fast())
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(100*time.Millisecond, func() { cancel(runner.ErrShutdown) })
	_, res := run(t, r, ctx, runner.Spec{Shell: "sleep 300"})
	if res.Reason != runner.ReasonShutdown {
		t.Errorf("reason %v, want shutdown", res.Reason)
	}
	if _, err := r.Start(ctx, runner.Spec{Shell: "true"}); !errors.Is(err, runner.ErrShutdown) {
		t.Errorf("Start after shutdown: %v, want ErrShutdown", err)
	}
}

func TestBackgroundChildHoldingPipes(t *testing.T) {
	t.Parallel()
	r := runner.New(fast()) // DrainGrace 300ms
	start := time.Now()
	rec, res := run(t, r, context.Background(), runner.Spec{Shell: "sleep 300 & echo done"})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v: the background sleep held the run", took)
	}
	if !res.OutputIncomplete || res.ExitCode != 0 || rec.stdout.String() != "done\n" {
		t.Errorf("incomplete %v exit %d stdout %q, want true 0 done", res.OutputIncomplete, res.ExitCode, rec.stdout.String())
	}
	testenv.WaitGroupGone(t, res.Pid, 5*time.Second)
}

func TestBackgroundChildNotHoldingPipesIsKilled(t *testing.T) {
	t.Parallel()
	r := runner.New(fast())
	_, res := run(t, r, context.Background(), runner.Spec{Shell: "sleep 300 >/dev/null 2>&1 & echo started"})
	if res.OutputIncomplete {
		t.Error("output incomplete, but the sleep did not hold the pipes")
	}
	testenv.WaitGroupGone(t, res.Pid, 5*time.Second)
}

func TestOutputBudget(t *testing.T) {
	t.Parallel()
	r := runner.New(fast())
	rec, res := run(t, r, context.Background(), runner.Spec{Shell: "head -c 100000 /dev/zero; echo tail >&2", MaxOutput: 1000})
	if got := rec.stdout.Len() + rec.stderr.Len(); got != 1000 {
		t.Errorf("forwarded %d bytes, want the budget of 1000", got)
	}
	if res.Dropped != 100005-1000 || res.StdoutBytes != 100000 || res.StderrBytes != 5 {
		t.Errorf("dropped %d stdout %d stderr %d, want %d 100000 5", res.Dropped, res.StdoutBytes, res.StderrBytes, 100005-1000)
	}
	if res.ExitCode != 0 {
		t.Errorf("exit %d: the command must run to its end past the budget", res.ExitCode)
	}
}

func TestLargeOutputIntact(t *testing.T) {
	t.Parallel()
	data := make([]byte, 64<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/big"
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r := runner.New(fast())
	p, err := r.Start(context.Background(), runner.Spec{Argv: []string{"cat", path}})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	res, err := p.Wait(&funcSink{out: func(s runner.Stream, d []byte) error {
		h.Write(d)
		return nil
	}})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("err %v exit %d", err, res.ExitCode)
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) || res.StdoutBytes != int64(len(data)) {
		t.Errorf("64 MiB through stdout: %d bytes, sha256 differs from the file's", res.StdoutBytes)
	}
}

type funcSink struct {
	out func(runner.Stream, []byte) error
}

func (f *funcSink) Started(string, int) error                        { return nil }
func (f *funcSink) Output(s runner.Stream, _ uint64, d []byte) error { return f.out(s, d) }
func (f *funcSink) Exited(*runner.Result) error                      { return nil }

func TestInterleavingKeptBySeq(t *testing.T) {
	t.Parallel()
	r := runner.New(fast())
	// Lockstep, not sleeps (which a busy machine outran): the command writes
	// a line, then waits until the sink has seen it (the sink creates a file
	// named after it) before it writes to the other stream.
	dir := t.TempDir()
	p, err := r.Start(context.Background(), runner.Spec{Shell: "cd " + dir + "; for i in 1 2 3 4 5; do " +
		"echo o$i; while [ ! -e o$i ]; do sleep 0.005; done; echo e$i >&2; while [ ! -e e$i ]; do sleep 0.005; done; done",
		Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	_, err = p.Wait(&funcSink{out: func(s runner.Stream, d []byte) error {
		name := "o"
		if s == runner.Stderr {
			name = "e"
		}
		order = append(order, name+":"+string(d))
		return os.WriteFile(filepath.Join(dir, strings.TrimSpace(string(d))), nil, 0o600)
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{}
	for i := 1; i <= 5; i++ {
		want = append(want, fmt.Sprintf("o:o%d\n", i), fmt.Sprintf("e:e%d\n", i))
	}
	if strings.Join(order, "") != strings.Join(want, "") {
		t.Errorf("order %q, want %q", order, want)
	}
}

// liveShell prints "first", then waits (at most 10 s) for flag to exist:
// only a reader that got "first" while the command ran can create it.
func liveShell(flag string) string {
	return "echo first; i=0; while [ ! -e " + flag + " ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done; " +
		"if [ -e " + flag + " ]; then echo answered; else echo 'no answer'; fi"
}

func TestLiveOutput(t *testing.T) {
	t.Parallel()
	r := runner.New(fast())
	flag := t.TempDir() + "/answered"
	p, err := r.Start(context.Background(), runner.Spec{Shell: liveShell(flag)})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if _, err := p.Wait(&funcSink{out: func(_ runner.Stream, d []byte) error {
		if string(d) == "first\n" {
			if err := os.WriteFile(flag, nil, 0o600); err != nil {
				return err
			}
		}
		out.Write(d)
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	// Lockstep, not timing: the command saw our answer to its first line,
	// so that line reached us while it ran.
	if out.String() != "first\nanswered\n" {
		t.Errorf("output %q: the first line was not delivered while the command ran", out.String())
	}
}

func TestSinkErrorCancels(t *testing.T) {
	t.Parallel()
	r := runner.New(fast())
	p, err := r.Start(context.Background(), runner.Spec{Shell: "yes"})
	if err != nil {
		t.Fatal(err)
	}
	gone := errors.New("peer gone")
	n := 0
	res, err := p.Wait(&funcSink{out: func(runner.Stream, []byte) error {
		if n++; n == 3 {
			return gone
		}
		return nil
	}})
	if !errors.Is(err, gone) {
		t.Errorf("Wait err %v, want the sink's", err)
	}
	if res.Reason != runner.ReasonCancelled {
		t.Errorf("reason %v, want cancelled", res.Reason)
	}
	testenv.WaitGroupGone(t, res.Pid, 5*time.Second)
}

func TestMaxConcurrent(t *testing.T) {
	t.Parallel()
	r := runner.New(runner.Options{MaxConcurrent: 2, KillGrace: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var ps []*runner.Process
	for range 2 {
		p, err := r.Start(ctx, runner.Spec{Shell: "sleep 300"})
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	if _, err := r.Start(ctx, runner.Spec{Shell: "true"}); !errors.Is(err, runner.ErrTooManyCommands) {
		t.Fatalf("third Start: %v, want ErrTooManyCommands", err)
	}
	cancel()
	for _, p := range ps {
		if _, err := p.Wait(&funcSink{out: func(runner.Stream, []byte) error { return nil }}); err != nil {
			t.Fatal(err)
		}
	}
	_, res := run(t, r, context.Background(), runner.Spec{Shell: "true"})
	if res.ExitCode != 0 {
		t.Errorf("after slots freed: exit %d", res.ExitCode)
	}
}

func TestSignalByName(t *testing.T) {
	s, ok := runner.SignalByName("USR1")
	if !ok || s != syscall.SIGUSR1 {
		t.Errorf("SignalByName(USR1) = %v %v", s, ok)
	}
	if _, ok := runner.SignalByName("NOPE"); ok {
		t.Error("NOPE is a signal?")
	}
}

type discardSink struct{ n int64 }

func (d *discardSink) Started(string, int) error { return nil }
func (d *discardSink) Output(_ runner.Stream, _ uint64, b []byte) error {
	d.n += int64(len(b))
	return nil
}
func (d *discardSink) Exited(*runner.Result) error { return nil }

// BenchmarkPump measures the output pump alone: 64 MiB from `head` through
// pipes, chunking and the sink, with a sink that does nothing.
func BenchmarkPump(b *testing.B) {
	r := runner.New(runner.Options{})
	const size = 64 << 20
	b.SetBytes(size)
	b.ReportAllocs()
	for range b.N {
		p, err := r.Start(context.Background(), runner.Spec{Argv: []string{"head", "-c", strconv.Itoa(size), "/dev/zero"}})
		if err != nil {
			b.Fatal(err)
		}
		s := &discardSink{}
		if _, err := p.Wait(s); err != nil || s.n != size {
			b.Fatalf("%v, %d bytes", err, s.n)
		}
	}
}

// BenchmarkStartTrue measures one whole command: start `true`, wait, release.
func BenchmarkStartTrue(b *testing.B) { benchStartTrue(b, runner.New(runner.Options{})) }

// benchStartTrue runs `true` on r b.N times, each to its end.
func benchStartTrue(b *testing.B, r *runner.Runner) {
	b.ReportAllocs()
	for range b.N {
		p, err := r.Start(context.Background(), runner.Spec{Argv: []string{"true"}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Wait(&discardSink{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHolderOutsideGroupStillBounded: a descendant that left the group
// (setsid) and holds the pipes cannot hang Wait: a drain grace after the
// leader's exit the call ends with OutputIncomplete. (The escapee itself is
// beyond a process-group kill; README documents that limit.)
func TestHolderOutsideGroupStillBounded(t *testing.T) {
	t.Parallel()
	r := runner.New(runner.Options{DrainGrace: 100 * time.Millisecond, KillGrace: 100 * time.Millisecond})
	pidFile := t.TempDir() + "/escapee"
	start := time.Now()
	rec, res := run(t, r, context.Background(), runner.Spec{Shell: "setsid sh -c 'echo $$ > " + pidFile + "; exec sleep 300' & echo done"})
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	if !res.OutputIncomplete || rec.stdout.String() != "done\n" {
		t.Errorf("incomplete %v stdout %q, want true and done", res.OutputIncomplete, rec.stdout.String())
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("took %v: the wait for an escaped holder is not bounded", took)
	}
}
