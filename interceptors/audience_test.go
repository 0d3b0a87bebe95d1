package interceptors

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestAuthority: a v2 token is accepted only with an :authority that names
// the server the call came to — its address and port, localhost over
// loopback, its host name, or a --name — and refused, after its signature
// checked, for any other (the token another server received).
func TestAuthority(t *testing.T) {
	ops := vectorKey(t)
	tcp := func(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }
	lo := tcp("127.0.0.1", 50051)
	pub := tcp("10.1.2.3", 50051)
	v6 := tcp("2001:db8::7", 50051)
	mapped := tcp("::ffff:10.1.2.3", 50051) // a dual-stack listener's IPv4 peer
	cases := []struct {
		name      string
		authority string
		local     net.Addr
		names     []string
		want      string // "" accepted, else a reason fragment
	}{
		{"its loopback address", "127.0.0.1:50051", lo, nil, ""},
		{"localhost over loopback", "localhost:50051", lo, nil, ""},
		{"localhost, any case", "LocalHost:50051", lo, nil, ""},
		{"its address", "10.1.2.3:50051", pub, nil, ""},
		{"its address, IPv4 on a dual-stack socket", "10.1.2.3:50051", mapped, nil, ""},
		{"its IPv6 address", "[2001:db8::7]:50051", v6, nil, ""},
		{"its host name", "node7:50051", pub, nil, ""},
		{"its host name, any case, trailing dot", "NODE7.:50051", pub, nil, ""},
		{"another server's address", "10.1.2.4:50051", pub, nil, "not the address 10.1.2.3"},
		{"loopback address sent over the network", "127.0.0.1:50051", pub, nil, "not the address 10.1.2.3"},
		{"localhost sent over the network", "localhost:50051", pub, nil, "names localhost"},
		{"another port", "10.1.2.3:50052", pub, nil, "port 50051"},
		{"no port", "10.1.2.3", pub, nil, "port 50051"},
		{"another host name", "node8:50051", pub, nil, "host name \"node7\""},
		{"empty", "", pub, nil, "no :authority"},
		{"a --name, any port", "rexec.example.org:443", pub, []string{"rexec.example.org"}, ""},
		{"a --name with its port", "lb.example.org:443", pub, []string{"lb.example.org:443"}, ""},
		{"a --name with another port", "lb.example.org:444", pub, []string{"lb.example.org:443"}, "port 50051"},
		{"a --name IP", "192.0.2.9:60000", pub, []string{"192.0.2.9"}, ""},
		{"no TCP local address, no name", "10.1.2.3:50051", nil, nil, "not TCP"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := NewVerifier(NewKeyRing([]*Key{ops}), VerifierOptions{Names: c.names, Hostname: "node7"})
			tok := Mint(ops, vectorMethod, c.authority, time.Now())
			_, err := v.Verify(tok, Call{Method: vectorMethod, Authority: c.authority, Local: c.local})
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			ae, ok := err.(*AuthError)
			if !ok || ae.Denied || ae.Kind != AuthWrongServer || !strings.Contains(ae.Reason, c.want) || !strings.Contains(ae.Reason, "token for another server") {
				t.Fatalf("got %v, want unauthenticated saying %q", err, c.want)
			}
		})
	}
}

// TestAuthoritySigned: the authority is signed, so a server cannot pass a
// token on with its peer's authority in the header: the signature fails.
func TestAuthoritySigned(t *testing.T) {
	ops := vectorKey(t)
	v := NewVerifier(NewKeyRing([]*Key{ops}), VerifierOptions{})
	tok := Mint(ops, vectorMethod, "10.1.2.4:50051", time.Now())
	_, err := v.Verify(tok, Call{Method: vectorMethod, Authority: "10.1.2.3:50051", Local: &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 50051}})
	if ae, ok := err.(*AuthError); !ok || !strings.Contains(ae.Reason, "bad signature") {
		t.Fatalf("got %v, want a bad signature", err)
	}
}

// TestTokenV1Refused: a v1 token, well formed and signed with a known key,
// is refused, and the reason the log gets says the client is too old.
func TestTokenV1Refused(t *testing.T) {
	v := NewVerifier(NewKeyRing([]*Key{vectorKey(t)}), VerifierOptions{Now: func() time.Time { return time.Unix(vectorTS, 0) }})
	_, err := v.Verify(vectorTokenV1, call(vectorMethod))
	ae, ok := err.(*AuthError)
	if !ok || ae.Denied || ae.Kind != AuthTokenVersion || ae.Reason != "token v1: client older than server" {
		t.Fatalf("got %v, want unauthenticated with the reason %q", err, "token v1: client older than server")
	}
}

func TestCheckName(t *testing.T) {
	for _, good := range []string{"lb.example.org", "lb.example.org:443", "10.0.0.1", "[::1]:50051", "::1"} {
		if err := CheckName(good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
	for _, bad := range []string{"", "lb:0", "lb:x", "lb:70000", "a b", "a/b"} {
		if err := CheckName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
