package server

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rexec/rexec/journal"
	"github.com/rexec/rexec/runner"
)

// toStatus is the one place where runner and transport errors become gRPC
// statuses. An error that already is a status (a failed Send) passes as is.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var fe *runner.FieldError
	switch {
	case errors.As(err, &fe) && fe.Precondition:
		return status.Error(codes.FailedPrecondition, "rexec: "+fe.Error())
	case errors.As(err, &fe):
		return status.Error(codes.InvalidArgument, "rexec: invalid request: "+fe.Error())
	case errors.Is(err, runner.ErrTooManyForOwner):
		return status.Error(codes.ResourceExhausted, "rexec: "+err.Error()+" (the key's max= in the server's key file): retry later")
	case errors.Is(err, runner.ErrTooManyCommands):
		return status.Error(codes.ResourceExhausted, "rexec: "+err.Error()+" (the server's --max-concurrent): retry later")
	case errors.Is(err, runner.ErrShutdown):
		return status.Error(codes.Unavailable, "rexec: "+err.Error())
	case errors.Is(err, journal.ErrNotFound):
		return status.Error(codes.NotFound, "rexec: "+err.Error()+": `rexec ps -a` lists the executions of your key")
	case errors.Is(err, journal.ErrGone):
		return status.Error(codes.NotFound, "rexec: "+err.Error())
	case errors.Is(err, journal.ErrNotAttachable):
		return status.Error(codes.FailedPrecondition, "rexec: "+err.Error()+"; read its output with `rexec logs -f`")
	case errors.Is(err, journal.ErrTakenOver):
		return status.Error(codes.Aborted, "rexec: "+err.Error())
	case errors.Is(err, errNoJournal):
		return status.Error(codes.FailedPrecondition, "rexec: "+err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "rexec: "+err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, io.EOF):
		return status.Error(codes.Canceled, "rexec: call cancelled")
	}
	return status.Error(codes.Internal, "rexec: "+err.Error())
}
