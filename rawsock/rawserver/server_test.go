package rawserver_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/rawsock"
	"github.com/rexec/rexec/rawsock/rawserver"
	"github.com/rexec/rexec/runner"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type rawServer struct {
	addr string
	key  *interceptors.Key
	ring *interceptors.KeyRing
	srv  *rawserver.Server
	log  *testenv.SyncBuffer
	done chan struct{}
}

// start serves a raw server with its own runner on 127.0.0.1:0.
func start(t *testing.T, cfg rawserver.Config, keys ...*interceptors.Key) *rawServer {
	t.Helper()
	key, err := interceptors.GenerateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	log := &testenv.SyncBuffer{}
	cfg.Keys = interceptors.NewKeyRing(append([]*interceptors.Key{key}, keys...))
	cfg.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Runner = runner.New(runner.Options{KillGrace: 300 * time.Millisecond, DrainGrace: 300 * time.Millisecond, Audit: cfg.Logger})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{addr: lis.Addr().String(), key: key, ring: cfg.Keys, srv: rawserver.New(cfg), log: log, done: make(chan struct{})}
	go func() { defer close(s.done); _ = s.srv.Serve(lis) }()
	t.Cleanup(func() {
		s.srv.Stop()
		<-s.done
		if t.Failed() {
			t.Logf("server log:\n%s", log.String())
		}
	})
	return s
}

func (s *rawServer) dial(t *testing.T) *rawsock.Client {
	t.Helper()
	c, err := rawsock.Dial(context.Background(), s.addr, s.key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// handshaken is a bare connection past the handshake, to send frames by hand.
func (s *rawServer) handshaken(t *testing.T) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	hello := make([]byte, 33)
	if _, err := io.ReadFull(nc, hello); err != nil {
		t.Fatal(err)
	}
	proof := rawsock.Proof(s.key.Secret, hello[1:], s.key.ID)
	nc.Write(append(append([]byte{byte(len(s.key.ID))}, s.key.ID...), proof[:]...))
	st := make([]byte, 1)
	if _, err := io.ReadFull(nc, st); err != nil || st[0] != rawsock.StatusOK {
		t.Fatalf("handshake: %v %v", st, err)
	}
	return nc
}

func TestSeveralCommandsOnOneConnection(t *testing.T) {
	s := start(t, rawserver.Config{})
	c := s.dial(t)
	for i, sh := range []string{"echo one", "exit 3", "echo three >&2"} {
		var out, errb bytes.Buffer
		ex, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: sh}, &out, &errb)
		if err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		if got := out.String() + errb.String(); i != 1 && !strings.HasSuffix(got, "\n") {
			t.Errorf("command %d: output %q", i, got)
		}
		if i == 1 && ex.GetExitCode() != 3 {
			t.Errorf("exit %d", ex.GetExitCode())
		}
		if msg, err := c.Echo(context.Background(), "between", true); err != nil || msg != "BETWEEN" {
			t.Errorf("echo between commands: %q %v", msg, err)
		}
	}
	// A refused command leaves the connection usable.
	if _, err := c.Run(context.Background(), &rexecv1.RunRequest{}, io.Discard, io.Discard); err == nil {
		t.Error("an empty command ran")
	}
	if _, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard); err != nil {
		t.Errorf("after a refused command: %v", err)
	}
}

// readError reads frames until an error frame and returns its code.
func readError(t *testing.T, nc net.Conn) rawsock.Code {
	t.Helper()
	rd := rawsock.NewReader(nc, 0)
	for range 100 {
		f, err := rd.Next()
		if err != nil {
			t.Fatalf("no error frame: %v", err)
		}
		if f.Type == rawsock.TypeError {
			return rawsock.Code(f.Payload[0])
		}
	}
	t.Fatal("no error frame in 100")
	return 0
}

func TestProtocolErrorsCloseTheConnectionNotTheServer(t *testing.T) {
	s := start(t, rawserver.Config{})
	cases := map[string][]byte{
		"oversize length":  {0x7f, 0xff, 0xff, 0xff, 0x01},
		"negative as 'i'":  {0xff, 0xff, 0xff, 0xff, 0x01},
		"zero length":      {0, 0, 0, 0},
		"unknown type":     {0, 0, 0, 1, 0x42},
		"server-only type": rawsock.AppendFrame(nil, rawsock.TypeExit, nil),
		"little-endian length, as struct.pack('i') sends": {0x14, 0, 0, 0, 0x01},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			nc := s.handshaken(t)
			nc.Write(b)
			if code := readError(t, nc); code != rawsock.CodeProtocol {
				t.Errorf("code %v, want ProtocolError", code)
			}
			if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				t.Errorf("after a protocol error: %v, want the server to close", err)
			}
		})
	}
	if msg, err := s.dial(t).Echo(context.Background(), "still up", false); err != nil || msg != "still up" {
		t.Errorf("server after bad peers: %q %v", msg, err)
	}
}

func TestHandshakeRefusals(t *testing.T) {
	s := start(t, rawserver.Config{HandshakeTimeout: 300 * time.Millisecond, MaxUnauthenticated: 2, MaxUnauthenticatedPerHost: 2})
	stranger, _ := interceptors.GenerateKey("test") // the server's id, another secret
	if _, err := rawsock.Dial(context.Background(), s.addr, stranger); !errors.Is(err, rawsock.ErrRefused) {
		t.Errorf("wrong secret: %v, want ErrRefused", err)
	}
	unknown, _ := interceptors.GenerateKey("nobody")
	if _, err := rawsock.Dial(context.Background(), s.addr, unknown); !errors.Is(err, rawsock.ErrRefused) {
		t.Errorf("unknown key: %v, want ErrRefused", err)
	}
	// Slowloris: two silent connections fill the unauthenticated cap; a
	// third evicts the oldest, which is closed at once; the others are
	// dropped at the deadline.
	var silent []net.Conn
	for range 3 {
		nc, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if _, err := io.ReadFull(nc, make([]byte, 33)); err != nil {
			t.Fatalf("silent connection %d got no challenge: %v", len(silent), err)
		}
		silent = append(silent, nc)
	}
	for i, nc := range silent {
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("silent connection %d: %v, want closed (evicted, or at the handshake deadline)", i, err)
		}
	}
	if !strings.Contains(s.log.String(), "evicted by a newer connection") || !strings.Contains(s.log.String(), "bad proof") {
		t.Errorf("server log does not say why:\n%s", s.log.String())
	}
	if _, err := s.dial(t).Echo(context.Background(), "x", false); err != nil {
		t.Errorf("after the silent ones left: %v", err)
	}
}

func TestScopes(t *testing.T) {
	echoOnly, _ := interceptors.GenerateKey("echo-only", interceptors.ScopeEcho)
	s := start(t, rawserver.Config{}, echoOnly)
	c, err := rawsock.Dial(context.Background(), s.addr, echoOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Run(context.Background(), &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard)
	var re *rawsock.Error
	if !errors.As(err, &re) || re.Code != rawsock.CodePermissionDenied {
		t.Errorf("run with an echo-only key: %v, want PermissionDenied", err)
	}
	if msg, err := c.Echo(context.Background(), "ok", false); err != nil || msg != "ok" {
		t.Errorf("echo with an echo-only key: %q %v", msg, err)
	}
}

// frames sends frames by hand and collects the answer up to exit.
func runByHand(t *testing.T, nc net.Conn, send func()) (stdout string, exit []byte) {
	t.Helper()
	send()
	rd := rawsock.NewReader(nc, 0)
	for range 1000 {
		f, err := rd.Next()
		if err != nil {
			t.Fatalf("after %q: %v", stdout, err)
		}
		switch f.Type {
		case rawsock.TypeStdout:
			stdout += string(f.Payload[8:])
			if strings.HasSuffix(stdout, "ready\n") {
				nc.Write(rawsock.AppendFrame(nil, rawsock.TypeSignal, []byte("INT")))
			}
		case rawsock.TypeExit:
			return stdout, append([]byte(nil), f.Payload...)
		case rawsock.TypeError:
			t.Fatalf("error frame: %s", f.Payload[1:])
		}
	}
	t.Fatal("no exit in 1000 frames")
	return "", nil
}

func TestStdinAndSignalFrames(t *testing.T) {
	s := start(t, rawserver.Config{})
	nc := s.handshaken(t)
	out, _ := runByHand(t, nc, func() {
		var b []byte
		b = rawsock.AppendFrame(b, rawsock.TypeCommand, []byte(`{"shell":"tr a-z A-Z","stdin":true}`))
		b = rawsock.AppendFrame(b, rawsock.TypeStdin, []byte("one "))
		b = rawsock.AppendFrame(b, rawsock.TypeStdin, []byte("two"))
		b = rawsock.AppendFrame(b, rawsock.TypeStdinClose, nil)
		nc.Write(b)
	})
	if out != "ONE TWO" {
		t.Errorf("stdin frames: %q", out)
	}
	out, exit := runByHand(t, nc, func() {
		nc.Write(rawsock.AppendFrame(nil, rawsock.TypeCommand,
			[]byte(`{"shell":"trap 'echo got INT; exit 3' INT; echo ready; while :; do sleep 0.05; done"}`)))
	})
	if out != "ready\ngot INT\n" || int32(binary.BigEndian.Uint32(exit)) != 3 {
		t.Errorf("signal frame: output %q, exit % x", out, exit[:4])
	}
}

func TestShutdownGivesGraceThenKills(t *testing.T) {
	s := start(t, rawserver.Config{})
	idle := s.dial(t)
	busy := s.dial(t)
	type result struct {
		ex  *rexecv1.Exited
		err error
	}
	got := make(chan result, 1)
	started := make(chan struct{})
	go func() {
		w := &firstWrite{ch: started}
		ex, err := busy.Run(context.Background(), &rexecv1.RunRequest{Shell: "echo go; sleep 30"}, w, io.Discard)
		got <- result{ex, err}
	}()
	<-started
	s.srv.Shutdown(200 * time.Millisecond)
	r := <-got
	if r.err != nil || r.ex.GetReason() != rexecv1.EndReason_END_REASON_SHUTDOWN {
		t.Errorf("running command at shutdown: %v %v, want an exit with reason shutdown", r.ex, r.err)
	}
	if _, err := idle.Echo(context.Background(), "x", false); err == nil {
		t.Error("an idle connection survived shutdown")
	}
	if _, err := rawsock.Dial(context.Background(), s.addr, s.key); err == nil {
		t.Error("a new connection was accepted after shutdown")
	}
}

type firstWrite struct {
	ch   chan struct{}
	done bool
}

func (w *firstWrite) Write(p []byte) (int, error) {
	if !w.done {
		w.done = true
		close(w.ch)
	}
	return len(p), nil
}
