package interceptors

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// syncClock is a clock a test moves while servers read it.
type syncClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *syncClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *syncClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

type echoSrv struct {
	rexecv1.UnimplementedEchoServiceServer
}

func (echoSrv) Echo(_ context.Context, r *rexecv1.EchoRequest) (*rexecv1.EchoResponse, error) {
	return &rexecv1.EchoResponse{Message: r.GetMessage()}, nil
}

func (echoSrv) EchoStream(s grpc.BidiStreamingServer[rexecv1.EchoStreamRequest, rexecv1.EchoStreamResponse]) error {
	for {
		if _, err := s.Recv(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// spentServer is a real gRPC server on loopback with the auth chain over v;
// its failures are the kinds of the calls auth refused, in order.
type spentServer struct {
	addr string
	v    *Verifier
	mu   sync.Mutex
	kind []string
}

func (s *spentServer) failures() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.kind...)
}

func startSpentServer(t *testing.T, v *Verifier, addr string) *spentServer {
	t.Helper()
	s := &spentServer{v: v}
	srv := grpc.NewServer(ServerOptions(ServerConfig{
		Verifier: v,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnAuthFailure: func(_ context.Context, _ string, err *AuthError) {
			s.mu.Lock()
			s.kind = append(s.kind, err.Kind)
			s.mu.Unlock()
		},
	})...)
	rexecv1.RegisterEchoServiceServer(srv, echoSrv{})
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.addr = lis.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return s
}

// rawConn is a connection that sends the authorization value it is given.
func rawConn(t *testing.T, addr string) rexecv1.EchoServiceClient {
	t.Helper()
	return rexecv1.NewEchoServiceClient(dialPlain(t, addr))
}

// dialPlain is a connection to addr that signs nothing by itself, closed
// at the test's end if not before.
func dialPlain(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// echoFresh makes n Echo calls on c, each with a fresh token, and fails
// the test unless each is OK.
func echoFresh(t *testing.T, c rexecv1.EchoServiceClient, key *Key, addr string, clk *syncClock, n int) {
	t.Helper()
	for i := range n {
		if code := echoWith(c, Mint(key, echoMethod, addr, clk.Now())); code != codes.OK {
			t.Fatalf("call %d: %v", i, code)
		}
	}
}

func echoWith(c rexecv1.EchoServiceClient, token string) codes.Code {
	ctx := metadata.AppendToOutgoingContext(context.Background(), MetadataKey, token)
	_, err := c.Echo(ctx, &rexecv1.EchoRequest{Message: "hi"})
	return status.Code(err)
}

const echoMethod = "/rexec.v1.EchoService/Echo"

// spentFixture is a key, a clock, a verifier of that key on the clock and
// a server on a free loopback port that uses it.
func spentFixture(t *testing.T) (*Key, *syncClock, *Verifier, *spentServer) {
	t.Helper()
	key, _ := GenerateKey("k")
	clk := &syncClock{now: time.Now()}
	v := newSpentVerifier(clk, key)
	return key, clk, v, startSpentServer(t, v, "127.0.0.1:0")
}

func newSpentVerifier(clk *syncClock, keys ...*Key) *Verifier {
	return NewVerifier(NewKeyRing(keys), VerifierOptions{Now: clk.Now, Skew: time.Minute, Hostname: "-"})
}

// waitSpent waits (bounded) until the verifier tracks conns connections.
func waitSpent(t *testing.T, v *Verifier, conns int) SpentStats {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := v.Spent()
		if st.Conns == conns || time.Now().After(deadline) {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSpentTokenOneConnection(t *testing.T) {
	key, clk, v, s := spentFixture(t)
	a, b := rawConn(t, s.addr), rawConn(t, s.addr)
	tok := Mint(key, echoMethod, s.addr, clk.Now())

	for i := range 3 {
		if c := echoWith(a, tok); c != codes.OK {
			t.Fatalf("call %d on the connection that spent the token: %v, want OK", i+1, c)
		}
	}
	if st := v.Spent(); st.Tokens != 1 || st.Conns != 1 {
		t.Fatalf("spent %+v, want 1 token on 1 connection", st)
	}
	if c := echoWith(b, tok); c != codes.Unauthenticated {
		t.Fatalf("the same token on another connection: %v, want Unauthenticated", c)
	}
	if f := s.failures(); len(f) != 1 || f[0] != AuthReplayed {
		t.Fatalf("failures %v, want [%s]", f, AuthReplayed)
	}
	// Another method with the cached token: its signature is for Echo.
	ctx := metadata.AppendToOutgoingContext(context.Background(), MetadataKey, tok)
	st, err := a.EchoStream(ctx)
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Echo's token for EchoStream on its connection: %v, want Unauthenticated", err)
	}
	if f := s.failures(); len(f) != 2 || f[1] != AuthBadSignature {
		t.Fatalf("failures %v, want a second %s", f, AuthBadSignature)
	}
	// Past the window the connection's token is refused like any other.
	clk.Add(61 * time.Second)
	if c := echoWith(a, tok); c != codes.Unauthenticated {
		t.Fatalf("the token after its ts left the window: %v, want Unauthenticated", c)
	}
	if f := s.failures(); len(f) != 3 || f[2] != AuthClockSkew {
		t.Fatalf("failures %v, want a third %s", f, AuthClockSkew)
	}
}

func TestSpentTokenKeyReload(t *testing.T) {
	key, clk, v, s := spentFixture(t)
	a := rawConn(t, s.addr)
	tok := Mint(key, echoMethod, s.addr, clk.Now())
	if c := echoWith(a, tok); c != codes.OK {
		t.Fatalf("first call: %v", c)
	}
	reparse := func(line string) *Key {
		t.Helper()
		ks, err := ParseKeys([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		return ks[0]
	}
	// A reload of the same line makes a new *Key: the token holds.
	v.Keys().Replace([]*Key{reparse(key.Line())})
	if c := echoWith(a, tok); c != codes.OK {
		t.Fatalf("after reloading the same key: %v, want OK", c)
	}
	// The key loses the echo scope: refused at once, as a fresh token is.
	v.Keys().Replace([]*Key{reparse(key.Line() + " exec")})
	if c := echoWith(a, tok); c != codes.PermissionDenied {
		t.Fatalf("after the key lost its scope: %v, want PermissionDenied", c)
	}
	// Same id, new secret.
	other, _ := GenerateKey("k")
	v.Keys().Replace([]*Key{other})
	if c := echoWith(a, tok); c != codes.Unauthenticated {
		t.Fatalf("after the key's secret changed: %v, want Unauthenticated", c)
	}
	// Removed.
	third, _ := GenerateKey("k3")
	v.Keys().Replace([]*Key{third})
	if c := echoWith(a, tok); c != codes.Unauthenticated {
		t.Fatalf("after the key was removed: %v, want Unauthenticated", c)
	}
	want := []string{AuthScope, AuthBadSignature, AuthUnknownKey}
	if f := s.failures(); len(f) != 3 || f[0] != want[0] || f[1] != want[1] || f[2] != want[2] {
		t.Fatalf("failures %v, want %v", f, want)
	}
	// Back to the original key: the token is still this connection's.
	v.Keys().Replace([]*Key{key})
	if c := echoWith(a, tok); c != codes.OK {
		t.Fatalf("with the key back: %v, want OK", c)
	}
}

func TestSpentTokensGoWithTheConnection(t *testing.T) {
	key, clk, v, s := spentFixture(t)
	cc := dialPlain(t, s.addr)
	c := rexecv1.NewEchoServiceClient(cc)
	echoFresh(t, c, key, s.addr, clk, 5)
	if st := v.Spent(); st.Tokens != 5 || st.Conns != 1 {
		t.Fatalf("spent %+v, want 5 tokens on 1 connection", st)
	}
	cc.Close()
	if st := waitSpent(t, v, 0); st.Tokens != 0 || st.Conns != 0 {
		t.Fatalf("after the connection closed: %+v, want nothing", st)
	}
}

func TestSpentTokensBoundedPerConnection(t *testing.T) {
	key, clk, v, s := spentFixture(t)
	c := rawConn(t, s.addr)
	echoFresh(t, c, key, s.addr, clk, maxSpentPerConn+10)
	if st := v.Spent(); st.Tokens != maxSpentPerConn || st.Evicted != 10 {
		t.Fatalf("spent %+v, want %d tokens and 10 evicted", st, maxSpentPerConn)
	}
}

// TestClientReusesTokenPerConnection runs rexec's client options against a
// server: many calls, 16 at once, one token per method on the connection;
// then the server restarts on the same port with the same verifier (its
// replay cache remembers the old connection's nonces), and the client's
// new connection must bring a new token.
func TestClientReusesTokenPerConnection(t *testing.T) {
	key, _ := GenerateKey("k")
	clk := &syncClock{now: time.Now()}
	v := newSpentVerifier(clk, key)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()

	var kinds atomic.Int64
	start := func() (stop func()) {
		srv := grpc.NewServer(ServerOptions(ServerConfig{
			Verifier:      v,
			Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
			OnAuthFailure: func(context.Context, string, *AuthError) { kinds.Add(1) },
		})...)
		rexecv1.RegisterEchoServiceServer(srv, echoSrv{})
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(l) }()
		return func() { srv.Stop(); <-done }
	}
	stop := start()
	cc, err := grpc.NewClient("passthrough:///"+addr, append(ClientOptions(key, addr), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := rexecv1.NewEchoServiceClient(cc)
	calls := func() {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					if _, err := c.Echo(context.Background(), &rexecv1.EchoRequest{Message: "hi"}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("echo: %v", err)
		}
	}
	calls()
	if st := v.Spent(); st.Tokens != 1 {
		t.Fatalf("spent %+v after 320 calls on one connection, want 1 token", st)
	}
	stop()
	stop = start()
	defer func() { stop() }()
	// A call may still go out on the old connection before the client
	// sees it end (Unavailable); the first one on the new connection must
	// pass.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, err := c.Echo(context.Background(), &rexecv1.EchoRequest{Message: "hi"}, grpc.WaitForReady(true))
		if err == nil {
			break
		}
		if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			t.Fatalf("first call on the new connection: %v", err)
		}
	}
	calls()
	if n := kinds.Load(); n != 0 {
		t.Fatalf("%d calls refused by auth", n)
	}
}

func TestTokenCredsReuse(t *testing.T) {
	key, _ := GenerateKey("k")
	clk := &syncClock{now: time.Now()}
	c := &tokenCreds{key: key, authority: "127.0.0.1:1", now: clk.Now}
	tok := func(ctx context.Context, method string) string { return c.token(ctx, method)[MetadataKey] }
	on := func(a net.Addr) context.Context {
		return peer.NewContext(context.Background(), &peer.Peer{LocalAddr: a})
	}
	conn1 := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	conn2 := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000} // equal, but another connection's
	t1 := tok(on(conn1), echoMethod)
	if got := tok(on(conn1), echoMethod); got != t1 {
		t.Fatal("second call on the same connection: a new token, want the same")
	}
	if got := tok(on(conn1), "/rexec.v1.EchoService/EchoStream"); got == t1 {
		t.Fatal("another method: the same token")
	}
	if got := tok(on(conn2), echoMethod); got == t1 {
		t.Fatal("another connection with an equal address: the same token")
	}
	t2 := tok(on(conn2), echoMethod)
	clk.Add(TokenReuse - time.Millisecond)
	if got := tok(on(conn2), echoMethod); got != t2 {
		t.Fatal("just under TokenReuse: a new token")
	}
	clk.Add(time.Millisecond)
	if got := tok(on(conn2), echoMethod); got == t2 {
		t.Fatal("at TokenReuse: the same token")
	}
	if tok(context.Background(), echoMethod) == tok(context.Background(), echoMethod) {
		t.Fatal("no connection known: the same token twice")
	}
}
