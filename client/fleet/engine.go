package fleet

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// Options configure Run.
type Options struct {
	// Window is how many targets are in flight at once: a sliding window,
	// so a slow or dead target holds one slot and never a batch. By
	// default 64.
	Window int
	// ConnectTimeout bounds the time from a target's first attempt to
	// connect to its command's start: a black-holed or hung server costs
	// at most this, in its own slot. By default 10s.
	ConnectTimeout time.Duration
	// Dial returns the client of a target: one connection per target, with
	// its key and TLS (Dialer.Dial does this). Required.
	Dial func(t *Target) (*client.Client, error)
}

// Output receives the targets' output and results. Its methods are called
// from many goroutines at once.
type Output interface {
	// Start is called as a target's run begins; its output goes to the
	// writers returned. An error, or a writer's, ends that target's run.
	Start(t *Target) (stdout, stderr io.Writer, err error)
	// Done is called once per target, after the last write to its writers
	// (also for a target that never started because the run was
	// interrupted: then without Start).
	Done(r *Result)
}

// Run runs req on every target, at most opts.Window at once, and returns
// their results in the order of targets. Cancelling ctx (with cause
// Interrupted{sig} for a signal) cancels every call in flight, which makes
// each server kill its command's process group, and starts no more.
func Run(ctx context.Context, targets []Target, req *rexecv1.RunRequest, out Output, opts Options) []*Result {
	return each(ctx, targets, out, opts, func(ctx context.Context, c *client.Client, r *Result, started func(), stdout, stderr io.Writer) error {
		// Resumable, as rexec run is: a target whose connection breaks is
		// redialed and resumed from its last written output (its server
		// keeps the command for its reconnect grace meanwhile).
		var err error
		r.Exited, err = c.RunResumable(ctx, req, stdout, stderr, client.ResumeOptions{
			OnStarted: func(s *rexecv1.Started) {
				started()
				r.PID = int(s.GetPid())
			},
			OnResume: func(client.Resumed) { r.Resumes++ },
		})
		return err
	})
}

// Echo sends msg to every target's echo service as Run runs a command: the
// reply is the target's stdout, with a newline.
func Echo(ctx context.Context, targets []Target, msg string, upper bool, out Output, opts Options) []*Result {
	return each(ctx, targets, out, opts, func(ctx context.Context, c *client.Client, _ *Result, started func(), stdout, _ io.Writer) error {
		reply, err := c.Echo(ctx, msg, upper)
		if err != nil {
			return err
		}
		started()
		_, err = io.WriteString(stdout, reply+"\n")
		return err
	})
}

// call is one target's work: it calls started once the server has begun
// (which ends the connect timeout), and writes its output.
type call func(ctx context.Context, c *client.Client, r *Result, started func(), stdout, stderr io.Writer) error

// each runs call for every target within the window.
func each(ctx context.Context, targets []Target, out Output, opts Options, fn call) []*Result {
	if opts.Window <= 0 {
		opts.Window = 64
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	results := make([]*Result, len(targets))
	slots := make(chan struct{}, opts.Window)
	var wg sync.WaitGroup
	for i := range targets {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			r := &Result{Target: targets[i], Err: context.Cause(ctx)}
			r.settle(ctx, ctx)
			results[i] = r
			out.Done(r)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			results[i] = runOne(ctx, &targets[i], out, &opts, fn)
		}()
	}
	wg.Wait()
	return results
}

func runOne(parent context.Context, t *Target, out Output, opts *Options, fn call) *Result {
	r := &Result{Target: *t, Started: time.Now()}
	defer func() {
		r.Duration = time.Since(r.Started)
		out.Done(r)
	}()
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	stdout, stderr, err := out.Start(t)
	if err != nil {
		r.Err = err
		r.settle(parent, ctx)
		return r
	}
	cout, cerr := &counter{w: stdout}, &counter{w: stderr}
	defer func() { r.StdoutBytes, r.StderrBytes = cout.n, cerr.n }()
	c, err := opts.Dial(t)
	if err != nil {
		r.Err = err
		r.settle(parent, ctx)
		return r
	}
	defer c.Close()
	// Until the server has begun, the connect timeout runs: then a call
	// that has not, the command not started, is cancelled. Once it has, the
	// timer is stopped (if it fired already, ctx is cancelled and the call
	// ends with that).
	timer := time.AfterFunc(opts.ConnectTimeout, func() { cancel(errConnectTimeout) })
	defer timer.Stop()
	r.Err = fn(ctx, c, r, func() { timer.Stop() }, cout, cerr)
	r.settle(parent, ctx)
	return r
}

// counter counts the bytes written through it.
type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
