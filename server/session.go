package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/keyspec"
	"github.com/rexec/rexec/journal"
	"github.com/rexec/rexec/runner"
)

// Session runs one command with a live stdin, signals and optionally a
// pseudo-terminal.
//
// Two goroutines share the call, each with one job, so that gRPC's rule of
// one sender and one receiver per stream holds by construction:
//   - this one starts the command and pumps its events with Process.Wait,
//     the only sender on the stream;
//   - the input goroutine receives the later messages and applies them in
//     order: stdin writes block while the command does not read, so a client
//     that sends faster than the command reads is held back by HTTP/2 flow
//     control instead of being buffered here.
//
// A message out of order (a second start, stdin after close_stdin, an
// unknown signal, a resize without a tty) is a protocol error: the command
// is cancelled (SIGTERM to its group, SIGKILL after the runner's grace), no
// Exited is sent, and the call ends with InvalidArgument naming the field.
// A client half-close (CloseSend) is taken as close_stdin: nothing can follow
// it, so the command would otherwise wait for an EOF that never comes.
func (e *execService) Session(stream rexecv1.ExecService_SessionServer) error {
	first, err := recvStart(stream, e.s.cfg.SessionStartTimeout)
	if errors.Is(err, io.EOF) {
		return status.Error(codes.InvalidArgument, "rexec: invalid request: start: the stream ended before its first message, which must be start")
	}
	if err != nil {
		return toStatus(err)
	}
	start := first.GetStart()
	if start == nil {
		return toStatus(&runner.FieldError{Field: messageName(first), Problem: "sent before start: the first message of a session must be start"})
	}
	spec, err := specFromSession(start)
	if err == nil {
		err = keyspec.Apply(&spec, interceptors.KeyFromContext(stream.Context()), start.GetCommand().GetLimits())
	}
	if err != nil {
		return toStatus(err)
	}

	spec.Audit = auditAttrs(stream.Context())
	if e.s.cfg.Journal != nil {
		return e.sessionJournaled(stream, start, spec)
	}
	if lt, err := e.s.lifetimeOf(start.GetCommand().GetLifetime()); err != nil {
		return toStatus(err)
	} else if lt != journal.Call {
		return toStatus(&runner.FieldError{Field: "lifetime", Problem: "DETACHED needs Run: a detached command's stdin is /dev/null"})
	}
	callCtx, done := e.s.commandContext(stream.Context())
	defer done()
	ctx, cancel := context.WithCancelCause(callCtx)
	defer cancel(nil)
	p, err := e.s.cfg.Runner.Start(ctx, spec)
	if err != nil {
		return toStatus(err)
	}

	in := &sessionInput{p: p, stream: stream, cancel: cancel, initial: start.GetCommand().GetStdin(), tty: spec.TTY != nil}
	go in.run()

	var resp rexecv1.SessionResponse
	_, err = p.Wait(newEventSink(func(ev *rexecv1.Event) error {
		if perr := in.protocolError(); perr != nil {
			// Exited too: the call ends with the protocol error instead.
			return perr
		}
		resp.Event = ev
		return stream.Send(&resp)
	}))
	in.end()
	if perr := in.protocolError(); perr != nil {
		return toStatus(perr)
	}
	// The input goroutine ends when this call does (its Recv then fails);
	// it never touches the stream's send side.
	return toStatus(err)
}

// recvStart receives a session's first message, waiting at most timeout: a
// client that opens a session and sends nothing must not hold a goroutine
// (and a stream) for ever. On the timeout the handler returns, which ends the
// stream, and with it the pending Recv.
func recvStart(stream rexecv1.ExecService_SessionServer, timeout time.Duration) (*rexecv1.SessionRequest, error) {
	type recv struct {
		m   *rexecv1.SessionRequest
		err error
	}
	got := make(chan recv, 1)
	go func() {
		m, err := stream.Recv()
		got <- recv{m, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-got:
		return r.m, r.err
	case <-t.C:
		return nil, status.Errorf(codes.DeadlineExceeded, "rexec: start: no start message within %v of opening the session: send start first", timeout)
	}
}

// specFromSession is specFromRequest plus the session's stdin and terminal.
func specFromSession(start *rexecv1.SessionStart) (runner.Spec, error) {
	spec, err := specFromRequest(start.GetCommand())
	if err != nil {
		return spec, err
	}
	spec.OpenStdin = true
	if t := start.GetTty(); t != nil {
		rows, cols := uint32(24), uint32(80)
		if sz := t.GetSize(); sz != nil {
			rows, cols = sz.GetRows(), sz.GetCols()
		}
		if rows > math.MaxUint16 || cols > math.MaxUint16 {
			return spec, &runner.FieldError{Field: "tty.size", Problem: fmt.Sprintf("%dx%d is over the limit of %d", rows, cols, math.MaxUint16)}
		}
		spec.TTY = &runner.TTY{Rows: uint16(rows), Cols: uint16(cols), Term: t.GetTerm()}
	}
	return spec, nil
}

// errCancelled is the cause of a command its client cancelled on purpose.
var errCancelled = errors.New("cancelled by its client")

// sessionInput applies a session's client messages to its process.
type sessionInput struct {
	p       *runner.Process
	stream  rexecv1.ExecService_SessionServer
	cancel  context.CancelCauseFunc
	initial []byte
	tty     bool
	closed  bool // stdin was closed (close_stdin or half-close); run's alone

	mu    sync.Mutex
	ended bool  // Wait returned: the pid may be reused, signal nothing
	perr  error // the first protocol error
}

func (in *sessionInput) protocolError() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.perr
}

func (in *sessionInput) end() {
	in.mu.Lock()
	in.ended = true
	in.mu.Unlock()
}

// fail records a protocol error and cancels the command.
func (in *sessionInput) fail(field, format string, args ...any) {
	err := &runner.FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
	in.mu.Lock()
	if in.perr == nil {
		in.perr = err
	}
	in.mu.Unlock()
	in.cancel(err)
}

func (in *sessionInput) run() {
	stdin := in.p.Stdin()
	// A write fails once the command closed its stdin or has ended; the
	// client's later stdin is then dropped, as a pipe's reader that went away
	// drops it, but the messages are still read for signals and errors.
	write := func(b []byte) {
		if stdin != nil && len(b) > 0 {
			if _, err := stdin.Write(b); err != nil {
				stdin = nil
			}
		}
	}
	closeStdin := func() {
		in.closed = true
		if stdin != nil {
			_ = stdin.Close()
		}
	}
	write(in.initial)
	// One message for every receive: the codec copies stdin into its
	// buffer, reused, and each message is done with before the next.
	m := new(rexecv1.SessionRequest)
	for {
		err := in.stream.RecvMsg(m)
		if errors.Is(err, io.EOF) {
			if !in.closed {
				closeStdin()
			}
			return
		}
		if err != nil {
			return // the call ended: the command is cancelled with it
		}
		switch msg := m.GetMsg().(type) {
		case *rexecv1.SessionRequest_Stdin:
			if in.closed {
				in.fail("stdin", "sent after close_stdin")
				return
			}
			write(msg.Stdin)
		case *rexecv1.SessionRequest_CloseStdin:
			if in.closed {
				in.fail("close_stdin", "sent twice")
				return
			}
			closeStdin()
		case *rexecv1.SessionRequest_Signal:
			sig, ok := signalOf(msg.Signal)
			if !ok {
				in.fail("signal", "%v is not a signal a session may send: one of HUP, INT, QUIT, KILL, USR1, USR2, TERM, WINCH", msg.Signal)
				return
			}
			in.whileRunning(func() { _ = in.p.Signal(sig) })
		case *rexecv1.SessionRequest_Resize:
			rows, cols := msg.Resize.GetRows(), msg.Resize.GetCols()
			if rows == 0 || cols == 0 || rows > math.MaxUint16 || cols > math.MaxUint16 {
				in.fail("resize", "%dx%d: rows and cols must both be between 1 and %d", rows, cols, math.MaxUint16)
				return
			}
			if !in.tty {
				in.fail("resize", "the session was started without a tty")
				return
			}
			// An error here means the terminal is gone (the command ended).
			in.whileRunning(func() { _ = in.p.Resize(uint16(rows), uint16(cols)) })
		case *rexecv1.SessionRequest_Ack:
			// Without a journal nothing is kept for a resume: nothing to let go.
		case *rexecv1.SessionRequest_Cancel:
			in.cancel(errCancelled)
		case *rexecv1.SessionRequest_Start:
			in.fail("start", "sent twice: a session runs one command")
			return
		default:
			in.fail("msg", "empty or unknown message (a newer client?)")
			return
		}
	}
}

// whileRunning runs fn unless Wait has returned, when the process group's id
// may already belong to someone else.
func (in *sessionInput) whileRunning(fn func()) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.ended {
		fn()
	}
}

// signalOf maps the API's signal enum to the host's signal.
func signalOf(s rexecv1.Signal) (syscall.Signal, bool) {
	name, ok := rexecv1.Signal_name[int32(s)]
	if !ok || s == rexecv1.Signal_SIGNAL_UNSPECIFIED {
		return 0, false
	}
	return runner.SignalByName(name[len("SIGNAL_"):])
}

// messageName is the oneof field a request carries, for error messages.
func messageName(m *rexecv1.SessionRequest) string {
	switch m.GetMsg().(type) {
	case *rexecv1.SessionRequest_Stdin:
		return "stdin"
	case *rexecv1.SessionRequest_CloseStdin:
		return "close_stdin"
	case *rexecv1.SessionRequest_Signal:
		return "signal"
	case *rexecv1.SessionRequest_Resize:
		return "resize"
	case *rexecv1.SessionRequest_Start:
		return "start"
	case *rexecv1.SessionRequest_Ack:
		return "ack"
	case *rexecv1.SessionRequest_Cancel:
		return "cancel"
	}
	return "msg"
}
