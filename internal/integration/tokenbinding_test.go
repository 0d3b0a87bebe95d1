package integration

import (
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
)

// TestTokenBoundToServer: three real servers share one key — two on
// 127.0.0.1 (other ports), one on 127.0.0.2. A token minted for one server
// is refused by the others, whether it is passed on with the :authority it
// was minted for (the signature holds; the server sees that the authority
// is not its own) or with the other server's (the signature fails); the
// command never starts. A token minted for a server is accepted by it.
func TestTokenBoundToServer(t *testing.T) {
	key, err := interceptors.GenerateKey("fleet")
	if err != nil {
		t.Fatal(err)
	}
	a := testenv.StartServer(t, testenv.Options{Keys: []*interceptors.Key{key}})
	b := testenv.StartServer(t, testenv.Options{Keys: []*interceptors.Key{key}})
	c := testenv.StartServer(t, testenv.Options{Keys: []*interceptors.Key{key}, Listen: "127.0.0.2:0"})
	_, aPort, _ := net.SplitHostPort(a.Addr)
	// dial connects to srv, sending authority as the :authority header, as
	// a server that took a token off one of its calls would.
	dial := func(srv *testenv.Server, authority string) *grpc.ClientConn {
		conn, err := grpc.NewClient("passthrough:///"+srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority(authority))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	rows := []struct {
		name      string
		to        *testenv.Server
		minted    string // the token's authority
		authority string // the :authority sent
		reason    string // "" for accepted
	}{
		{"control: a's token to a", a, a.Addr, a.Addr, ""},
		{"control: localhost", a, "localhost:" + aPort, "localhost:" + aPort, ""},
		{"a's token to b, as minted", b, a.Addr, a.Addr, "token for another server"},
		{"a's token to b, b's authority", b, a.Addr, b.Addr, "bad signature"},
		{"a's token to c (another address), as minted", c, a.Addr, a.Addr, "token for another server"},
		{"a's token to c, as if to c's port", c, "127.0.0.1:" + strings.Split(c.Addr, ":")[1], "127.0.0.1:" + strings.Split(c.Addr, ":")[1], "is not the address 127.0.0.2"},
		{"control: c's token to c", c, c.Addr, c.Addr, ""},
	}
	dir := t.TempDir()
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			marker := dir + "/" + strings.ReplaceAll(r.name, " ", "-")
			before := len(r.to.Log.String())
			st := run1(t, dial(r.to, r.authority), "touch '"+marker+"'", interceptors.Mint(key, runMethod, r.minted, time.Now()))
			log := r.to.Log.String()[before:]
			if r.reason == "" {
				if st.Code() != codes.OK || !commandStarted(log, marker) {
					t.Fatalf("refused: %v", st)
				}
				return
			}
			if st.Code() != codes.Unauthenticated || st.Message() != interceptors.UnauthenticatedMessage {
				t.Fatalf("got %v, want Unauthenticated with the fixed message", st)
			}
			if !strings.Contains(log, r.reason) {
				t.Errorf("server log does not say %q:\n%s", r.reason, log)
			}
			if commandStarted(log, marker) {
				t.Error("the command started")
			}
		})
	}
}

// TestRexecdName: rexecd --name NAME:PORT accepts tokens minted for that
// authority (a load balancer's), and without it refuses them.
func TestRexecdName(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		flags []string
		want  codes.Code
	}{
		{[]string{"--name", "rexec.lb.test:443"}, codes.OK},
		{nil, codes.Unauthenticated},
	} {
		addr, key, d := startRexecd(t, nil, c.flags...)
		log := d.log
		conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority("rexec.lb.test:443"))
		if err != nil {
			t.Fatal(err)
		}
		st := run1(t, conn, "true", interceptors.Mint(key, runMethod, "rexec.lb.test:443", time.Now()))
		conn.Close()
		if st.Code() != c.want {
			t.Errorf("rexecd %v: %v, want %s", c.flags, st, c.want)
		}
		if c.want != codes.OK && !strings.Contains(log.String(), "token for another server") {
			t.Errorf("rexecd %v: the log does not say why:\n%s", c.flags, log.String())
		}
	}
}
