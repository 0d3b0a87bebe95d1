package interceptors

import (
	"context"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/stats"
)

// A token's nonce is spent by the first call that presents it, as the
// replay cache has always done. What changes here is who may present it
// again: the HTTP/2 connection that spent it, for the same method and
// :authority, while its ts is in the skew window. Any other connection
// presenting it is a replay, as before.
//
// Why this keeps what the nonce protects. Replay protection stops a token
// taken off the wire (or out of a log) from being spent by someone else.
// Someone else means another connection: they cannot send frames on the
// client's connection (TLS; on plaintext, whoever can inject into the
// client's TCP stream could already take a fresh token off the wire and
// send it first, which README says only TLS stops). So a connection
// re-presenting what it spent
// gains no power a fresh token would not give it: the token is still bound
// to its key, method, :authority and time, and the server checks the key,
// its cert= binding and its scope on every call. What it buys: the client
// may send one token per method for a few seconds, which HPACK indexes
// (a fresh token a call is 130 bytes no header table can ever hold), and
// the server looks the string up instead of computing the HMAC. One case
// weakens: an HTTP/2 proxy that carries several clients' calls on one
// connection to the server makes them one connection here, so a token one
// of them sent could be re-sent by another through it inside the window
// (README says so).
//
// The identity of a connection is a value the server makes for it in
// TagConn (connHandler), which gRPC derives every call's context from: it
// cannot be forged by the peer and is never reused (not the peer address,
// whose port a later connection may get). The tokens a connection spent go
// when it ends (ConnEnd), and are bounded per connection and in all
// (spentTokens).

// maxSpentPerConn bounds the tokens one connection may re-present. rexec's
// client keeps one token per method, two at a change of token, so this is
// far above its need; a client that mints a token per call (an older
// rexec, grpcurl with `rexec token`) never re-presents one, and past the
// bound one token it sent is forgotten for each new one (counted in
// Evicted).
const maxSpentPerConn = 256

// spentToken is what a connection's full Verify established for a token:
// the key that signed it and the method and :authority it was signed for.
type spentToken struct {
	key       *Key
	method    string
	authority string
	ts        int64
}

// connSpent is one connection's spent tokens, keyed by the exact
// authorization value.
type connSpent struct {
	mu        sync.Mutex
	closed    bool
	lastSweep int64
	tokens    map[string]spentToken
}

// spentTokens is every live connection's spent tokens, bounded in all by
// VerifierOptions.MaxNonces.
type spentTokens struct {
	window  int64
	max     int64
	n       atomic.Int64
	evicted atomic.Int64
	mu      sync.Mutex
	conns   map[*connSpent]struct{}
}

type connCtxKey struct{}

// lookup returns the entry for value, if this connection spent it.
func (cs *connSpent) lookup(value string) (spentToken, bool) {
	cs.mu.Lock()
	e, ok := cs.tokens[value]
	cs.mu.Unlock()
	return e, ok
}

// full reports whether the spent tokens are at their bound, after
// dropping the expired ones of every connection.
func (s *spentTokens) full(now int64) bool {
	if s.n.Load() < s.max {
		return false
	}
	s.mu.Lock()
	conns := make([]*connSpent, 0, len(s.conns))
	for cs := range s.conns {
		conns = append(conns, cs)
	}
	s.mu.Unlock()
	for _, cs := range conns {
		cs.mu.Lock()
		s.sweep(cs, now)
		cs.mu.Unlock()
	}
	return s.n.Load() >= s.max
}

// sweep drops cs's tokens whose ts left the window. cs.mu is held.
func (s *spentTokens) sweep(cs *connSpent, now int64) {
	cs.lastSweep = now
	for v, e := range cs.tokens {
		if now-e.ts > s.window {
			delete(cs.tokens, v)
			s.n.Add(-1)
		}
	}
}

// addLocked remembers that cs spent value; cs.mu is held. A connection
// that has ended keeps nothing (a call can still be verified after its
// connection's ConnEnd).
func (s *spentTokens) addLocked(cs *connSpent, value string, e spentToken, now int64) {
	if cs.closed {
		return
	}
	if _, ok := cs.tokens[value]; ok {
		cs.tokens[value] = e // a key reload: the entry now names the ring's key
		return
	}
	if now != cs.lastSweep {
		s.sweep(cs, now)
	}
	if len(cs.tokens) >= maxSpentPerConn {
		for v := range cs.tokens { // any one: finding the oldest would cost a scan a call
			delete(cs.tokens, v)
			break
		}
		s.n.Add(-1)
		s.evicted.Add(1)
	}
	if cs.tokens == nil {
		cs.tokens = map[string]spentToken{}
	}
	cs.tokens[value] = e
	s.n.Add(1)
}

func (s *spentTokens) open() *connSpent {
	cs := &connSpent{}
	s.mu.Lock()
	s.conns[cs] = struct{}{}
	s.mu.Unlock()
	return cs
}

func (s *spentTokens) close(cs *connSpent) {
	s.mu.Lock()
	delete(s.conns, cs)
	s.mu.Unlock()
	cs.mu.Lock()
	cs.closed = true
	s.n.Add(-int64(len(cs.tokens)))
	cs.tokens = nil
	cs.mu.Unlock()
}

// SpentStats is what the connections' spent-token caches hold.
type SpentStats struct {
	// Conns is the connections being tracked (open, with auth).
	Conns int
	// Tokens is the tokens they may re-present, in all.
	Tokens int64
	// Evicted is the tokens forgotten because a connection had
	// maxSpentPerConn of them (re-presenting one is then a replay).
	Evicted int64
}

// Spent returns what the per-connection caches of spent tokens hold now.
func (v *Verifier) Spent() SpentStats {
	v.spent.mu.Lock()
	n := len(v.spent.conns)
	v.spent.mu.Unlock()
	return SpentStats{Conns: n, Tokens: v.spent.n.Load(), Evicted: v.spent.evicted.Load()}
}

// StatsHandler returns the gRPC stats handler that gives each server
// connection its identity for the spent-token cache and empties it when
// the connection ends. ServerOptions installs it; a server that builds its
// own chain around Verify without it gets the old rule: every call a fresh
// token.
func (v *Verifier) StatsHandler() stats.Handler { return connHandler{&v.spent} }

type connHandler struct{ s *spentTokens }

func (h connHandler) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return context.WithValue(ctx, connCtxKey{}, h.s.open())
}

func (h connHandler) HandleConn(ctx context.Context, st stats.ConnStats) {
	if _, ok := st.(*stats.ConnEnd); !ok {
		return
	}
	if cs, ok := ctx.Value(connCtxKey{}).(*connSpent); ok {
		h.s.close(cs)
	}
}

func (connHandler) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

func (connHandler) HandleRPC(context.Context, stats.RPCStats) {}
