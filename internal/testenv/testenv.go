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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rexec/rexec/client"
	"github.com/rexec/rexec/files"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/journal"
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
	Journal *journal.Journal // nil with Options.NoJournal
	Log     *SyncBuffer      // the server's log, audit lines included
	// RawAddr is the raw socket listener's address, when Options.Raw.
	RawAddr string
}

// Options tune StartServer.
type Options struct {
	Runner runner.Options
	// Server is the server's config; Verifier, Runner and Logger are filled
	// in, and Files (the file service) gets a state directory of the test's
	// and the server's logs when it is nil.
	Server    server.Config
	ExtraKeys []*interceptors.Key
	Verifier  interceptors.VerifierOptions
	// Raw also serves the raw socket transport, on its own port, with the
	// same runner and keys.
	Raw bool
	// Listen is the gRPC listener's address. By default 127.0.0.1:0.
	Listen string
	// Keys replaces the generated key: the server's Key is Keys[0] (so that
	// several servers can share one key).
	Keys []*interceptors.Key
	// Env (KEY=VALUE entries) is added to the environment of this server's
	// commands, so that in-process servers of one test can differ: the
	// runner passes them on (Options.EnvFromDaemon), reading them when it
	// is made, and StartServer sets them around that moment only.
	Env []string
	// Journal configures the server's journal (Dir defaults to a temporary
	// directory, ReconnectGrace to 5s); NoJournal serves without one, as
	// `rexecd --journal-max 0` does.
	Journal   journal.Options
	NoJournal bool
}

// envMu serializes StartServer's changes to the process environment.
var envMu sync.Mutex

// newRunner makes a runner whose commands see env on top of the process's
// environment.
func newRunner(o runner.Options, env []string) *runner.Runner {
	if len(env) == 0 {
		return runner.New(o)
	}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		o.EnvFromDaemon = append(o.EnvFromDaemon, k)
	}
	envMu.Lock()
	defer envMu.Unlock()
	type saved struct {
		k, v string
		ok   bool
	}
	var restore []saved
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		old, ok := os.LookupEnv(k)
		restore = append(restore, saved{k, old, ok})
		os.Setenv(k, v)
	}
	defer func() {
		for _, s := range restore {
			if s.ok {
				os.Setenv(s.k, s.v)
			} else {
				os.Unsetenv(s.k)
			}
		}
	}()
	return runner.New(o)
}

// StartServer starts a server on 127.0.0.1:0 and stops it at test cleanup.
func StartServer(t testing.TB, o Options) *Server {
	t.Helper()
	keys := o.Keys
	if len(keys) == 0 {
		key, err := interceptors.GenerateKey("test")
		if err != nil {
			t.Fatal(err)
		}
		keys = []*interceptors.Key{key}
	}
	key := keys[0]
	keys = append(keys[:len(keys):len(keys)], o.ExtraKeys...)
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
	if cfg.Files == nil {
		cfg.Files = &files.Config{StateDir: t.TempDir()}
	}
	if cfg.Files.Audit == nil {
		cfg.Files.Audit = o.Runner.Audit
	}
	if cfg.Files.Logger == nil {
		cfg.Files.Logger = log
	}
	cfg.Runner = newRunner(o.Runner, o.Env)
	// First registered, so run last: after both transports have stopped.
	t.Cleanup(func() {
		if err := cfg.Runner.Close(); err != nil {
			t.Errorf("runner: %v", err)
		}
	})
	cfg.Verifier = interceptors.NewVerifier(ring, o.Verifier)
	cfg.Logger = log
	if !o.NoJournal {
		jo := o.Journal
		if jo.Dir == "" {
			jo.Dir = filepath.Join(t.TempDir(), "journal")
		}
		if jo.ReconnectGrace == 0 {
			jo.ReconnectGrace = 5 * time.Second
		}
		jo.Logger = log
		j, err := journal.Open(jo)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Journal = j
	}
	srv := server.New(cfg)
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	lis, err := net.Listen("tcp", o.Listen)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	var rawAddr string
	if o.Raw {
		rawAddr = startRaw(t, ring, cfg.Runner, cfg.Journal, log)
	}
	t.Cleanup(func() {
		srv.Stop()
		<-done
		if j := cfg.Journal; j != nil {
			// Stop ended the calls and cancelled every command; wait for the
			// journal to record their ends.
			select {
			case <-j.Idle():
			case <-time.After(10 * time.Second):
				t.Errorf("journal: commands still running 10s after the server stopped")
			}
			j.Close()
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logBuf.String())
		}
	})
	return &Server{Addr: lis.Addr().String(), Key: key, KeyFile: keyFile, Ring: ring, Runner: cfg.Runner, Server: srv, Log: logBuf, RawAddr: rawAddr, Journal: cfg.Journal}
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
