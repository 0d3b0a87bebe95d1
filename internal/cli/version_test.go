package cli_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/cli"
)

// echoOnly is a server that has EchoService only, as an older rexecd lacks a
// newer one's methods.
type echoOnly struct {
	rexecv1.UnimplementedEchoServiceServer
}

func (echoOnly) Echo(_ context.Context, req *rexecv1.EchoRequest) (*rexecv1.EchoResponse, error) {
	return &rexecv1.EchoResponse{Message: req.GetMessage()}, nil
}

// startEchoOnly serves echoOnly on loopback, naming version in its headers
// unless version is "".
func startEchoOnly(t *testing.T, version string) string {
	t.Helper()
	var opts []grpc.ServerOption
	if version != "" {
		opts = interceptors.VersionServerOptions(version)
	}
	srv := grpc.NewServer(opts...)
	rexecv1.RegisterEchoServiceServer(srv, echoOnly{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return lis.Addr().String()
}

// TestVersionMismatch: a call the server does not know fails with one line
// that names this rexec's version and the server's, which the server sends
// in its rexec-version header; rexec version shows it.
func TestVersionMismatch(t *testing.T) {
	key, err := interceptors.GenerateKey("k")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keyFile, []byte(key.Line()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rexec := func(addr string, args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		env := cli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
		code := cli.Rexec(append([]string{"--addr", addr, "--key-file", keyFile}, args...), env)
		return code, stdout.String(), stderr.String()
	}

	old := startEchoOnly(t, "v0.0.1-old")
	for _, args := range [][]string{{"run", "-n", "--", "true"}, {"run", "--", "true"}, {"run", "-t", "--", "true"}} {
		code, _, errOut := rexec(old, args...)
		if code != cli.ExitFailure || strings.Count(errOut, "\n") != 1 ||
			!strings.Contains(errOut, "does not know this call (server said Unimplemented") ||
			!strings.Contains(errOut, "this rexec is (devel), the server's rexecd v0.0.1-old") {
			t.Errorf("rexec %v against an older server: %d %q, want 255 and one line naming both versions", args, code, errOut)
		}
	}
	if code, out, errOut := rexec(old, "version"); code != 0 || !strings.Contains(out, "rexecd v0.0.1-old at "+old+"\n") {
		t.Errorf("rexec version: %d %q %q", code, out, errOut)
	}

	// A server older than the header: rexec says it cannot tell.
	older := startEchoOnly(t, "")
	code, _, errOut := rexec(older, "run", "-n", "--", "true")
	if code != cli.ExitFailure || !strings.Contains(errOut, "the server's rexecd older than the rexec-version header") {
		t.Errorf("against a server with no version header: %d %q", code, errOut)
	}
	if code, out, _ := rexec(older, "version"); code != 0 || !strings.Contains(out, "rexecd (unknown: the server at "+older+" names no version") {
		t.Errorf("rexec version against a server with no version header: %d %q", code, out)
	}
}
