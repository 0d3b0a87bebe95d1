package testenv

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/journal"
	"github.com/rexec/rexec/rawsock"
	"github.com/rexec/rexec/rawsock/rawserver"
	"github.com/rexec/rexec/runner"
)

// startRaw serves the raw transport on 127.0.0.1:0 until test cleanup.
func startRaw(t testing.TB, ring *interceptors.KeyRing, run *runner.Runner, j *journal.Journal, log *slog.Logger) string {
	t.Helper()
	srv := rawserver.New(rawserver.Config{Keys: ring, Runner: run, Journal: j, Logger: log})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return lis.Addr().String()
}

// RawClient returns a raw socket client authenticated with key (the
// server's Key when nil), closed at test cleanup. The server must have been
// started with Options.Raw.
func (s *Server) RawClient(t testing.TB, key *interceptors.Key) *rawsock.Client {
	t.Helper()
	if s.RawAddr == "" {
		t.Fatal("testenv: RawClient needs StartServer(t, Options{Raw: true})")
	}
	if key == nil {
		key = s.Key
	}
	c, err := rawsock.Dial(context.Background(), s.RawAddr, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
