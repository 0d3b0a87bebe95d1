package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rexec/rexec/journal"
	"github.com/rexec/rexec/runner"
)

func TestToStatus(t *testing.T) {
	cases := []struct {
		err  error
		code codes.Code
	}{
		{nil, codes.OK},
		{&runner.FieldError{Field: "env", Problem: "x"}, codes.InvalidArgument},
		{fmt.Errorf("wrapped: %w", &runner.FieldError{Field: "dir", Precondition: true}), codes.FailedPrecondition},
		{fmt.Errorf("%w: 64 of 64", runner.ErrTooManyCommands), codes.ResourceExhausted},
		{fmt.Errorf("%w: key \"ci\" runs 2 of its max=2", runner.ErrTooManyForOwner), codes.ResourceExhausted},
		{&runner.FieldError{Field: "limits.memory_bytes", Problem: "no cgroups", Precondition: true}, codes.FailedPrecondition},
		{runner.ErrShutdown, codes.Unavailable},
		{context.Canceled, codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{io.EOF, codes.Canceled},
		{status.Error(codes.Unavailable, "transport closing"), codes.Unavailable},
		{errors.New("fork: resource temporarily unavailable"), codes.Internal},
		{fmt.Errorf("%w: %q", journal.ErrNotFound, "ab"), codes.NotFound},
		{journal.ErrGone, codes.NotFound},
		{journal.ErrNotAttachable, codes.FailedPrecondition},
		{journal.ErrTakenOver, codes.Aborted},
		{errNoJournal, codes.FailedPrecondition},
	}
	for _, c := range cases {
		if got := status.Code(toStatus(c.err)); got != c.code {
			t.Errorf("toStatus(%v) = %v, want %v", c.err, got, c.code)
		}
	}
}
