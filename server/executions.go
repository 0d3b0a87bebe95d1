package server

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/journal"
	"github.com/rexec/rexec/runner"
)

// executionService is ExecutionService over the journal.
type executionService struct {
	rexecv1.UnimplementedExecutionServiceServer
	s *Server
}

// callerOf is who calls: its key, and whether the key's line lists admin
// itself (a key with no scopes has admin only by implication, which is not
// enough to act on other keys' executions).
func callerOf(ctx context.Context) journal.Caller {
	k := interceptors.KeyFromContext(ctx)
	if k == nil {
		return journal.Caller{}
	}
	return journal.Caller{KeyID: k.ID, All: k.ListsScope(interceptors.ScopeAdmin)}
}

func (es *executionService) journal() (*journal.Journal, error) {
	if j := es.s.cfg.Journal; j != nil {
		return j, nil
	}
	return nil, errNoJournal
}

func (es *executionService) lookup(ctx context.Context, id string) (*journal.Execution, error) {
	j, err := es.journal()
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, &runner.FieldError{Field: "execution_id", Problem: "empty: name the execution (rexec ps lists them)"}
	}
	return j.Lookup(id, callerOf(ctx))
}

// maxList bounds one ListExecutions answer.
const maxList = 10000

func (es *executionService) ListExecutions(ctx context.Context, req *rexecv1.ListExecutionsRequest) (*rexecv1.ListExecutionsResponse, error) {
	j, err := es.journal()
	if err != nil {
		return nil, toStatus(err)
	}
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = 1000
	}
	infos, more := j.List(callerOf(ctx), req.GetAll(), min(limit, maxList))
	resp := &rexecv1.ListExecutionsResponse{Truncated: more, Executions: make([]*rexecv1.Execution, len(infos))}
	for i, in := range infos {
		resp.Executions[i] = executionMessage(in)
	}
	return resp, nil
}

func (es *executionService) GetExecution(ctx context.Context, req *rexecv1.GetExecutionRequest) (*rexecv1.GetExecutionResponse, error) {
	x, err := es.lookup(ctx, req.GetExecutionId())
	if err != nil {
		return nil, toStatus(err)
	}
	if req.GetWait() {
		select {
		case <-x.Done():
		case <-ctx.Done():
			return nil, toStatus(ctx.Err())
		}
	}
	return &rexecv1.GetExecutionResponse{Execution: executionMessage(x.Info())}, nil
}

func (es *executionService) Kill(ctx context.Context, req *rexecv1.KillRequest) (*rexecv1.KillResponse, error) {
	x, err := es.lookup(ctx, req.GetExecutionId())
	if err != nil {
		return nil, toStatus(err)
	}
	if s := req.GetSignal(); s == rexecv1.Signal_SIGNAL_UNSPECIFIED {
		x.CancelByClient()
	} else {
		sig, ok := signalOf(s)
		if !ok {
			return nil, toStatus(&runner.FieldError{Field: "signal", Problem: s.String() + " is not a signal rexec sends: one of HUP, INT, QUIT, KILL, USR1, USR2, TERM, WINCH"})
		}
		_ = x.Signal(sig) // an execution that has ended is left as it is
	}
	return &rexecv1.KillResponse{Execution: executionMessage(x.Info())}, nil
}

func (es *executionService) Logs(req *rexecv1.LogsRequest, stream rexecv1.ExecutionService_LogsServer) error {
	x, err := es.lookup(stream.Context(), req.GetExecutionId())
	if err != nil {
		return toStatus(err)
	}
	r := x.Reader(req.GetFromSeq(), req.GetFollow())
	defer r.Close()
	if err := stream.Send(&rexecv1.LogsResponse{Execution: executionMessage(x.Info())}); err != nil {
		return err
	}
	b := newEventBuilder(x.ID(), x.Lifetime(), journal.Options{})
	var resp rexecv1.LogsResponse
	for {
		it, err := r.Next(stream.Context())
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return toStatus(err)
		}
		resp.Event, resp.Gap = b.event(&it), gapMessage(&it)
		if err := stream.Send(&resp); err != nil {
			return err
		}
	}
}

func (es *executionService) Attach(stream rexecv1.ExecutionService_AttachServer) error {
	j, err := es.journal()
	if err != nil {
		return toStatus(err)
	}
	first, err := recvFirst(stream.Recv, es.s.cfg.SessionStartTimeout)
	if errors.Is(err, io.EOF) {
		return status.Error(codes.InvalidArgument, "rexec: invalid request: start: the stream ended before its first message, which must be start")
	}
	if err != nil {
		return toStatus(err)
	}
	start := first.GetStart()
	if start == nil {
		return toStatus(&runner.FieldError{Field: attachMsg(first).field, Problem: "sent before start: the first message of an attach must be start"})
	}
	x, err := es.lookup(stream.Context(), start.GetExecutionId())
	if err != nil {
		return toStatus(err)
	}
	a, err := x.Attach(start.GetFromSeq())
	if err != nil {
		return toStatus(err)
	}
	in := x.Info()
	attached := &rexecv1.Attached{Execution: executionMessage(in)}
	if st, ok := a.StdinState(); ok {
		attached.Stdin = stdinMessage(&st)
	}
	if x.Lifetime() == journal.Resumable {
		attached.ReconnectGrace = durationpb.New(j.Options().ReconnectGrace)
		attached.AckWindow = uint64(j.Options().MaxBytes)
	}
	if err := stream.Send(&rexecv1.AttachResponse{Attached: attached}); err != nil {
		a.Close(err)
		return err
	}
	ctx, stop := context.WithCancelCause(stream.Context())
	defer stop(nil)
	input := &attachInput{
		a: a, tty: in.TTY, stop: stop,
		recv: func() (inMsg, error) {
			m, err := stream.Recv()
			if err != nil {
				return inMsg{}, err
			}
			return attachMsg(m), nil
		},
	}
	go input.run(ctx)
	b := newEventBuilder(x.ID(), x.Lifetime(), j.Options())
	var resp rexecv1.AttachResponse
	err = serveOutput(ctx, a, b, true, func(ev *rexecv1.Event, st *rexecv1.StdinState, gap *rexecv1.Gap) error {
		resp.Event, resp.Stdin, resp.Gap = ev, st, gap
		return stream.Send(&resp)
	})
	a.Close(context.Cause(stream.Context()))
	if perr := input.protocolError(); perr != nil {
		return toStatus(perr)
	}
	return toStatus(err)
}

// recvFirst receives a stream's first message, waiting at most timeout (see
// recvStart).
func recvFirst[M any](recv func() (M, error), timeout time.Duration) (M, error) {
	type got struct {
		m   M
		err error
	}
	ch := make(chan got, 1)
	go func() {
		m, err := recv()
		ch <- got{m, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case g := <-ch:
		return g.m, g.err
	case <-t.C:
		var zero M
		return zero, status.Errorf(codes.DeadlineExceeded, "rexec: start: no start message within %v of opening the stream: send start first", timeout)
	}
}

// executionMessage is the API's view of in.
func executionMessage(in journal.Info) *rexecv1.Execution {
	m := &rexecv1.Execution{
		ExecutionId: in.ID, KeyId: in.Owner, Command: in.Command, Lifetime: rexecv1.Lifetime(in.Lifetime),
		Tty: in.TTY, Pid: int32(in.Pid), StartedAt: timestamppb.New(in.Started),
		FirstSeq: in.FirstSeq, LastSeq: in.LastSeq, JournalBytes: uint64(in.Bytes),
		EvictedBytes: uint64(in.EvictedBytes), EvictedEvents: uint64(in.EvictedRecords),
		Attached: in.Attached, StdinOpen: in.StdinOpen,
		State: rexecv1.ExecutionState_EXECUTION_STATE_RUNNING,
	}
	if in.Exit != nil {
		m.State = rexecv1.ExecutionState_EXECUTION_STATE_ENDED
		m.EndedAt = timestamppb.New(in.Ended)
		m.Exited = exitedMessage(in.Exit)
	}
	if !in.GraceEnds.IsZero() {
		m.GraceEndsAt = timestamppb.New(in.GraceEnds)
	}
	return m
}
