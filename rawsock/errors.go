package rawsock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rexec/rexec/runner"
)

// Code is the first byte of an error frame: what kind of failure of rexec
// itself (never of the command: an exit status is data). The names follow
// gRPC's codes so that both transports read the same to a user.
type Code byte

// The error codes. After CodeProtocol and CodeUnauthenticated the server
// closes the connection, and after a CodeUnavailable that says the
// connection was idle; after the others the connection stays usable.
const (
	CodeInvalidArgument    Code = 1
	CodeFailedPrecondition Code = 2
	CodeResourceExhausted  Code = 3
	CodeUnavailable        Code = 4
	CodePermissionDenied   Code = 5
	CodeProtocol           Code = 6
	CodeInternal           Code = 7
	CodeCanceled           Code = 8
	CodeDeadlineExceeded   Code = 9
	// CodeUnauthenticated: the connection's key is no longer in the
	// server's key file (or has another secret); the server closes the
	// connection after it.
	CodeUnauthenticated Code = 10
)

var codeNames = map[Code]string{
	CodeInvalidArgument: "InvalidArgument", CodeFailedPrecondition: "FailedPrecondition",
	CodeResourceExhausted: "ResourceExhausted", CodeUnavailable: "Unavailable",
	CodePermissionDenied: "PermissionDenied", CodeProtocol: "ProtocolError", CodeInternal: "Internal",
	CodeCanceled: "Canceled", CodeDeadlineExceeded: "DeadlineExceeded", CodeUnauthenticated: "Unauthenticated",
}

func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("Code(%d)", byte(c))
}

// Error is an error frame the server sent.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string {
	return "rexec: " + e.Message + " (server said " + e.Code.String() + ")"
}

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

// errorFrame is the one place where runner and transport errors become error
// frames: the raw twin of the gRPC server's toStatus.
func errorFrame(err error) *Error {
	var (
		fe      *runner.FieldError
		scope   errNoScope
		proto   errProtocol
		revoked errKeyRevoked
		idle    errIdle
	)
	switch {
	case errors.As(err, &proto), errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrEmptyFrame), errors.Is(err, ErrUnknownType):
		return &Error{CodeProtocol, "protocol error: " + err.Error() + "; closing the connection"}
	case errors.As(err, &fe) && fe.Precondition:
		return &Error{CodeFailedPrecondition, fe.Error()}
	case errors.As(err, &fe):
		return &Error{CodeInvalidArgument, "invalid request: " + fe.Error()}
	case errors.As(err, &scope):
		return &Error{CodePermissionDenied, scope.Error()}
	case errors.As(err, &revoked):
		return &Error{CodeUnauthenticated, revoked.Error()}
	case errors.As(err, &idle):
		return &Error{CodeUnavailable, idle.Error()}
	case errors.Is(err, runner.ErrTooManyForOwner):
		return &Error{CodeResourceExhausted, err.Error() + " (the key's max= in the server's key file): retry later"}
	case errors.Is(err, runner.ErrTooManyCommands):
		return &Error{CodeResourceExhausted, err.Error() + " (the server's --max-concurrent): retry later"}
	case errors.Is(err, runner.ErrShutdown):
		return &Error{CodeUnavailable, err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{CodeDeadlineExceeded, err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, io.EOF):
		return &Error{CodeCanceled, "call cancelled"}
	}
	return &Error{CodeInternal, err.Error()}
}

// payload encodes e as an error frame's payload.
func (e *Error) payload() []byte { return append([]byte{byte(e.Code)}, e.Message...) }

func decodeError(p []byte) *Error {
	if len(p) == 0 {
		return &Error{CodeInternal, "empty error frame"}
	}
	return &Error{Code(p[0]), string(p[1:])}
}
