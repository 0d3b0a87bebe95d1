package interceptors

import (
	"context"
	"crypto/hmac"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// VerifierOptions configure a Verifier. Zero fields take the defaults below.
type VerifierOptions struct {
	// Skew is how far a token's ts may be from the server's clock, either
	// way. By default 60s.
	Skew time.Duration
	// MaxNonces bounds the replay cache: past it, new tokens are refused
	// until old ones age out of the skew window. By default 1<<20: at the
	// about 34 bytes a nonce that BenchmarkReplayCache measures, some
	// 36 MiB at the most. A token's nonce is kept only while its ts is in
	// the window (at most 2×skew+1s), so with 60s skew the bound allows at
	// least 8600 calls/s sustained. The tokens open gRPC connections may
	// present again (spent.go) are bounded by it too, apart.
	MaxNonces int
	// Now is the clock. By default time.Now.
	Now func() time.Time
	// ScopeOf maps a full method name to the scope it needs. By default
	// MethodScope.
	ScopeOf func(fullMethod string) string
	// Names are more names a token's :authority may give for this server,
	// each HOST (any port) or HOST:PORT: what clients dial when they reach
	// it through a load balancer or a port mapping. A name that several
	// servers share lets them spend each other's tokens. By default none:
	// see Call for the authorities a server accepts without them.
	Names []string
	// Hostname is the server's host name, which a token's :authority may
	// give. By default os.Hostname(); "-" accepts no host name.
	Hostname string
}

// Verifier checks tokens against a KeyRing. It is safe for concurrent use.
type Verifier struct {
	keys   *KeyRing
	opts   VerifierOptions
	aud    audience
	replay replayCache
	// spent is the tokens each gRPC connection may present again
	// (spent.go).
	spent spentTokens
}

// NewVerifier returns a Verifier over keys.
func NewVerifier(keys *KeyRing, opts VerifierOptions) *Verifier {
	if opts.Skew <= 0 {
		opts.Skew = 60 * time.Second
	}
	if opts.MaxNonces <= 0 {
		opts.MaxNonces = 1 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ScopeOf == nil {
		opts.ScopeOf = MethodScope
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	window := int64(opts.Skew / time.Second)
	return &Verifier{keys: keys, opts: opts, aud: newAudience(opts.Names, opts.Hostname), replay: replayCache{
		window: window, max: opts.MaxNonces,
		buckets: map[int64]map[[nonceLen]byte]struct{}{},
	}, spent: spentTokens{window: window, max: int64(opts.MaxNonces), conns: map[*connSpent]struct{}{}}}
}

// Keys is the ring the verifier reads; Replace on it rotates keys.
func (v *Verifier) Keys() *KeyRing { return v.keys }

// AuthError is why a token was refused. The client is told only
// Unauthenticated or PermissionDenied; Kind and Reason are for the server's
// log and metrics.
type AuthError struct {
	// Denied is true when the token was good but the key lacks the scope.
	Denied bool
	KeyID  string
	// Kind is the check that failed, one of the Auth* kinds: a fixed word.
	Kind string
	// Reason says it in a sentence, with the figures (never a secret).
	Reason string
}

func (e *AuthError) Error() string { return "auth: " + e.Reason }

// The kinds of auth failure (AuthError.Kind): which check refused a call,
// in fixed words that metrics can count by. The raw transport's handshake
// uses the same words where its checks are the same.
const (
	AuthNoToken      = "no_token"          // no authorization metadata
	AuthTokenCount   = "several_tokens"    // more than one authorization value
	AuthMalformed    = "malformed"         // not a token of this scheme
	AuthUnknownKey   = "unknown_key"       // the key id is not in the key file
	AuthClockSkew    = "clock_skew"        // ts outside the skew window
	AuthBadSignature = "bad_signature"     // wrong secret, or minted for another method
	AuthReplayed     = "replayed"          // the nonce was seen in the window
	AuthReplayFull   = "replay_cache_full" // the replay cache is at its bound
	AuthCertMismatch = "cert_mismatch"     // a cert= key without that client certificate
	AuthScope        = "scope"             // a good token whose key lacks the method's scope
	AuthKeyRevoked   = "key_revoked"       // raw: a reload removed or changed the connection's key
	AuthTokenVersion = "token_version"     // a token of an older format (v1): the client is older than the server
	AuthWrongServer  = "wrong_server"      // a good signature for another server's :authority
)

func authFail(kid, kind, format string, args ...any) *AuthError {
	return &AuthError{KeyID: kid, Kind: kind, Reason: fmt.Sprintf(format, args...)}
}

// Call is what the server knows of a call besides its token.
type Call struct {
	// Method is the full method name, "/rexec.v1.ExecService/Run".
	Method string
	// Authority is the call's :authority header: the HOST:PORT the client
	// dialed, which its token signs. The server accepts it when PORT is the
	// port the connection arrived on and HOST is the address it arrived on
	// (an IP the client reached, so one of the server's own), "localhost"
	// when that address is loopback, the server's host name, or else when
	// it is one of VerifierOptions.Names.
	Authority string
	// Local is the connection's local address (nil when unknown: then only
	// VerifierOptions.Names are accepted).
	Local net.Addr
	// TLS is the connection's TLS state; nil without TLS.
	TLS *tls.ConnectionState
}

// Verify checks the authorization value for call and returns the key that
// signed it, or an *AuthError. A key bound to a client certificate (cert=)
// that call.TLS does not carry is refused as unauthenticated, before its
// scopes are looked at. Every value is checked in full and its nonce spent:
// the raw transport's handshake, and any caller outside a gRPC connection,
// use this. (The gRPC chain uses verifyOnConn.)
func (v *Verifier) Verify(value string, call Call) (*Key, error) {
	return v.verify(value, call, v.opts.Now().Unix(), nil, false)
}

// verifyOnConn is Verify for a gRPC call on the connection cs (nil when
// the server has no connHandler: then it is Verify). A value that cs
// spent, for the same method and :authority, whose ts is still in the
// window, is accepted without the HMAC, once its key is still the ring's
// (the same *Key: a reload makes new ones) and the key's cert= binding and
// scope still admit the call; a reload since re-checks it in full but for
// the nonce, which cs spent, so a removed or changed key refuses it at
// once. Any other value is checked in full, its nonce spent, and cs
// remembers it (spent.go says why this is safe).
func (v *Verifier) verifyOnConn(cs *connSpent, value string, call Call) (*Key, error) {
	if cs == nil {
		return v.Verify(value, call)
	}
	now := v.opts.Now().Unix()
	e, ok := cs.lookup(value)
	if !ok || e.method != call.Method || e.authority != call.Authority {
		return v.verify(value, call, now, cs, false)
	}
	if d := now - e.ts; d > v.replay.window || -d > v.replay.window {
		return nil, authFail(e.key.ID, AuthClockSkew, "ts is %ds off the server's clock (window %ds)", d, v.replay.window)
	}
	if v.keys.Lookup(e.key.ID) != e.key {
		return v.verify(value, call, now, cs, true)
	}
	return v.admit(e.key, call)
}

// verify checks value in full. With cs, the connection it came on
// remembers it once its nonce is spent; with spent, cs spent the nonce
// already (a re-check after a key reload) and it is not looked up again.
func (v *Verifier) verify(value string, call Call, now int64, cs *connSpent, spent bool) (*Key, error) {
	var t Token
	if err := parseToken(value, &t); err != nil {
		if errors.Is(err, ErrTokenV1) {
			return nil, authFail("", AuthTokenVersion, "%v", err)
		}
		return nil, authFail("", AuthMalformed, "malformed token: %v", err)
	}
	k := v.keys.Lookup(t.KeyID)
	if k == nil {
		return nil, authFail(t.KeyID, AuthUnknownKey, "unknown key id")
	}
	if d := now - t.TS; d > v.replay.window || -d > v.replay.window {
		return nil, authFail(t.KeyID, AuthClockSkew, "ts is %ds off the server's clock (window %ds)", d, v.replay.window)
	}
	want := sign(k, t.KeyID, t.TS, t.Nonce, call.Method, call.Authority)
	if !hmac.Equal(want[:], t.Sig[:]) {
		return nil, authFail(t.KeyID, AuthBadSignature, "bad signature (wrong secret, or minted for another method or :authority)")
	}
	// The signature holds, so a key holder meant this token for
	// call.Authority: if that is not this server, the token was taken from
	// the server it was for (or the client dialed a name we do not know).
	if err := v.aud.check(call.Authority, call.Local); err != nil {
		return nil, authFail(t.KeyID, AuthWrongServer, "token for another server: %v", err)
	}
	// Only after the signature: nobody without a key can fill the cache. A
	// key with the replay scope opted out of it (load-test tools).
	if cs == nil {
		if err := v.spendNonce(k, t, now); err != nil {
			return nil, err
		}
		return v.admit(k, call)
	}
	if !spent && v.spent.full(now) {
		return nil, authFail(t.KeyID, AuthReplayFull, "spent-token cache full (%d tokens on open connections)", v.spent.max)
	}
	// Under the connection's lock: two calls on one connection that bring
	// one new token at once both get here, and the second finds the token
	// the first spent, not a replay.
	cs.mu.Lock()
	if _, mine := cs.tokens[value]; !spent && !mine {
		if err := v.spendNonce(k, t, now); err != nil {
			cs.mu.Unlock()
			return nil, err
		}
	}
	// The nonce is this connection's now, whatever the key's checks below
	// say: remembering it here keeps a re-presented token's answer the
	// same as its first (PermissionDenied stays PermissionDenied, not
	// replayed), and the fast path runs those checks again on every call.
	v.spent.addLocked(cs, value, spentToken{key: k, method: call.Method, authority: call.Authority, ts: t.TS}, now)
	cs.mu.Unlock()
	return v.admit(k, call)
}

// spendNonce records t's nonce in the replay cache, unless k opted out.
func (v *Verifier) spendNonce(k *Key, t Token, now int64) *AuthError {
	if k.Allows(ScopeReplay) {
		return nil
	}
	switch v.replay.add(now, t.TS, t.Nonce) {
	case replaySeen:
		return authFail(t.KeyID, AuthReplayed, "nonce replayed")
	case replayFull:
		return authFail(t.KeyID, AuthReplayFull, "replay cache full (%d nonces in the window)", v.replay.max)
	}
	return nil
}

// admit is the checks of the key itself, on every call: its cert= binding
// against the connection and its scope for the method.
func (v *Verifier) admit(k *Key, call Call) (*Key, error) {
	if err := CheckConn(k, call.TLS); err != nil {
		return nil, authFail(k.ID, AuthCertMismatch, "%v", err)
	}
	if scope := v.opts.ScopeOf(call.Method); scope == "" || !k.Allows(scope) {
		return nil, &AuthError{Denied: true, KeyID: k.ID, Kind: AuthScope, Reason: fmt.Sprintf("key lacks scope %q for %s", scope, call.Method)}
	}
	return k, nil
}

// MethodScope is the default map from a method to its scope: ExecService.Run
// and ExecutionService need exec, Session needs session, EchoService needs
// echo, FileService's methods files or files-write (fileMethodScopes), health
// and reflection need admin; anything else needs a scope no key has.
func MethodScope(fullMethod string) string {
	switch {
	case fullMethod == "/rexec.v1.ExecService/Run", strings.HasPrefix(fullMethod, "/rexec.v1.ExecutionService/"):
		return ScopeExec
	case fullMethod == "/rexec.v1.ExecService/Session":
		return ScopeSession
	case strings.HasPrefix(fullMethod, "/rexec.v1.EchoService/"):
		return ScopeEcho
	case strings.HasPrefix(fullMethod, fileServicePrefix):
		return fileMethodScopes[strings.TrimPrefix(fullMethod, fileServicePrefix)]
	case IsAdminMethod(fullMethod):
		return ScopeAdmin
	}
	return ""
}

const fileServicePrefix = "/rexec.v1.FileService/"

// fileMethodScopes maps each FileService method to its scope. A method not
// here (a newer one this table forgot) needs a scope no key has.
var fileMethodScopes = map[string]string{
	"Stat":          ScopeFiles,
	"List":          ScopeFiles,
	"Download":      ScopeFiles,
	"Usage":         ScopeFiles,
	"ListUploads":   ScopeFiles,
	"Mkdir":         ScopeFilesWrite,
	"Remove":        ScopeFilesWrite,
	"Rename":        ScopeFilesWrite,
	"Symlink":       ScopeFilesWrite,
	"SetAttributes": ScopeFilesWrite,
	"StartUpload":   ScopeFilesWrite,
	"Upload":        ScopeFilesWrite,
	"QueryUpload":   ScopeFilesWrite,
	"CancelUpload":  ScopeFilesWrite,
}

// IsAdminMethod reports whether fullMethod is health or reflection.
func IsAdminMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.")
}

type replayResult uint8

const (
	replayFresh replayResult = iota
	replaySeen
	replayFull
)

// replayCache remembers the nonces of accepted tokens while their ts is in
// the skew window. A token's ts is signed, so a replay carries the same ts:
// nonces are kept in one bucket per ts second and whole buckets are dropped
// once their second leaves the window.
type replayCache struct {
	mu        sync.Mutex
	window    int64
	max       int
	n         int
	lastSweep int64
	buckets   map[int64]map[[nonceLen]byte]struct{}
}

func (c *replayCache) add(now, ts int64, nonce [nonceLen]byte) replayResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now != c.lastSweep {
		c.lastSweep = now
		for t, b := range c.buckets {
			if t < now-c.window {
				c.n -= len(b)
				delete(c.buckets, t)
			}
		}
	}
	b := c.buckets[ts]
	if _, ok := b[nonce]; ok {
		return replaySeen
	}
	if c.n >= c.max {
		return replayFull
	}
	if b == nil {
		b = map[[nonceLen]byte]struct{}{}
		c.buckets[ts] = b
	}
	b[nonce] = struct{}{}
	c.n++
	return replayFresh
}

type keyCtxKey struct{}

// KeyFromContext returns the key that authenticated the call, or nil (for
// an open method).
func KeyFromContext(ctx context.Context) *Key {
	k, _ := ctx.Value(keyCtxKey{}).(*Key)
	return k
}

// ContextWithKey returns ctx carrying k, as the auth interceptor does.
func ContextWithKey(ctx context.Context, k *Key) context.Context {
	return context.WithValue(ctx, keyCtxKey{}, k)
}

var errNoToken = errors.New("no authorization metadata")
