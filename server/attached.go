package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/journal"
	"github.com/rexec/rexec/runner"
)

// A stream attached to an execution — a Session's with a journal, an
// Attach's — has two goroutines, as Session has without a journal: the
// handler's sends the attachment's items (serveOutput), the input goroutine
// applies the client's messages to the attachment (attachInput). The
// attachment outlives neither: when the stream ends, the handler closes it,
// and the execution decides by its lifetime what that means.

// serveOutput sends a's items until Exited is sent, the attachment is
// taken over, send fails, or ctx ends (its cause is returned). stdinStates
// sends the server's stdin position, which only a resumable stream's client
// knows to read.
func serveOutput(ctx context.Context, a *journal.Attachment, b *eventBuilder, stdinStates bool,
	send func(*rexecv1.Event, *rexecv1.StdinState, *rexecv1.Gap) error) error {
	for {
		it, err := a.Next(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		ev := b.event(&it)
		var st *rexecv1.StdinState
		if stdinStates {
			st = stdinMessage(it.Stdin)
		}
		gap := gapMessage(&it)
		if ev == nil && st == nil && gap == nil {
			continue
		}
		if err := send(ev, st, gap); err != nil {
			return err
		}
		if it.Kind == journal.ItemExited {
			return nil
		}
	}
}

// inMsg is one client message of an attached stream, whichever its RPC.
type inMsg struct {
	field  string // the oneof field, for errors
	stdin  []byte
	signal rexecv1.Signal
	resize *rexecv1.WindowSize
	ack    uint64
}

// The fields of inMsg.field.
const (
	fieldStart = "start"
	fieldStdin = "stdin"
	fieldClose = "close_stdin"
	fieldSig   = "signal"
	fieldSize  = "resize"
	fieldAck   = "ack"
	fieldStop  = "cancel"
	fieldNone  = "msg"
)

// attachInput applies a stream's client messages to its attachment.
type attachInput struct {
	a    *journal.Attachment
	recv func() (inMsg, error)
	tty  bool
	// halfCloseIsEOF: a client half-close closes the command's stdin (a
	// Session's rule: nothing can follow it). An Attach's half-close only
	// says the client sends nothing more.
	halfCloseIsEOF bool
	// cancelOnProtocolError kills the command on a message out of order, as
	// a Session does; an Attach only ends its own stream.
	cancelOnProtocolError bool
	// stop ends the stream's sender with the protocol error.
	stop context.CancelCauseFunc
	// session: a Session's stream (error messages say so).
	session bool
	// direct, when set, is the command's stdin itself, written by this
	// stream's receiver; nil: stdin goes through the journal's pump.
	direct *directStdin

	mu   sync.Mutex
	perr error
}

func (in *attachInput) protocolError() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.perr
}

func (in *attachInput) fail(field, format string, args ...any) {
	err := &runner.FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
	in.mu.Lock()
	if in.perr == nil {
		in.perr = err
	}
	in.mu.Unlock()
	if in.cancelOnProtocolError {
		in.a.Execution().CancelByClient()
	}
	in.stop(err)
}

func (in *attachInput) run(ctx context.Context) {
	if d := in.direct; d != nil {
		d.write(d.initial)
	}
	for {
		m, err := in.recv()
		if errors.Is(err, io.EOF) {
			if d := in.direct; d != nil {
				if in.halfCloseIsEOF && !d.closed {
					d.close()
				}
			} else if in.halfCloseIsEOF && in.a.StdinOpen() {
				_ = in.a.CloseStdin()
			}
			return
		}
		if err != nil {
			return // the call ended; the handler closes the attachment
		}
		if !in.apply(ctx, m) {
			return
		}
	}
}

// apply applies one message; false ends the input.
func (in *attachInput) apply(ctx context.Context, m inMsg) bool {
	a := in.a
	switch d := in.direct; {
	case d != nil && m.field == fieldStdin:
		if d.closed {
			in.fail(fieldStdin, "sent after close_stdin")
			return false
		}
		d.write(m.stdin)
		return true
	case d != nil && m.field == fieldClose:
		if d.closed {
			in.fail(fieldClose, "sent twice")
			return false
		}
		d.close()
		return true
	}
	switch m.field {
	case fieldStdin:
		switch err := a.Stdin(ctx, m.stdin); {
		case errors.Is(err, journal.ErrStdinClosed):
			in.fail(fieldStdin, "sent after close_stdin")
		case errors.Is(err, journal.ErrNoStdin):
			in.fail(fieldStdin, "%v", err)
		case err != nil:
			return false // taken over, or the call ended
		default:
			return true
		}
		return false
	case fieldClose:
		switch err := a.CloseStdin(); {
		case errors.Is(err, journal.ErrStdinClosed):
			in.fail(fieldClose, "sent twice")
		case errors.Is(err, journal.ErrNoStdin):
			in.fail(fieldClose, "%v", err)
		case err != nil:
			return false
		default:
			return true
		}
		return false
	case fieldSig:
		sig, ok := signalOf(m.signal)
		if !ok {
			in.fail(fieldSig, "%v is not a signal a session may send: one of HUP, INT, QUIT, KILL, USR1, USR2, TERM, WINCH", m.signal)
			return false
		}
		_ = a.Signal(sig)
	case fieldSize:
		rows, cols := m.resize.GetRows(), m.resize.GetCols()
		if rows == 0 || cols == 0 || rows > math.MaxUint16 || cols > math.MaxUint16 {
			in.fail(fieldSize, "%dx%d: rows and cols must both be between 1 and %d", rows, cols, math.MaxUint16)
			return false
		}
		if !in.tty {
			if in.session {
				in.fail(fieldSize, "the session was started without a tty")
			} else {
				in.fail(fieldSize, "the execution has no tty")
			}
			return false
		}
		_ = a.Resize(uint16(rows), uint16(cols))
	case fieldAck:
		a.Ack(m.ack)
	case fieldStop:
		a.Execution().CancelByClient()
	case fieldStart:
		if in.session {
			in.fail(fieldStart, "sent twice: a session runs one command")
		} else {
			in.fail(fieldStart, "sent twice: a stream attaches to one execution")
		}
		return false
	default:
		in.fail(fieldNone, "empty or unknown message (a newer client?)")
		return false
	}
	return true
}

// sessionMsg is a SessionRequest as an inMsg.
func sessionMsg(m *rexecv1.SessionRequest) inMsg {
	switch msg := m.GetMsg().(type) {
	case *rexecv1.SessionRequest_Start:
		return inMsg{field: fieldStart}
	case *rexecv1.SessionRequest_Stdin:
		return inMsg{field: fieldStdin, stdin: msg.Stdin}
	case *rexecv1.SessionRequest_CloseStdin:
		return inMsg{field: fieldClose}
	case *rexecv1.SessionRequest_Signal:
		return inMsg{field: fieldSig, signal: msg.Signal}
	case *rexecv1.SessionRequest_Resize:
		return inMsg{field: fieldSize, resize: msg.Resize}
	case *rexecv1.SessionRequest_Ack:
		return inMsg{field: fieldAck, ack: msg.Ack.GetSeq()}
	case *rexecv1.SessionRequest_Cancel:
		return inMsg{field: fieldStop}
	}
	return inMsg{field: fieldNone}
}

// attachMsg is an AttachRequest as an inMsg.
func attachMsg(m *rexecv1.AttachRequest) inMsg {
	switch msg := m.GetMsg().(type) {
	case *rexecv1.AttachRequest_Start:
		return inMsg{field: fieldStart}
	case *rexecv1.AttachRequest_Stdin:
		return inMsg{field: fieldStdin, stdin: msg.Stdin}
	case *rexecv1.AttachRequest_CloseStdin:
		return inMsg{field: fieldClose}
	case *rexecv1.AttachRequest_Signal:
		return inMsg{field: fieldSig, signal: msg.Signal}
	case *rexecv1.AttachRequest_Resize:
		return inMsg{field: fieldSize, resize: msg.Resize}
	case *rexecv1.AttachRequest_Ack:
		return inMsg{field: fieldAck, ack: msg.Ack.GetSeq()}
	case *rexecv1.AttachRequest_Cancel:
		return inMsg{field: fieldStop}
	}
	return inMsg{field: fieldNone}
}

// sessionJournaled runs a Session as an execution of the journal; its
// stream is the execution's first attachment.
func (e *execService) sessionJournaled(stream rexecv1.ExecService_SessionServer, start *rexecv1.SessionStart, spec runner.Spec) error {
	lt, err := e.s.lifetimeOf(start.GetCommand().GetLifetime())
	if err != nil {
		return toStatus(err)
	}
	if lt == journal.Detached {
		return toStatus(&runner.FieldError{Field: "lifetime", Problem: "DETACHED needs Run: a detached command's stdin is /dev/null"})
	}
	spec.Audit = append(spec.Audit, lifetimeAttr(lt))
	j := e.s.cfg.Journal
	// A CALL command's stdin has no stream after this one to outlive, so
	// it needs none of the pump's queue and window: the receiver writes it
	// into the command's pipe as it comes, and HTTP/2 flow control holds
	// the client back while the command does not read, as without a
	// journal (and as the raw transport does).
	direct := lt == journal.Call && spec.OpenStdin
	so := journal.StartOptions{Owner: owner(stream), Lifetime: lt, Attach: true, DirectStdin: direct}
	if !direct {
		so.Stdin = start.GetCommand().GetStdin()
	}
	x, a, err := j.Start(e.s.executionContext(stream.Context()), e.s.cfg.Runner, spec, so)
	if err != nil {
		return toStatus(err)
	}
	ctx, stop := context.WithCancelCause(stream.Context())
	defer stop(nil)
	in := &attachInput{
		a: a, tty: spec.TTY != nil, halfCloseIsEOF: true, cancelOnProtocolError: true, stop: stop, session: true,
	}
	if direct {
		in.direct = &directStdin{w: x.Stdin(), initial: start.GetCommand().GetStdin()}
		// One message for every receive: the codec copies stdin into its
		// buffer, reused, and each is written before the next is read.
		m := new(rexecv1.SessionRequest)
		in.recv = func() (inMsg, error) {
			if err := stream.RecvMsg(m); err != nil {
				return inMsg{}, err
			}
			return sessionMsg(m), nil
		}
	} else {
		// The pump's queue keeps what it is handed: a message each.
		in.recv = func() (inMsg, error) {
			m, err := stream.Recv()
			if err != nil {
				return inMsg{}, err
			}
			return sessionMsg(m), nil
		}
	}
	go in.run(ctx)
	b := newEventBuilder(x.ID(), lt, j.Options())
	var resp rexecv1.SessionResponse
	err = serveOutput(ctx, a, b, lt == journal.Resumable, func(ev *rexecv1.Event, st *rexecv1.StdinState, _ *rexecv1.Gap) error {
		resp.Event, resp.Stdin = ev, st
		return stream.Send(&resp)
	})
	a.Close(context.Cause(stream.Context()))
	if perr := in.protocolError(); perr != nil {
		return toStatus(perr)
	}
	return toStatus(err)
}

// directStdin is a CALL session's stdin, written by its stream's receiver.
type directStdin struct {
	// w is the command's stdin; nil when it has none (it could not be
	// executed) or once a write failed (it closed its stdin, or ended):
	// what follows is dropped, as a pipe whose reader is gone drops it.
	w       io.WriteCloser
	initial []byte // SessionStart's stdin, written first
	closed  bool
}

func (d *directStdin) write(b []byte) {
	if d.w != nil && len(b) > 0 {
		if _, err := d.w.Write(b); err != nil {
			d.w = nil
		}
	}
}

func (d *directStdin) close() {
	d.closed = true
	if d.w != nil {
		_ = d.w.Close()
	}
}
