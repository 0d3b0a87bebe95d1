package runner_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/rexec/rexec/runner"
)

// observed records an Observer's calls as lines, in order.
type observed struct {
	mu    sync.Mutex
	calls []string
	// running is the slots the runner holds at each call.
	r       *runner.Runner
	running []int
}

type ctxKey struct{}

func (o *observed) add(ctx context.Context, line string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, fmt.Sprintf("%s ctx=%v", line, ctx.Value(ctxKey{})))
	o.running = append(o.running, o.r.Running())
}

func (o *observed) CommandStarted(ctx context.Context, s *runner.Spec, id string, pid int) {
	o.add(ctx, fmt.Sprintf("started %s id=%t pid=%t", s.Describe(), id != "", pid > 0))
}

func (o *observed) CommandEnded(ctx context.Context, s *runner.Spec, r *runner.Result) {
	o.add(ctx, fmt.Sprintf("ended %s exit=%d reason=%v out=%d err=%d", s.Describe(), r.ExitCode, r.Reason, r.StdoutBytes, r.StderrBytes))
}

func (o *observed) CommandRefused(ctx context.Context, s *runner.Spec, err error) {
	o.add(ctx, fmt.Sprintf("refused %q too-many=%t", s.Describe(), errors.Is(err, runner.ErrTooManyCommands)))
}

func (o *observed) take() ([]string, []int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c, r := o.calls, o.running
	o.calls, o.running = nil, nil
	return c, r
}

// TestObserver: one start and one end per command, with the Result and the
// context given to Start; a refused start is told once and starts nothing;
// a command that cannot be executed is started with pid 0 and ends 127.
func TestObserver(t *testing.T) {
	t.Parallel()
	obs := &observed{}
	opts := fast()
	opts.MaxConcurrent = 1
	opts.Observer = obs
	r := runner.New(opts)
	obs.r = r
	ctx := context.WithValue(context.Background(), ctxKey{}, "call")

	run(t, r, ctx, runner.Spec{Shell: "printf abc; printf de >&2; exit 3"})
	calls, running := obs.take()
	want := []string{
		"started printf abc; printf de >&2; exit 3 id=true pid=true ctx=call",
		"ended printf abc; printf de >&2; exit 3 exit=3 reason=exited out=3 err=2 ctx=call",
	}
	check(t, "a command", calls, want)
	if running[0] != 1 || running[1] != 1 {
		t.Errorf("slots held when told: %v, want [1 1] (the end is told before the slot is freed)", running)
	}

	rec, _ := run(t, r, ctx, runner.Spec{Argv: []string{"/no/such/program"}})
	calls, _ = obs.take()
	check(t, "not executable", calls, []string{
		"started /no/such/program id=true pid=false ctx=call",
		fmt.Sprintf("ended /no/such/program exit=127 reason=exited out=0 err=%d ctx=call", rec.stderr.Len()),
	})

	if _, err := r.Start(ctx, runner.Spec{}); err == nil {
		t.Fatal("an empty spec started")
	}
	calls, _ = obs.take()
	check(t, "a bad spec", calls, []string{`refused "" too-many=false ctx=call`})

	cctx, cancel := context.WithCancel(ctx)
	p, err := r.Start(cctx, runner.Spec{Shell: "sleep 300"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Start(ctx, runner.Spec{Shell: "true"}); !errors.Is(err, runner.ErrTooManyCommands) {
		t.Fatalf("second Start at MaxConcurrent 1: %v", err)
	}
	cancel()
	if _, err := p.Wait(&discardSink{}); err != nil {
		t.Fatal(err)
	}
	calls, _ = obs.take()
	check(t, "the limit", calls, []string{
		"started sleep 300 id=true pid=true ctx=call",
		`refused "true" too-many=true ctx=call`,
		"ended sleep 300 exit=-1 reason=cancelled out=0 err=0 ctx=call",
	})
}

func check(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: observer calls\n%s\nwant\n%s", what, got, want)
	}
}
