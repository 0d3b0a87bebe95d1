package fleet

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// Class is how a target's run ended, for scripts: the records' "class".
type Class string

// The classes. Every class but OK and Failed means the command did not run
// to an exit status there: the run then exits 255.
const (
	// OK: the command exited 0.
	OK Class = "ok"
	// Failed: the command ran and exited nonzero or was killed by a signal
	// (its own --timeout included).
	Failed Class = "failed"
	// Unreachable: no connection (refused, no route, no such host), or the
	// connection or stream broke before the exit status came.
	Unreachable Class = "unreachable"
	// Auth: the TLS handshake or the token was refused.
	Auth Class = "auth"
	// Timeout: the command had not started when the connect timeout passed
	// (a black-holed or hung server).
	Timeout Class = "timeout"
	// Refused: the server refused the command (--max-concurrent reached, a
	// bad request, a missing --dir, shutting down).
	Refused Class = "refused"
	// Cancelled: the run was interrupted (Ctrl-C) before the target ended.
	Cancelled Class = "cancelled"
)

// Ran reports whether the command ran to an exit status.
func (c Class) Ran() bool { return c == OK || c == Failed }

// Result is how one target's run ended.
type Result struct {
	Target Target
	// PID is the remote command's pid (0 when it did not start).
	PID int
	// Exited is the command's exit event; nil when it did not run to one.
	Exited *rexecv1.Exited
	// Err is why rexec itself failed for this target, when it did.
	Err   error
	Class Class
	// Status is what a single-target rexec run would exit with: the exit
	// status, 128+N for signal N, 255 when rexec itself failed, 128+N when
	// signal N interrupted the run.
	Status   int
	Started  time.Time
	Duration time.Duration
	// StdoutBytes and StderrBytes count the output received.
	StdoutBytes, StderrBytes int64
	// Resumes counts the times its connection broke and its command was
	// resumed (from the output it had written on).
	Resumes int
}

// Interrupted is the cause to cancel a run's context with when signal
// Signal interrupts it: the targets still running then get Status
// 128+Signal, as a single-target run would exit.
type Interrupted struct{ Signal syscall.Signal }

func (i Interrupted) Error() string { return "interrupted by " + i.Signal.String() }

// errConnectTimeout is the cause of a target's cancellation when its
// command did not start within the connect timeout.
var errConnectTimeout = errors.New("the command did not start within the connect timeout")

// settle fills r's Class and Status from its Exited or Err; parent is the
// run's context, ctx the target's.
func (r *Result) settle(parent, ctx context.Context) {
	if r.Err == nil && parent.Err() != nil && r.Exited.GetReason() == rexecv1.EndReason_END_REASON_CANCELLED {
		// The run was interrupted and the server ended the command for it
		// (a resumable call tells the server so, and reads the end).
		r.Err = context.Cause(parent)
	}
	if r.Err == nil {
		r.Status = client.ExitStatus(r.Exited)
		r.Class = OK
		if r.Status != 0 {
			r.Class = Failed
		}
		return
	}
	r.Status = 255
	var intr Interrupted
	switch {
	case parent.Err() != nil:
		r.Class = Cancelled
		if errors.As(context.Cause(parent), &intr) {
			r.Status = 128 + int(intr.Signal)
		}
		return
	case errors.Is(context.Cause(ctx), errConnectTimeout):
		r.Class = Timeout
		r.Err = errConnectTimeout
		return
	case errors.Is(r.Err, client.ErrLostMidCommand):
		r.Class = Unreachable
		return
	}
	st, ok := status.FromError(r.Err)
	if !ok {
		r.Class = Unreachable
		return
	}
	switch st.Code() {
	case codes.Unavailable:
		r.Class = Unreachable
		if m := st.Message(); strings.Contains(m, "tls:") || strings.Contains(m, "x509:") || strings.Contains(m, "authentication handshake failed") {
			r.Class = Auth
		}
	case codes.Unauthenticated, codes.PermissionDenied:
		r.Class = Auth
	case codes.DeadlineExceeded:
		r.Class = Timeout
	default:
		r.Class = Refused
	}
}

// ExitStatus is the exit status of a run over several targets: 0 when every
// target exited 0; 255 when any could not run the command (unreachable,
// auth, refused, timed out before it started), as clush -S and pdsh -S
// report; else the highest exit status, 128+N for signal N. A run
// interrupted by signal N exits 128+N, whatever the targets did.
func ExitStatus(ctx context.Context, results []*Result) int {
	var intr Interrupted
	if errors.As(context.Cause(ctx), &intr) {
		return 128 + int(intr.Signal)
	}
	status := 0
	for _, r := range results {
		switch {
		case !r.Class.Ran():
			return 255
		case r.Status > status:
			status = r.Status
		}
	}
	return status
}
