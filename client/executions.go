package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/argtext"
)

// Executions is the generated ExecutionService client.
func (c *Client) Executions() rexecv1.ExecutionServiceClient { return c.execs }

// RunResumable runs req as Run does, but survives a broken stream: it
// starts the command with lifetime RESUMABLE (the server returns once it
// has started), attaches to it, and resumes as opts say until Exited. A
// server that keeps no journal runs it as a plain Run. Cancelling ctx ends
// the command on purpose (see Session.Cancel). This is what `rexec run -n`
// does with an exec-only key, and what the fleet engine does per target.
func (c *Client) RunResumable(ctx context.Context, req *rexecv1.RunRequest, stdout, stderr io.Writer, opts ResumeOptions) (*rexecv1.Exited, error) {
	if err := argtext.Check(req); err != nil {
		return nil, err
	}
	r := proto.CloneOf(req)
	r.Lifetime = rexecv1.Lifetime_LIFETIME_RESUMABLE
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.exec.Run(runCtx, r)
	if err != nil {
		return nil, c.wrongPort(err)
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, c.wrongPort(err)
	}
	st := first.GetEvent().GetStarted()
	if st == nil {
		if first.GetEvent().GetStderr() != nil || first.GetEvent().GetExited() != nil {
			// A command that could not be executed: no Started, its
			// stderr line and its exit, on the Run stream.
			st = &rexecv1.Started{}
		} else {
			return nil, errors.New("rexec: the stream did not begin with started")
		}
	}
	if opts.OnStarted != nil && st.GetExecutionId() != "" {
		opts.OnStarted(st)
	}
	if st.GetLifetime() != rexecv1.Lifetime_LIFETIME_RESUMABLE {
		// Not kept for a resume: a plain Run, whose stream goes on.
		again := true
		return Receive(func() (*rexecv1.RunResponse, error) {
			if again {
				again = false
				return first, nil
			}
			return stream.Recv()
		}, stdout, stderr)
	}
	cancel()
	s, err := c.attach(ctx, st.GetExecutionId(), 1, nil, opts, st)
	if err != nil {
		return nil, err
	}
	return s.Wait(stdout, stderr)
}

// Attach takes over execution id's stream from seq from (0: from the
// oldest output the journal holds), sends stdin to it when it has one (nil:
// none), and resumes as opts say. Session.Attached has what the server
// said first; Wait returns the command's Exited.
func (c *Client) Attach(ctx context.Context, id string, from uint64, stdin io.Reader, opts ResumeOptions) (*Session, error) {
	return c.attach(ctx, id, from, stdin, opts, nil)
}

func (c *Client) attach(ctx context.Context, id string, from uint64, stdin io.Reader, opts ResumeOptions, started *rexecv1.Started) (*Session, error) {
	opts.setDefaults()
	s := c.newSession(ctx, &opts)
	if started != nil {
		s.started(started)
	}
	var err error
	for attempt := 0; ; attempt++ {
		_, err = s.attachStream(id, from)
		if err == nil || permanent(err) || attempt == 2 || s.ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		s.cancel()
		return nil, c.wrongPort(err)
	}
	s.mu.Lock()
	s.lastSeq = max(from, 1) - 1
	hasStdin := !s.in.closed
	s.mu.Unlock()
	if !hasStdin {
		stdin = nil
	}
	s.startIO(stdin)
	return s, nil
}

// Detach starts req as a detached command (lifetime DETACHED): it outlives
// the call, and its output goes to the server's journal. It returns the
// Started event, whose execution id the other calls take.
func (c *Client) Detach(ctx context.Context, req *rexecv1.RunRequest) (*rexecv1.Started, error) {
	if err := argtext.Check(req); err != nil {
		return nil, err
	}
	r := proto.CloneOf(req)
	r.Lifetime = rexecv1.Lifetime_LIFETIME_DETACHED
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.exec.Run(ctx, r)
	if err != nil {
		return nil, c.wrongPort(err)
	}
	m, err := stream.Recv()
	if err != nil {
		return nil, c.wrongPort(err)
	}
	st := m.GetEvent().GetStarted()
	if st == nil || st.GetLifetime() != rexecv1.Lifetime_LIFETIME_DETACHED {
		return nil, fmt.Errorf("rexec: the server did not detach the command (its first event: %v)", m.GetEvent())
	}
	return st, nil
}

// ListExecutions lists the executions the key may see, newest first: the
// running ones, and with all the ended ones too.
func (c *Client) ListExecutions(ctx context.Context, all bool, limit uint32) (*rexecv1.ListExecutionsResponse, error) {
	resp, err := c.execs.ListExecutions(ctx, &rexecv1.ListExecutionsRequest{All: all, Limit: limit})
	return resp, c.wrongPort(err)
}

// GetExecution returns execution id; with wait, once it has ended.
func (c *Client) GetExecution(ctx context.Context, id string, wait bool) (*rexecv1.Execution, error) {
	resp, err := c.execs.GetExecution(ctx, &rexecv1.GetExecutionRequest{ExecutionId: id, Wait: wait})
	if err != nil {
		return nil, c.wrongPort(err)
	}
	return resp.GetExecution(), nil
}

// Kill sends sig to execution id's process group; SIGNAL_UNSPECIFIED ends
// it as rexec does (TERM, then KILL; reason CANCELLED).
func (c *Client) Kill(ctx context.Context, id string, sig rexecv1.Signal) (*rexecv1.Execution, error) {
	resp, err := c.execs.Kill(ctx, &rexecv1.KillRequest{ExecutionId: id, Signal: sig})
	if err != nil {
		return nil, c.wrongPort(err)
	}
	return resp.GetExecution(), nil
}

// Logs copies execution id's output from seq from to the writers: what
// the journal holds and, with follow, what comes until the command ends.
// It returns the execution as it was when the call began, and the Exited
// event when the command has ended (nil without follow while it runs).
// onGap, if not nil, is told of output the journal no longer held.
func (c *Client) Logs(ctx context.Context, id string, from uint64, follow bool, stdout, stderr io.Writer, onGap func(*rexecv1.Gap)) (*rexecv1.Execution, *rexecv1.Exited, error) {
	stream, err := c.execs.Logs(ctx, &rexecv1.LogsRequest{ExecutionId: id, FromSeq: from, Follow: follow})
	if err != nil {
		return nil, nil, c.wrongPort(err)
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, nil, c.wrongPort(err)
	}
	ex := first.GetExecution()
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return ex, nil, nil
		}
		if err != nil {
			return ex, nil, err
		}
		if g := m.GetGap(); g != nil && onGap != nil {
			onGap(g)
		}
		switch k := m.GetEvent().GetKind().(type) {
		case *rexecv1.Event_Stdout:
			if _, err := stdout.Write(k.Stdout.GetData()); err != nil {
				return ex, nil, fmt.Errorf("rexec: writing stdout: %w", err)
			}
		case *rexecv1.Event_Stderr:
			if _, err := stderr.Write(k.Stderr.GetData()); err != nil {
				return ex, nil, fmt.Errorf("rexec: writing stderr: %w", err)
			}
		case *rexecv1.Event_Exited:
			return ex, k.Exited, nil
		}
	}
}
