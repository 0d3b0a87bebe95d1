package files

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestToStatus: every error the service meets maps to one code, and the
// message names the path.
func TestToStatus(t *testing.T) {
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_, escape := root.Stat("../x")
	pe := func(e error) error { return &fs.PathError{Op: "open", Path: "x", Err: e} }
	cases := []struct {
		err  error
		code codes.Code
		want string
	}{
		{refuse(refuseInvalid, "bad"), codes.InvalidArgument, "bad"},
		{refuse(refuseOutside, "out"), codes.PermissionDenied, "out"},
		{refuse(refuseNotServed, "fifo"), codes.FailedPrecondition, "fifo"},
		{refuse(refuseState, "changed"), codes.FailedPrecondition, "changed"},
		{refuse(refuseNotFound, "no upload"), codes.NotFound, "no upload"},
		{refuse(refuseQuota, "quota"), codes.ResourceExhausted, "quota"},
		{refuse(refuseDataLoss, "hash"), codes.DataLoss, "hash"},
		{refuse(refuseAborted, "taken"), codes.Aborted, "taken"},
		{refuse(refuseRange, "offset"), codes.OutOfRange, "offset"},
		{refuse(refuseUnauthenticated, "nokey"), codes.Unauthenticated, "nokey"},
		{refuse(refuseUnavailable, "down"), codes.Unavailable, "down"},
		{fmt.Errorf("wrapped: %w", refuse(refuseQuota, "deep")), codes.ResourceExhausted, "deep"},
		{escape, codes.PermissionDenied, "p/q leads outside this key's root"},
		{pe(fs.ErrNotExist), codes.NotFound, "p/q does not exist"},
		{pe(syscall.ENOENT), codes.NotFound, "does not exist"},
		{pe(syscall.EEXIST), codes.AlreadyExists, "already exists"},
		{pe(syscall.ENOTEMPTY), codes.FailedPrecondition, "not empty: remove it recursively"},
		{pe(syscall.EACCES), codes.PermissionDenied, "permission denied"},
		{pe(syscall.EPERM), codes.PermissionDenied, "permission denied"},
		{pe(syscall.ENOTDIR), codes.FailedPrecondition, "not a directory"},
		{pe(syscall.EISDIR), codes.FailedPrecondition, "is a directory"},
		{pe(syscall.ELOOP), codes.FailedPrecondition, "symlinks"},
		{pe(syscall.ENAMETOOLONG), codes.InvalidArgument, "too long"},
		{pe(syscall.ENOSPC), codes.ResourceExhausted, "no space"},
		{pe(syscall.EDQUOT), codes.ResourceExhausted, "no space"},
		{pe(syscall.EROFS), codes.FailedPrecondition, "read-only"},
		{pe(syscall.EXDEV), codes.FailedPrecondition, "across filesystems"},
		{pe(syscall.EINVAL), codes.InvalidArgument, "invalid"},
		{pe(syscall.EBUSY), codes.FailedPrecondition, "busy"},
		{context.Canceled, codes.Canceled, "cancelled"},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "deadline"},
		{pe(syscall.EIO), codes.Internal, "p/q: open x: input/output error"},
		{status.Error(codes.Unavailable, "as is"), codes.Unavailable, "as is"},
	}
	for _, c := range cases {
		st := status.Convert(toStatus("p/q", c.err))
		if st.Code() != c.code || !strings.Contains(st.Message(), c.want) {
			t.Errorf("%v: got %v %q, want %v with %q", c.err, st.Code(), st.Message(), c.code, c.want)
		}
	}
	if toStatus("p", nil) != nil {
		t.Error("nil is OK")
	}
	for k := refuseInvalid; k <= refuseUnavailable; k++ {
		if _, ok := refusalCodes[k]; !ok {
			t.Errorf("refusal kind %d has no code", k)
		}
	}
}
