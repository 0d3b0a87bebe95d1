package interceptors

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The README's test vector, computed independently (Python's hmac module).
const (
	vectorSecretB64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	vectorToken     = "rexec-hmac-sha256 v2;kid=ops;ts=1767225600;nonce=oKGio6SlpqeoqaqrrK2urw;sig=TspnLXu0GJslrqDLZ0j0crnDRODLLNv3aQD4SmDAw_k"
	vectorMethod    = "/rexec.v1.ExecService/Run"
	vectorAuthority = "127.0.0.1:50051"
	vectorTS        = 1767225600
	// The v1 token of the same inputs (no authority), as README showed it
	// before v2: servers now refuse it.
	vectorTokenV1 = "rexec-hmac-sha256 v1;kid=ops;ts=1767225600;nonce=oKGio6SlpqeoqaqrrK2urw;sig=R_mt5tihaF0pugVUyP2sR7mOgon04pKgoDEW9-bdE8k"
)

// vectorLocal is the local address of a server listening on the vector's
// authority.
var vectorLocal = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50051}

// call is a call of method that came to vectorLocal naming vectorAuthority.
func call(method string) Call {
	return Call{Method: method, Authority: vectorAuthority, Local: vectorLocal}
}

func vectorKey(t testing.TB) *Key {
	keys, err := ParseKeys([]byte("ops " + vectorSecretB64 + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return keys[0]
}

func vectorNonce() (n [16]byte) {
	for i := range n {
		n[i] = byte(0xa0 + i)
	}
	return n
}

func TestTokenVector(t *testing.T) {
	got := MintWith(vectorKey(t), vectorMethod, vectorAuthority, vectorTS, vectorNonce())
	if got != vectorToken {
		t.Fatalf("minted\n%s\nwant\n%s", got, vectorToken)
	}
	tok, err := ParseToken(vectorToken)
	if err != nil {
		t.Fatal(err)
	}
	if tok.String() != vectorToken {
		t.Errorf("parse/format round trip: %s", tok.String())
	}
}

func TestParseTokenStrict(t *testing.T) {
	good := vectorToken
	bad := map[string]string{
		"empty":              "",
		"other scheme":       strings.Replace(good, "rexec-hmac-sha256", "Bearer", 1),
		"version 1":          vectorTokenV1,
		"version 3":          strings.Replace(good, " v2;", " v3;", 1),
		"fields reordered":   "rexec-hmac-sha256 v2;ts=1767225600;kid=ops;nonce=oKGio6SlpqeoqaqrrK2urw;sig=TspnLXu0GJslrqDLZ0j0crnDRODLLNv3aQD4SmDAw_k",
		"duplicate field":    good + ";sig=TspnLXu0GJslrqDLZ0j0crnDRODLLNv3aQD4SmDAw_k",
		"missing sig":        good[:strings.Index(good, ";sig=")],
		"ts with sign":       strings.Replace(good, "ts=1767225600", "ts=+1767225600", 1),
		"ts leading zero":    strings.Replace(good, "ts=1767225600", "ts=01767225600", 1),
		"short nonce":        strings.Replace(good, "nonce=oKGio6SlpqeoqaqrrK2urw", "nonce=oKGio6SlpqeoqaqrrK2u", 1),
		"padded sig":         good + "=",
		"non-canonical sig":  good[:len(good)-1] + "l", // same bytes, other trailing bits
		"space after ;":      strings.Replace(good, ";kid", "; kid", 1),
		"kid with space":     strings.Replace(good, "kid=ops", "kid=o s", 1),
		"oversize":           good + strings.Repeat("A", MaxTokenLen),
		"std base64 in sig":  strings.Replace(good, "w_k", "w/k", 1),
		"trailing semicolon": good + ";",
	}
	for name, v := range bad {
		if _, err := ParseToken(v); err == nil {
			t.Errorf("%s: accepted %q", name, v)
		}
	}
}

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func TestVerify(t *testing.T) {
	ops := vectorKey(t)
	echoOnly, _ := GenerateKey("echo-only", ScopeEcho)
	other, _ := GenerateKey("ops") // same id, other secret
	clk := &clock{now: time.Unix(vectorTS, 0)}
	v := NewVerifier(NewKeyRing([]*Key{ops, echoOnly}), VerifierOptions{Now: clk.Now, Skew: time.Minute})
	mint := func(k *Key, method string, at time.Time) string { return Mint(k, method, vectorAuthority, at) }
	now := clk.now

	cases := []struct {
		name   string
		token  string
		method string
		denied bool // PermissionDenied rather than Unauthenticated
		ok     bool
	}{
		{"good", mint(ops, vectorMethod, now), vectorMethod, false, true},
		{"good at +skew edge", mint(ops, vectorMethod, now.Add(time.Minute)), vectorMethod, false, true},
		{"good at -skew edge", mint(ops, vectorMethod, now.Add(-time.Minute)), vectorMethod, false, true},
		{"expired", mint(ops, vectorMethod, now.Add(-61*time.Second)), vectorMethod, false, false},
		{"from the future", mint(ops, vectorMethod, now.Add(61*time.Second)), vectorMethod, false, false},
		{"other method", mint(ops, "/rexec.v1.EchoService/Echo", now), vectorMethod, false, false},
		{"wrong secret", mint(other, vectorMethod, now), vectorMethod, false, false},
		{"unknown key", strings.Replace(mint(ops, vectorMethod, now), "kid=ops", "kid=nobody", 1), vectorMethod, false, false},
		{"malformed", "rexec-hmac-sha256 v1;kid=ops", vectorMethod, false, false},
		{"no scope", mint(echoOnly, vectorMethod, now), vectorMethod, true, false},
		{"scope ok", mint(echoOnly, "/rexec.v1.EchoService/Echo", now), "/rexec.v1.EchoService/Echo", false, true},
		{"unknown method", mint(ops, "/x.Y/Z", now), "/x.Y/Z", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := v.Verify(c.token, call(c.method))
			if c.ok {
				if err != nil || k == nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ae *AuthError
			if !errors.As(err, &ae) {
				t.Fatalf("err %v, want *AuthError", err)
			}
			if ae.Denied != c.denied {
				t.Errorf("denied %v, want %v (%v)", ae.Denied, c.denied, err)
			}
		})
	}
}

func TestTamperedSignatureRefused(t *testing.T) {
	ops := vectorKey(t)
	v := NewVerifier(NewKeyRing([]*Key{ops}), VerifierOptions{Now: func() time.Time { return time.Unix(vectorTS, 0) }})
	tok := []byte(vectorToken)
	i := strings.Index(vectorToken, "sig=") + 6
	tok[i] ^= 'p' ^ 'q'
	if _, err := v.Verify(string(tok), call(vectorMethod)); err == nil {
		t.Fatal("tampered signature accepted")
	}
	if _, err := v.Verify(vectorToken, call(vectorMethod)); err != nil {
		t.Fatalf("the vector itself refused: %v", err)
	}
}

func TestReplay(t *testing.T) {
	ops := vectorKey(t)
	clk := &clock{now: time.Unix(vectorTS, 0)}
	v := NewVerifier(NewKeyRing([]*Key{ops}), VerifierOptions{Now: clk.Now, Skew: time.Minute, MaxNonces: 3})
	if _, err := v.Verify(vectorToken, call(vectorMethod)); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(vectorToken, call(vectorMethod)); err == nil || !strings.Contains(err.Error(), "replayed") {
		t.Fatalf("replay: %v, want refused as replayed", err)
	}
	// Two more fill the cache of 3; a fourth is refused until the window moves on.
	for range 2 {
		if _, err := v.Verify(Mint(ops, vectorMethod, vectorAuthority, clk.now), call(vectorMethod)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.Verify(Mint(ops, vectorMethod, vectorAuthority, clk.now), call(vectorMethod)); err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("over the cache bound: %v, want refused (cache full)", err)
	}
	clk.now = clk.now.Add(61 * time.Second)
	if _, err := v.Verify(Mint(ops, vectorMethod, vectorAuthority, clk.now), call(vectorMethod)); err != nil {
		t.Fatalf("after the window moved on: %v", err)
	}
	// The old token is now refused for its age, not remembered.
	if _, err := v.Verify(vectorToken, call(vectorMethod)); err == nil || !strings.Contains(err.Error(), "off the server's clock") {
		t.Fatalf("old token: %v", err)
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys")
	created, err := EnsureKeyFile(path)
	if err != nil || !created {
		t.Fatalf("EnsureKeyFile: %v %v", created, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 600", fi.Mode().Perm())
	}
	keys, err := LoadKeyFile(path)
	if err != nil || len(keys) != 1 || keys[0].ID != "default" || len(keys[0].Secret) != 32 {
		t.Fatalf("load: %v %v", keys, err)
	}
	if again, err := EnsureKeyFile(path); again || err != nil {
		t.Errorf("second EnsureKeyFile: %v %v, want no new file", again, err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadKeyFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("group-readable key file: %v, want a refusal naming chmod 600", err)
	}
}

func TestParseKeys(t *testing.T) {
	short := "c2hvcnQ=" // "short"
	bad := map[string]string{
		"short secret":  "k " + short,
		"not base64":    "k !!!",
		"unknown scope": "k " + vectorSecretB64 + " exec,root",
		"duplicate id":  "k " + vectorSecretB64 + "\nk " + vectorSecretB64,
		"bad id":        "k/1 " + vectorSecretB64,
		"extra field":   "k " + vectorSecretB64 + " exec x",
		"empty":         "# nothing\n",
	}
	for name, text := range bad {
		if _, err := ParseKeys([]byte(text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	keys, err := ParseKeys([]byte("# rotation\nold " + vectorSecretB64 + "\n\nnew " + vectorSecretB64 + " exec,echo\n"))
	if err != nil || len(keys) != 2 {
		t.Fatalf("%v %v", keys, err)
	}
	if !keys[0].Allows(ScopeAdmin) || keys[1].Allows(ScopeSession) || !keys[1].Allows(ScopeEcho) {
		t.Error("scopes: a key with none allows all; a key with some allows just those")
	}
}

func BenchmarkVerify(b *testing.B) {
	k := vectorKey(b)
	// Room for every nonce: the cache must not fill when b.N is large.
	v := NewVerifier(NewKeyRing([]*Key{k}), VerifierOptions{MaxNonces: b.N + 1})
	toks := make([]string, b.N)
	for i := range toks {
		toks[i] = Mint(k, vectorMethod, vectorAuthority, time.Now())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := v.Verify(toks[i], call(vectorMethod)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMint(b *testing.B) {
	k := vectorKey(b)
	b.ReportAllocs()
	for range b.N {
		Mint(k, vectorMethod, vectorAuthority, time.Now())
	}
}

// TestReplayScope: only a key that lists the replay scope may reuse a token;
// a key with no scopes (all of them) may not.
func TestReplayScope(t *testing.T) {
	all := vectorKey(t)
	keys, err := ParseKeys([]byte("load " + vectorSecretB64 + " echo,replay\n"))
	if err != nil {
		t.Fatal(err)
	}
	load := keys[0]
	if all.Allows(ScopeReplay) || !load.Allows(ScopeReplay) || load.Allows(ScopeExec) {
		t.Fatal("replay must be listed to be granted, and grants nothing else")
	}
	v := NewVerifier(NewKeyRing([]*Key{all, load}), VerifierOptions{})
	const echo = "/rexec.v1.EchoService/Echo"
	tok := Mint(load, echo, vectorAuthority, time.Now())
	for i := range 3 {
		if _, err := v.Verify(tok, call(echo)); err != nil {
			t.Fatalf("use %d of a replay-scoped token: %v", i+1, err)
		}
	}
	tok = Mint(all, echo, vectorAuthority, time.Now())
	if _, err := v.Verify(tok, call(echo)); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok, call(echo)); err == nil {
		t.Error("a key with no scopes reused a token")
	}
}
