package server

import (
	"bytes"
	"context"
	"log/slog"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/keyspec"
	"github.com/rexec/rexec/runner"
)

type execService struct {
	rexecv1.UnimplementedExecServiceServer
	s *Server
}

func (e *execService) Run(req *rexecv1.RunRequest, stream rexecv1.ExecService_RunServer) error {
	spec, err := specFromRequest(req)
	if err == nil {
		err = keyspec.Apply(&spec, interceptors.KeyFromContext(stream.Context()), req.GetLimits())
	}
	if err != nil {
		return toStatus(err)
	}
	if len(req.GetStdin()) > 0 {
		spec.Stdin = bytes.NewReader(req.GetStdin())
	}
	spec.Audit = auditAttrs(stream.Context())
	if e.s.cfg.Journal != nil {
		return e.runJournaled(req, spec, stream)
	}
	if _, err := e.s.lifetimeOf(req.GetLifetime()); err != nil {
		return toStatus(err) // without a journal, only CALL (RESUMABLE is given as CALL)
	}
	ctx, done := e.s.commandContext(stream.Context())
	defer done()
	p, err := e.s.cfg.Runner.Start(ctx, spec)
	if err != nil {
		return toStatus(err)
	}
	var resp rexecv1.RunResponse
	_, err = p.Wait(newEventSink(func(ev *rexecv1.Event) error {
		resp.Event = ev
		return stream.Send(&resp)
	}))
	return toStatus(err)
}

// specFromRequest turns a request into a runner spec; the runner checks it
// against its limits.
func specFromRequest(req *rexecv1.RunRequest) (runner.Spec, error) {
	spec := runner.Spec{
		Shell:     req.GetShell(),
		Argv:      req.GetArgv(),
		Env:       req.GetEnv(),
		Dir:       req.GetDir(),
		MaxOutput: int64(min(req.GetMaxOutputBytes(), 1<<62)),
	}
	if t := req.GetTimeout(); t != nil {
		if err := t.CheckValid(); err != nil {
			return spec, &runner.FieldError{Field: "timeout", Problem: "not a valid duration"}
		}
		spec.Timeout = t.AsDuration()
	}
	return spec, nil
}

// auditAttrs are the call's facts for the audit log (interceptors.AuditAttrs).
func auditAttrs(ctx context.Context) []slog.Attr { return interceptors.AuditAttrs(ctx) }
