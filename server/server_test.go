package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/runner"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The end-to-end cases of Run (streams, exit codes, signals, argv, stdin,
// env, dir, 127) are one table for both transports: TestTransportsEndToEnd in
// internal/integration.

func TestEventOrder(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	st, err := c.Exec().Run(context.Background(), &rexecv1.RunRequest{Shell: "echo a; echo b >&2; echo c"})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("stream ended with %v, want OK after Exited", err)
		}
		switch k := m.GetEvent().GetKind().(type) {
		case *rexecv1.Event_Started:
			if k.Started.GetPid() <= 0 || k.Started.GetExecutionId() == "" {
				t.Errorf("started %v", k.Started)
			}
			kinds = append(kinds, "started")
		case *rexecv1.Event_Stdout:
			kinds = append(kinds, "out")
		case *rexecv1.Event_Stderr:
			kinds = append(kinds, "err")
		case *rexecv1.Event_Exited:
			kinds = append(kinds, "exited")
		}
	}
	if got := strings.Join(kinds, ","); !strings.HasPrefix(got, "started,") || !strings.HasSuffix(got, ",exited") || strings.Count(got, "exited") != 1 {
		t.Errorf("events %s: want started first, exactly one exited last", got)
	}
}

func TestLargeOutputSHA256(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	data := make([]byte, 64<<20)
	rand.Read(data)
	path := t.TempDir() + "/big"
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	ex, err := c.Run(context.Background(), &rexecv1.RunRequest{Argv: []string{"cat", path}}, h, io.Discard)
	if err != nil || ex.GetExitCode() != 0 {
		t.Fatalf("%v %v", ex, err)
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Error("64 MiB over gRPC: sha256 differs")
	}
}

func TestLiveOutput(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	// The command prints a line, then waits (at most 10 s) for the test to
	// answer it by creating a file: lockstep, not timing.
	flag := t.TempDir() + "/answered"
	st, err := c.Exec().Run(context.Background(), &rexecv1.RunRequest{Shell: "echo first; i=0; while [ ! -e " + flag +
		" ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done; if [ -e " + flag + " ]; then echo answered; else echo 'no answer'; fi"})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for {
		m, err := st.Recv()
		if err != nil {
			break
		}
		if d := m.GetEvent().GetStdout().GetData(); string(d) == "first\n" {
			if err := os.WriteFile(flag, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		out.Write(m.GetEvent().GetStdout().GetData())
	}
	if out.String() != "first\nanswered\n" {
		t.Errorf("output %q: the first line was not streamed while the command ran", out.String())
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{Runner: runner.Options{MaxTimeout: time.Hour}})
	c := srv.Client(t, nil)
	cases := []struct {
		name  string
		req   *rexecv1.RunRequest
		code  codes.Code
		field string
	}{
		{"empty", &rexecv1.RunRequest{}, codes.InvalidArgument, "command"},
		{"both", &rexecv1.RunRequest{Shell: "true", Argv: []string{"true"}}, codes.InvalidArgument, "command"},
		{"no dir", &rexecv1.RunRequest{Shell: "true", Dir: "/no/such"}, codes.FailedPrecondition, "dir"},
		{"env", &rexecv1.RunRequest{Shell: "true", Env: []string{"NOEQUALS"}}, codes.InvalidArgument, "env"},
		{"negative timeout", &rexecv1.RunRequest{Shell: "true", Timeout: durationpb.New(-time.Second)}, codes.InvalidArgument, "timeout"},
		{"huge timeout", &rexecv1.RunRequest{Shell: "true", Timeout: durationpb.New(2 * time.Hour)}, codes.InvalidArgument, "timeout"},
		{"invalid duration", &rexecv1.RunRequest{Shell: "true", Timeout: &durationpb.Duration{Seconds: 1, Nanos: -5}}, codes.InvalidArgument, "timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Run(context.Background(), tc.req, io.Discard, io.Discard)
			st := status.Convert(err)
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.field) {
				t.Errorf("got %v %q, want %v naming %q", st.Code(), st.Message(), tc.code, tc.field)
			}
		})
	}
	if strings.Contains(srv.Log.String(), "command started") {
		t.Error("a bad request started a command")
	}
	ex, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard)
	if err != nil || ex.GetExitCode() != 0 {
		t.Errorf("server did not serve a good call after bad ones: %v", err)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	echoOnly, _ := interceptors.GenerateKey("echo-only", interceptors.ScopeEcho)
	srv := testenv.StartServer(t, testenv.Options{ExtraKeys: []*interceptors.Key{echoOnly}})
	stranger, _ := interceptors.GenerateKey("test") // the server's id, another secret
	marker := t.TempDir() + "/ran"
	req := &rexecv1.RunRequest{Argv: []string{"touch", marker}}

	noKey, err := client.New(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer noKey.Close()
	cases := []struct {
		name string
		c    *client.Client
		code codes.Code
	}{
		{"no token", noKey, codes.Unauthenticated},
		{"wrong secret", srv.Client(t, stranger), codes.Unauthenticated},
		{"no scope", srv.Client(t, echoOnly), codes.PermissionDenied},
	}
	for _, tc := range cases {
		_, err := tc.c.Run(context.Background(), req, io.Discard, io.Discard)
		if status.Code(err) != tc.code {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.code)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("%s: the command ran", tc.name)
		}
	}
	// Every refusal looks the same to the client; the server log says why.
	_, e1 := noKey.Run(context.Background(), req, io.Discard, io.Discard)
	_, e2 := srv.Client(t, stranger).Run(context.Background(), req, io.Discard, io.Discard)
	if status.Convert(e1).Message() != status.Convert(e2).Message() {
		t.Errorf("auth failures differ: %q vs %q", status.Convert(e1).Message(), status.Convert(e2).Message())
	}
	for _, reason := range []string{"no authorization metadata", "bad signature", "lacks scope"} {
		if !strings.Contains(srv.Log.String(), reason) {
			t.Errorf("server log does not say %q", reason)
		}
	}
	if strings.Contains(srv.Log.String(), "sig=") {
		t.Error("server log holds a signature")
	}
	// A token replayed verbatim on another connection is refused; the
	// connection that spent it may present it again (interceptors/spent.go).
	tok := interceptors.Mint(srv.Key, "/rexec.v1.EchoService/Echo", srv.Addr, time.Now())
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", tok)
	if _, err := noKey.Echo(ctx, "x", false); err != nil {
		t.Fatalf("first use of a token: %v", err)
	}
	if _, err := noKey.Echo(ctx, "x", false); err != nil {
		t.Errorf("the token again on the connection that spent it: %v", err)
	}
	noKey2, err := client.New(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer noKey2.Close()
	if _, err := noKey2.Echo(ctx, "x", false); status.Code(err) != codes.Unauthenticated {
		t.Errorf("replayed token on another connection: %v, want Unauthenticated", err)
	}
	if !strings.Contains(srv.Log.String(), "nonce replayed") {
		t.Error("server log does not say the token on another connection was replayed")
	}
	// The right key works, and echo-only may echo.
	if out, err := srv.Client(t, echoOnly).Echo(context.Background(), "hi", true); err != nil || out != "HI" {
		t.Errorf("echo with echo scope: %q %v", out, err)
	}
	if _, err := srv.Client(t, nil).Run(context.Background(), req, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Error("the authorized command did not run")
	}
}

func TestHealthAndReflectionOpen(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c, err := client.New(srv.Addr) // no key
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := healthpb.NewHealthClient(c.Conn()).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "rexec.v1.ExecService"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: %v %v", resp, err)
	}
}

func TestEcho(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	if out, err := c.Echo(context.Background(), "hello", false); err != nil || out != "hello" {
		t.Errorf("echo: %q %v", out, err)
	}
	st, err := c.EchoStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "bc", "déf"} {
		if err := st.Send(&rexecv1.EchoStreamRequest{Message: m, Upper: true}); err != nil {
			t.Fatal(err)
		}
		r, err := st.Recv()
		if err != nil || r.GetMessage() != strings.ToUpper(m) {
			t.Errorf("stream echo of %q: %q %v", m, r.GetMessage(), err)
		}
	}
	st.CloseSend()
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("after CloseSend: %v, want EOF", err)
	}
}
