package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/server"
)

// TestAuthAdminClosesHealthAndReflection: with AuthAdmin (rexecd
// --auth-admin), health and reflection need a token with the admin scope.
func TestAuthAdminClosesHealthAndReflection(t *testing.T) {
	admin, _ := interceptors.GenerateKey("admin", interceptors.ScopeAdmin)
	execOnly, _ := interceptors.GenerateKey("exec-only", interceptors.ScopeExec)
	srv := testenv.StartServer(t, testenv.Options{
		Server:    server.Config{AuthAdmin: true},
		ExtraKeys: []*interceptors.Key{admin, execOnly},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	bare, err := grpc.NewClient("passthrough:///"+srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	check := func(conn *grpc.ClientConn) codes.Code {
		_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return status.Code(err)
	}
	for _, c := range []struct {
		name string
		conn *grpc.ClientConn
		want codes.Code
	}{
		{"no token", bare, codes.Unauthenticated},
		{"key without admin", srv.Client(t, execOnly).Conn(), codes.PermissionDenied},
		{"admin key", srv.Client(t, admin).Conn(), codes.OK},
		{"key with all scopes", srv.Client(t, nil).Conn(), codes.OK},
	} {
		if got := check(c.conn); got != c.want {
			t.Errorf("health, %s: %s, want %s", c.name, got, c.want)
		}
	}

	grpcurl := testenv.Tool(t, "grpcurl")
	if _, stderr, err := run(t, grpcurl, "-plaintext", srv.Addr, "list"); err == nil || !strings.Contains(stderr, "Unauthenticated") {
		t.Errorf("grpcurl list without a token: %v %q, want Unauthenticated", err, stderr)
	}
	// Reflection is a stream; a token is minted for its method.
	tok := interceptors.Mint(admin, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", srv.Addr, time.Now())
	if out, stderr, err := run(t, grpcurl, "-plaintext", "-H", "authorization: "+tok, srv.Addr, "list"); err != nil || !strings.Contains(out, "rexec.v1.ExecService") {
		t.Errorf("grpcurl list with an admin token: %v %s %s", err, out, stderr)
	}
}
