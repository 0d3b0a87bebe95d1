package files

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// refusalKind is why the service refuses a request; toStatus maps each to
// its gRPC code.
type refusalKind int

const (
	refuseInvalid         refusalKind = iota // a malformed request
	refuseOutside                            // a path that leaves the key's root
	refuseNotServed                          // a FIFO, a device, a hard-linked file, a directory where a file goes
	refuseState                              // the server's files are not as the call needs them
	refuseNotFound                           // no such path or upload
	refuseQuota                              // the key's quota
	refuseDataLoss                           // an upload's hash differs
	refuseAborted                            // another stream took the upload over
	refuseRange                              // an offset that is not where the upload is
	refuseUnauthenticated                    // a call without a key (open methods never reach here)
	refuseUnavailable                        // shutting down
)

// refusal is a domain error of this package: what is wrong, in one line
// that names the path and says what to do.
type refusal struct {
	kind refusalKind
	msg  string
}

func (r *refusal) Error() string { return r.msg }

func refuse(kind refusalKind, format string, args ...any) *refusal {
	return &refusal{kind: kind, msg: refuseFmt(format, args...)}
}

var refusalCodes = map[refusalKind]codes.Code{
	refuseInvalid:         codes.InvalidArgument,
	refuseOutside:         codes.PermissionDenied,
	refuseNotServed:       codes.FailedPrecondition,
	refuseState:           codes.FailedPrecondition,
	refuseNotFound:        codes.NotFound,
	refuseQuota:           codes.ResourceExhausted,
	refuseDataLoss:        codes.DataLoss,
	refuseAborted:         codes.Aborted,
	refuseRange:           codes.OutOfRange,
	refuseUnauthenticated: codes.Unauthenticated,
	refuseUnavailable:     codes.Unavailable,
}

// toStatus is the one place where this package's errors and the
// filesystem's become gRPC statuses. path is the request's path the error
// is about, for the message. A status passes as is.
func toStatus(path string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code, msg := classify(display(path), err)
	return status.Error(code, "rexec: "+msg)
}

// classify maps err to a code and a message naming p.
func classify(p string, err error) (codes.Code, string) {
	var r *refusal
	var errno syscall.Errno
	errors.As(err, &errno)
	switch {
	case errors.As(err, &r):
		return refusalCodes[r.kind], r.msg
	case escapes(err):
		return codes.PermissionDenied, fmt.Sprintf("%s leads outside this key's root (through `..`, an absolute name or a symlink): nothing outside the root is reachable", p)
	case errors.Is(err, context.Canceled):
		return codes.Canceled, "call cancelled"
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded, "deadline exceeded"
	case errors.Is(err, fs.ErrNotExist):
		return codes.NotFound, fmt.Sprintf("%s does not exist", p)
	case errno == syscall.ENOTEMPTY:
		return codes.FailedPrecondition, fmt.Sprintf("%s is a directory that is not empty: remove it recursively (rm -r)", p)
	case errors.Is(err, fs.ErrExist):
		return codes.AlreadyExists, fmt.Sprintf("%s already exists", p)
	case errors.Is(err, fs.ErrPermission):
		return codes.PermissionDenied, fmt.Sprintf("%s: permission denied to the user rexecd runs as", p)
	case errno == syscall.ENOTDIR:
		return codes.FailedPrecondition, fmt.Sprintf("%s: a part of it is not a directory", p)
	case errno == syscall.EISDIR:
		return codes.FailedPrecondition, fmt.Sprintf("%s is a directory", p)
	case errno == syscall.ELOOP:
		return codes.FailedPrecondition, fmt.Sprintf("%s: too many levels of symlinks", p)
	case errno == syscall.ENAMETOOLONG:
		return codes.InvalidArgument, fmt.Sprintf("%s: a name in it is too long", p)
	case errno == syscall.ENOSPC, errno == syscall.EDQUOT:
		return codes.ResourceExhausted, fmt.Sprintf("%s: no space left on the server's filesystem", p)
	case errno == syscall.EROFS:
		return codes.FailedPrecondition, fmt.Sprintf("%s is on a read-only filesystem", p)
	case errno == syscall.EXDEV:
		return codes.FailedPrecondition, fmt.Sprintf("%s: a rename across filesystems", p)
	case errno == syscall.EINVAL:
		return codes.InvalidArgument, fmt.Sprintf("%s: invalid (a directory moved into itself?)", p)
	case errno == syscall.EBUSY:
		return codes.FailedPrecondition, fmt.Sprintf("%s is busy (a mount point?)", p)
	}
	return codes.Internal, fmt.Sprintf("%s: %v", p, err)
}
