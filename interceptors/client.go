package interceptors

import (
	"context"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// TokenReuse is how long the client presents one token again for the same
// method on the same connection: a fresh token (new nonce, current time)
// after it. A server accepts a token while its ts is within --skew of its
// clock, so a client keeps working with a clock up to --skew − TokenReuse
// off the server's (50s with the default 60s), and --skew must be above
// TokenReuse. It is short because nothing is gained past the first reuse:
// HPACK indexes the header after one call.
const TokenReuse = 10 * time.Second

// ClientOptions returns dial options that sign every call with key, for
// authority, which they also make the connection's :authority, so that
// what is signed is what is sent. Each call carries a token minted for its
// full method name; the server lets the connection that spent a token
// present it again (spent.go), so the client keeps one token per method
// and connection for TokenReuse: an unchanging header, which HPACK sends
// as an index, and which the server checks by a lookup instead of an HMAC.
func ClientOptions(key *Key, authority string) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithAuthority(authority),
		grpc.WithPerRPCCredentials(&tokenCreds{key: key, authority: authority, now: time.Now}),
	}
}

// tokenCreds signs calls: gRPC asks it for each call's metadata on the
// transport (the connection) the call goes out on, which an interceptor
// cannot know (a call made while a connection breaks goes out on the next
// one). The connection is known by its local address, the same net.Addr
// value for the connection's life, which the cache holds, so no later
// connection can have it: a token spent on one connection is never sent on
// another, which the server would refuse as a replay.
type tokenCreds struct {
	key       *Key
	authority string
	now       func() time.Time

	mu     sync.Mutex
	conn   net.Addr          // the connection the tokens are for
	tokens map[string]minted // by full method
}

// minted is a token as metadata: gRPC only reads the map, so one map
// serves every call that sends the token.
type minted struct {
	md map[string]string
	at time.Time
}

// GetRequestMetadata returns the call's authorization metadata.
func (c *tokenCreds) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	ri, _ := credentials.RequestInfoFromContext(ctx)
	return c.token(ctx, ri.Method), nil
}

// RequireTransportSecurity is false: rexec runs plaintext on loopback.
func (c *tokenCreds) RequireTransportSecurity() bool { return false }

// token returns the metadata of a token for method on the call's
// connection: the one it sent last, while younger than TokenReuse, or a
// fresh one.
func (c *tokenCreds) token(ctx context.Context, method string) map[string]string {
	conn := connOf(ctx)
	if conn == nil { // no connection known: a fresh token every call
		return map[string]string{MetadataKey: Mint(c.key, method, c.authority, c.now())}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// The time under the lock: read before it, a call that waited for
	// the lock would find the token minted meanwhile younger than its own
	// now, take it for one from the future, and mint another.
	now := c.now()
	if c.conn != conn {
		c.conn, c.tokens = conn, map[string]minted{}
	}
	if m, ok := c.tokens[method]; ok && now.Sub(m.at) < TokenReuse && !now.Before(m.at) {
		return m.md
	}
	m := minted{md: map[string]string{MetadataKey: Mint(c.key, method, c.authority, now)}, at: now}
	c.tokens[method] = m
	return m.md
}

// connOf returns the identity of the connection a call goes out on: its
// local address, when it is one that each connection allocates for itself
// (TCP, unix), so that comparing the interface values compares pointers.
func connOf(ctx context.Context) net.Addr {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	switch a := p.LocalAddr.(type) {
	case *net.TCPAddr:
		if a != nil {
			return a
		}
	case *net.UnixAddr:
		if a != nil {
			return a
		}
	}
	return nil
}
