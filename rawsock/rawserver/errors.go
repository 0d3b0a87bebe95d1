package rawserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rexec/rexec/rawsock"
	"github.com/rexec/rexec/runner"
)

// errNoScope is returned when the connection's key lacks a frame's scope.
type errNoScope struct{ keyID, scope string }

func (e errNoScope) Error() string {
	return fmt.Sprintf("key %q lacks scope %q", e.keyID, e.scope)
}

// errProtocol is a peer's breach of the protocol: the connection is closed.
type errProtocol struct{ msg string }

func (e errProtocol) Error() string { return e.msg }

// errKeyRevoked is a frame on a connection whose key a reload removed (or
// gave another secret): what the connection proved no longer authenticates
// anyone, as a gRPC call with that key would be Unauthenticated. Every
// later frame would be refused the same way, so the connection is closed:
// a new handshake is the way on. A key whose scopes shrank is not revoked:
// it gets PermissionDenied for what it may no longer do.
type errKeyRevoked struct{ keyID string }

func (e errKeyRevoked) Error() string {
	return fmt.Sprintf("key %q is no longer in the server's key file (it was removed or changed since this connection's handshake); closing the connection", e.keyID)
}

// errIdle closes an authenticated connection that was idle too long.
type errIdle struct{ after time.Duration }

func (e errIdle) Error() string {
	return fmt.Sprintf("the connection ran no command for %v; closing it (rexecd --raw-idle-timeout): dial again", e.after)
}

// errClientGone ends a connection whose client closed it while the server
// was not reading it (a command's stdin was full).
var errClientGone = errors.New("the client closed the connection")

// errConnEnding is a pump's frame refused because the connection is being
// failed (conn.fail): its error frame is the last one.
var errConnEnding = errors.New("the connection is being closed after an error")

// errorFrame is the one place where runner and transport errors become error
// frames: the raw twin of the gRPC server's toStatus.
func errorFrame(err error) *rawsock.Error {
	var (
		fe      *runner.FieldError
		scope   errNoScope
		proto   errProtocol
		revoked errKeyRevoked
		idle    errIdle
	)
	switch {
	case errors.As(err, &proto), errors.Is(err, rawsock.ErrFrameTooLarge), errors.Is(err, rawsock.ErrEmptyFrame), errors.Is(err, rawsock.ErrUnknownType):
		return &rawsock.Error{Code: rawsock.CodeProtocol, Message: "protocol error: " + err.Error() + "; closing the connection"}
	case errors.As(err, &fe) && fe.Precondition:
		return &rawsock.Error{Code: rawsock.CodeFailedPrecondition, Message: fe.Error()}
	case errors.As(err, &fe):
		return &rawsock.Error{Code: rawsock.CodeInvalidArgument, Message: "invalid request: " + fe.Error()}
	case errors.As(err, &scope):
		return &rawsock.Error{Code: rawsock.CodePermissionDenied, Message: scope.Error()}
	case errors.As(err, &revoked):
		return &rawsock.Error{Code: rawsock.CodeUnauthenticated, Message: revoked.Error()}
	case errors.As(err, &idle):
		return &rawsock.Error{Code: rawsock.CodeUnavailable, Message: idle.Error()}
	case errors.Is(err, runner.ErrTooManyForOwner):
		return &rawsock.Error{Code: rawsock.CodeResourceExhausted, Message: err.Error() + " (the key's max= in the server's key file): retry later"}
	case errors.Is(err, runner.ErrTooManyCommands):
		return &rawsock.Error{Code: rawsock.CodeResourceExhausted, Message: err.Error() + " (the server's --max-concurrent): retry later"}
	case errors.Is(err, runner.ErrShutdown):
		return &rawsock.Error{Code: rawsock.CodeUnavailable, Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return &rawsock.Error{Code: rawsock.CodeDeadlineExceeded, Message: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, io.EOF):
		return &rawsock.Error{Code: rawsock.CodeCanceled, Message: "call cancelled"}
	}
	return &rawsock.Error{Code: rawsock.CodeInternal, Message: err.Error()}
}
