// Package testenv starts real rexec servers on loopback for tests and
// benchmarks: a real runner, real auth, a real listener; nothing mocked.
package testenv

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rexec/rexec/client"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/runner"
	"github.com/rexec/rexec/server"
)

// Server is a running test server.
type Server struct {
	Addr    string
	Key     *interceptors.Key // all scopes
	KeyFile string            // holds Key and the extra keys, mode 0600
	Ring    *interceptors.KeyRing
	Runner  *runner.Runner
	Server  *server.Server
	Log     *SyncBuffer // the server's log, audit lines included
	// RawAddr is the raw socket listener's address, when Options.Raw.
	RawAddr string
}

// Options tune StartServer.
type Options struct {
	Runner    runner.Options
	Server    server.Config // Verifier, Runner and Logger are filled in
	ExtraKeys []*interceptors.Key
	Verifier  interceptors.VerifierOptions
	// Raw also serves the raw socket transport, on its own port, with the
	// same runner and keys.
	Raw bool
}

// StartServer starts a server on 127.0.0.1:0 and stops it at test cleanup.
func StartServer(t testing.TB, o Options) *Server {
	t.Helper()
	key, err := interceptors.GenerateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	keys := append([]*interceptors.Key{key}, o.ExtraKeys...)
	keyFile := filepath.Join(t.TempDir(), "keys")
	var text bytes.Buffer
	for _, k := range keys {
		text.WriteString(k.Line() + "\n")
	}
	if err := os.WriteFile(keyFile, text.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	logBuf := &SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if o.Runner.KillGrace == 0 {
		o.Runner.KillGrace = 500 * time.Millisecond
	}
	if o.Runner.DrainGrace == 0 {
		o.Runner.DrainGrace = 500 * time.Millisecond
	}
	o.Runner.Audit = log.With("log", "audit")
	o.Runner.Logger = log
	ring := interceptors.NewKeyRing(keys)
	cfg := o.Server
	cfg.Runner = runner.New(o.Runner)
	// First registered, so run last: after both transports have stopped.
	t.Cleanup(func() {
		if err := cfg.Runner.Close(); err != nil {
			t.Errorf("runner: %v", err)
		}
	})
	cfg.Verifier = interceptors.NewVerifier(ring, o.Verifier)
	cfg.Logger = log
	srv := server.New(cfg)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	var rawAddr string
	if o.Raw {
		rawAddr = startRaw(t, ring, cfg.Runner, log)
	}
	t.Cleanup(func() {
		srv.Stop()
		<-done
		if t.Failed() {
			t.Logf("server log:\n%s", logBuf.String())
		}
	})
	return &Server{Addr: lis.Addr().String(), Key: key, KeyFile: keyFile, Ring: ring, Runner: cfg.Runner, Server: srv, Log: logBuf, RawAddr: rawAddr}
}

// Client returns a client signing with key (the server's Key when nil),
// closed at test cleanup.
func (s *Server) Client(t testing.TB, key *interceptors.Key, opts ...client.Option) *client.Client {
	t.Helper()
	if key == nil {
		key = s.Key
	}
	c, err := client.New(s.Addr, append([]client.Option{client.WithKey(key)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var _ io.Writer = (*SyncBuffer)(nil)

// RepoRoot is the module's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Tool finds a pinned tool (grpcurl, buf) in the repo's .bin/, where
// scripts/tools.sh builds them, or on PATH. In CI a missing tool fails the
// test; elsewhere it skips, saying how to get it.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(RepoRoot(), ".bin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found: scripts/tools.sh builds it into .bin/", name)
	}
	t.Skipf("%s not found: run scripts/tools.sh", name)
	return ""
}
