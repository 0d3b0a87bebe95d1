package testenv

import (
	"context"
	"testing"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// StartRun starts req and returns the stream and the command's pid (the
// leader of its process group), read from the Started event.
func StartRun(t testing.TB, ctx context.Context, c rexecv1.ExecServiceClient, req *rexecv1.RunRequest) (rexecv1.ExecService_RunClient, int) {
	t.Helper()
	st, err := c.Run(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	pid := int(m.GetEvent().GetStarted().GetPid())
	if pid == 0 {
		t.Fatalf("first event %v, want Started", m)
	}
	return st, pid
}
