package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/journal"
	"github.com/rexec/rexec/runner"
)

// With a journal (Config.Journal), every command is an execution of it:
// the runner's events go to the journal, and the call's stream reads them
// from there, as a resumed stream and ExecutionService do.

// lifetimeOf is the lifetime a request gets from this server: RESUMABLE
// needs a journal and a reconnect grace (without either it is CALL, and
// Started says so); DETACHED needs a journal.
func (s *Server) lifetimeOf(l rexecv1.Lifetime) (journal.Lifetime, error) {
	j := s.cfg.Journal
	switch l {
	case rexecv1.Lifetime_LIFETIME_UNSPECIFIED, rexecv1.Lifetime_LIFETIME_CALL:
		return journal.Call, nil
	case rexecv1.Lifetime_LIFETIME_RESUMABLE:
		if j == nil || j.Options().ReconnectGrace <= 0 {
			return journal.Call, nil
		}
		return journal.Resumable, nil
	case rexecv1.Lifetime_LIFETIME_DETACHED:
		if j == nil {
			return 0, errNoJournal
		}
		return journal.Detached, nil
	}
	return 0, &runner.FieldError{Field: "lifetime", Problem: fmt.Sprintf("%v is not a lifetime this server knows", l)}
}

// errNoJournal: the server keeps no journal, so nothing outlives its call.
var errNoJournal = errors.New("this server keeps no journal (rexecd --journal-max 0): executions end with their calls")

// owner is the key id a call's executions belong to.
func owner(stream grpc.ServerStream) string {
	if k := interceptors.KeyFromContext(stream.Context()); k != nil {
		return k.ID
	}
	return ""
}

// runJournaled runs a Run request as an execution of the journal. A CALL
// command's events stream until Exited; a RESUMABLE or DETACHED one's call
// returns once it has started, and ExecutionService reads it.
func (e *execService) runJournaled(req *rexecv1.RunRequest, spec runner.Spec, stream rexecv1.ExecService_RunServer) error {
	lt, err := e.s.lifetimeOf(req.GetLifetime())
	if err != nil {
		return toStatus(err)
	}
	spec.Audit = append(spec.Audit, lifetimeAttr(lt))
	j := e.s.cfg.Journal
	x, a, err := j.Start(e.s.executionContext(stream.Context()), e.s.cfg.Runner, spec, journal.StartOptions{Owner: owner(stream), Lifetime: lt, Attach: lt == journal.Call})
	if err != nil {
		return toStatus(err)
	}
	b := newEventBuilder(x.ID(), lt, j.Options())
	var resp rexecv1.RunResponse
	if a == nil {
		resp.Event = b.started(x.Info().Pid)
		return toStatus(stream.Send(&resp))
	}
	err = serveOutput(stream.Context(), a, b, false, func(ev *rexecv1.Event, _ *rexecv1.StdinState, _ *rexecv1.Gap) error {
		if ev == nil {
			return nil
		}
		resp.Event = ev
		return stream.Send(&resp)
	})
	a.Close(context.Cause(stream.Context())) // the call's end ends a CALL command that still runs
	if lt == journal.Call {
		// As without a journal, a CALL call ends after its command: the
		// runner's kill grace and drain bound limit the wait.
		<-x.Done()
	}
	return toStatus(err)
}

func lifetimeAttr(lt journal.Lifetime) slog.Attr { return slog.String("lifetime", lt.String()) }

// eventBuilder turns journal items into Events, reusing one set of
// messages per stream (Send marshals before it returns).
type eventBuilder struct {
	id          string
	lifetime    rexecv1.Lifetime
	grace       *durationpb.Duration
	ackWindow   uint64
	ev          rexecv1.Event
	out         rexecv1.Output
	stdout      rexecv1.Event_Stdout
	stderr      rexecv1.Event_Stderr
	startedKind rexecv1.Event_Started
}

func newEventBuilder(id string, lt journal.Lifetime, o journal.Options) *eventBuilder {
	b := &eventBuilder{id: id, lifetime: rexecv1.Lifetime(lt)}
	if lt == journal.Resumable {
		b.grace, b.ackWindow = durationpb.New(o.ReconnectGrace), uint64(o.MaxBytes)
	}
	b.stdout.Stdout = &b.out
	b.stderr.Stderr = &b.out
	return b
}

func (b *eventBuilder) started(pid int) *rexecv1.Event {
	b.startedKind.Started = &rexecv1.Started{ExecutionId: b.id, Pid: int32(pid), Lifetime: b.lifetime, ReconnectGrace: b.grace, AckWindow: b.ackWindow}
	b.ev.Kind = &b.startedKind
	return &b.ev
}

// event is the Event of it, or nil for a gap or a stdin state.
func (b *eventBuilder) event(it *journal.Item) *rexecv1.Event {
	switch it.Kind {
	case journal.ItemStarted:
		return b.started(it.Pid)
	case journal.ItemOutput:
		b.out.Seq, b.out.Data = it.Seq, it.Data
		if it.Stream == runner.Stderr {
			b.ev.Kind = &b.stderr
		} else {
			b.ev.Kind = &b.stdout
		}
		return &b.ev
	case journal.ItemExited:
		b.ev.Kind = &rexecv1.Event_Exited{Exited: exitedMessage(it.Exit)}
		return &b.ev
	}
	return nil
}

func stdinMessage(s *journal.StdinState) *rexecv1.StdinState {
	if s == nil {
		return nil
	}
	return &rexecv1.StdinState{Taken: s.Taken, Window: uint64(s.Window), Closed: s.Closed}
}

func gapMessage(it *journal.Item) *rexecv1.Gap {
	if it.Kind != journal.ItemGap {
		return nil
	}
	return &rexecv1.Gap{FirstSeq: it.Gap.FirstSeq, LastSeq: it.Gap.LastSeq, Bytes: uint64(max(it.Gap.Bytes, 0))}
}
