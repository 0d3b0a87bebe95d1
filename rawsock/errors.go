package rawsock

import (
	"fmt"
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

// Payload encodes e as an error frame's payload.
func (e *Error) Payload() []byte { return append([]byte{byte(e.Code)}, e.Message...) }

func decodeError(p []byte) *Error {
	if len(p) == 0 {
		return &Error{CodeInternal, "empty error frame"}
	}
	return &Error{Code(p[0]), string(p[1:])}
}
