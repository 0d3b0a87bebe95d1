package interceptors

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Scheme is the authorization scheme of a rexec token.
const Scheme = "rexec-hmac-sha256"

// MetadataKey is the gRPC metadata key that carries the token.
const MetadataKey = "authorization"

// MaxTokenLen bounds an authorization value; longer ones are refused unread.
const MaxTokenLen = 512

const (
	nonceLen = 16
	sigLen   = sha256.Size
	// the signature domain: a signature for rexec v2 tokens means nothing
	// elsewhere (v1 signed "rexec-v1\n" and no authority)
	domainTag = "rexec-v2\n"
	// prefix is where a v2 token's fields begin.
	prefix = Scheme + " v2;"
)

// ErrTokenV1 is why a v1 token is refused: it signs the method but not the
// server it was meant for, so a server that received one could spend it on
// its peers. Only a client older than the server still sends one.
var ErrTokenV1 = errors.New("token v1: client older than server")

var b64 = base64.RawURLEncoding

// Token is a parsed authorization value.
type Token struct {
	KeyID string
	TS    int64 // Unix seconds
	Nonce [nonceLen]byte
	Sig   [sigLen]byte
}

// Mint returns the authorization value for one call of fullMethod
// ("/rexec.v1.ExecService/Run") with key at time now, to the server at
// authority: the call's :authority header, which for rexec's clients is the
// HOST:PORT they dialed. The server accepts it only when authority names
// that server (VerifierOptions), so a token one host receives cannot be
// spent on another that shares the key.
func Mint(key *Key, fullMethod, authority string, now time.Time) string {
	var nonce [nonceLen]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		panic("rexec: no randomness: " + err.Error()) // crypto/rand does not fail on Linux
	}
	return MintWith(key, fullMethod, authority, now.Unix(), nonce)
}

// MintWith is Mint with a given timestamp and nonce: for test vectors.
func MintWith(key *Key, fullMethod, authority string, ts int64, nonce [nonceLen]byte) string {
	t := Token{KeyID: key.ID, TS: ts, Nonce: nonce}
	t.Sig = sign(key, t.KeyID, t.TS, t.Nonce, fullMethod, authority)
	return t.String()
}

// String formats t as an authorization value.
func (t *Token) String() string {
	// One allocation, the string: every call mints one.
	var buf [MaxTokenLen]byte
	b := append(buf[:0], prefix...)
	b = append(b, "kid="...)
	b = append(b, t.KeyID...)
	b = append(b, ";ts="...)
	b = strconv.AppendInt(b, t.TS, 10)
	b = append(b, ";nonce="...)
	b = b64.AppendEncode(b, t.Nonce[:])
	b = append(b, ";sig="...)
	b = b64.AppendEncode(b, t.Sig[:])
	return string(b)
}

func sign(key *Key, kid string, ts int64, nonce [nonceLen]byte, method, authority string) (sig [sigLen]byte) {
	m := key.mac()
	defer key.macs.Put(m)
	b := append(m.buf[:0], domainTag...)
	b = append(b, kid...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, '\n')
	b = b64.AppendEncode(b, nonce[:])
	b = append(b, '\n')
	b = append(b, method...)
	b = append(b, '\n')
	b = append(b, authority...)
	m.h.Write(b)
	copy(sig[:], m.h.Sum(m.sum[:0]))
	return sig
}

// ParseToken parses an authorization value strictly: one scheme, the fields
// in their fixed order, each once, each in its exact form.
func ParseToken(v string) (*Token, error) {
	var t Token
	if err := parseToken(v, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// parseToken is ParseToken into t, so that Verify need not allocate one.
func parseToken(v string, t *Token) error {
	if len(v) > MaxTokenLen {
		return fmt.Errorf("token is %d bytes, over %d", len(v), MaxTokenLen)
	}
	rest, ok := strings.CutPrefix(v, prefix)
	if !ok {
		if strings.HasPrefix(v, Scheme+" v1;") {
			return ErrTokenV1
		}
		return errors.New("not a " + Scheme + " v2 token")
	}
	fields := [4]string{"kid=", "ts=", "nonce=", "sig="}
	for i, name := range fields {
		var val string
		if i < len(fields)-1 {
			var found bool
			val, rest, found = strings.Cut(rest, ";")
			if !found {
				return fmt.Errorf("missing field %s", strings.TrimSuffix(fields[i+1], "="))
			}
		} else {
			val = rest
		}
		val, ok := strings.CutPrefix(val, name)
		if !ok {
			return fmt.Errorf("field %d is not %s", i+1, strings.TrimSuffix(name, "="))
		}
		var err error
		switch i {
		case 0:
			if !validKeyID(val) {
				err = errors.New("bad kid")
			}
			t.KeyID = val
		case 1:
			t.TS, err = parseTS(val)
		case 2:
			err = decodeFixed(t.Nonce[:], val, "nonce")
		case 3:
			err = decodeFixed(t.Sig[:], val, "sig")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func parseTS(s string) (int64, error) {
	// Digits only, no sign, no leading zero: one spelling per value.
	if s == "" || len(s) > 12 || (len(s) > 1 && s[0] == '0') {
		return 0, errors.New("bad ts")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("bad ts")
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func decodeFixed(dst []byte, s, name string) error {
	if b64.EncodedLen(len(dst)) != len(s) {
		return fmt.Errorf("bad %s length", name)
	}
	// Stack buffers: the lengths are fixed (at most 43), and Verify runs
	// on every call.
	var in, canon [64]byte
	n, err := b64.Decode(dst, in[:copy(in[:], s)])
	if err != nil || n != len(dst) {
		return fmt.Errorf("bad %s encoding", name)
	}
	// RawURLEncoding accepts non-zero trailing bits; insist on the one
	// canonical spelling so that a token has no malleable twin.
	if string(b64.AppendEncode(canon[:0], dst)) != s {
		return fmt.Errorf("non-canonical %s", name)
	}
	return nil
}

func validKeyID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
