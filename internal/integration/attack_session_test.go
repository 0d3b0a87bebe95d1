package integration

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
)

// TestSessionScope: Session needs the session scope. A valid token of a
// key without it (even one with exec) is PermissionDenied and the command
// never starts; a token minted for Run does not open a Session.
func TestSessionScope(t *testing.T) {
	e := startMTLS(t)
	execOnly, _ := interceptors.GenerateKey("exec-only", interceptors.ScopeExec)
	e.srv.Ring.Replace([]*interceptors.Key{e.srv.Key, e.echoOnly, execOnly})
	const sessionMethod = "/rexec.v1.ExecService/Session"
	dir := t.TempDir()
	for _, r := range []struct {
		name string
		auth string
		want codes.Code
	}{
		{"control: all scopes", interceptors.Mint(e.srv.Key, sessionMethod, e.srv.Addr, time.Now()), codes.OK},
		{"echo-only key", interceptors.Mint(e.echoOnly, sessionMethod, e.srv.Addr, time.Now()), codes.PermissionDenied},
		{"exec-only key", interceptors.Mint(execOnly, sessionMethod, e.srv.Addr, time.Now()), codes.PermissionDenied},
		{"token minted for Run", interceptors.Mint(e.srv.Key, runMethod, e.srv.Addr, time.Now()), codes.Unauthenticated},
	} {
		t.Run(r.name, func(t *testing.T) {
			marker := filepath.Join(dir, r.name)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ctx = metadata.AppendToOutgoingContext(ctx, interceptors.MetadataKey, r.auth)
			st, err := rexecv1.NewExecServiceClient(e.dial(t, mtlsGood)).Session(ctx)
			if err != nil {
				t.Fatal(err)
			}
			err = st.Send(&rexecv1.SessionRequest{Msg: &rexecv1.SessionRequest_Start{Start: &rexecv1.SessionStart{
				Command: &rexecv1.RunRequest{Shell: "touch '" + marker + "'"}}}})
			if err == nil {
				err = st.CloseSend()
			}
			if errors.Is(err, io.EOF) {
				err = nil // the server ended the stream: Recv says how
			}
			for i := 0; err == nil && i < 10_000; i++ {
				var m *rexecv1.SessionResponse
				if m, err = st.Recv(); err == nil && m.GetEvent().GetExited() != nil {
					break
				}
			}
			if r.want == codes.OK {
				if err != nil {
					t.Fatalf("control: %v", err)
				}
			} else if got := status.Code(err); got != r.want {
				t.Fatalf("code %s, want %s", got, r.want)
			}
			_, statErr := os.Stat(marker)
			if ran := statErr == nil || commandStarted(e.srv.Log.String(), marker); ran != (r.want == codes.OK) {
				t.Fatalf("command ran: %v, want %v", ran, r.want == codes.OK)
			}
		})
	}
}
