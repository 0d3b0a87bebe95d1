package rawsock

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/rexec/rexec/interceptors"
)

// The handshake, as the classic socket lesson authenticates a connection,
// hardened:
//
//	S→C  version (1 byte) | challenge (32 random bytes)
//	C→S  len(key id) (1 byte) | key id | HMAC-SHA256(secret, HandshakeTag || challenge || key id)
//	S→C  status (1 byte): StatusOK, or StatusRefused and the server closes
//
// The tag binds the proof to this protocol (a gRPC token's signature or any
// other use of the key cannot be replayed as one); the fresh challenge binds
// it to this connection; the key id inside the MAC stops a proof made for one
// key being presented as another's.
const (
	Version      = 1
	ChallengeLen = 32
	MACLen       = sha256.Size
	// HandshakeTag is the HMAC domain tag of a raw handshake proof.
	HandshakeTag = "rexec-raw-v1\n"
	// MaxKeyIDLen is the longest key id (as a key file allows).
	MaxKeyIDLen = 64
)

// The status byte that ends the handshake.
const (
	StatusOK      byte = 0
	StatusRefused byte = 1
)

// ErrRefused is the client's view of a refused handshake: unknown key or bad
// proof; the server does not say which.
var ErrRefused = errors.New("handshake refused")

// Proof is the client's answer to challenge with key.
func Proof(secret, challenge []byte, keyID string) [MACLen]byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(HandshakeTag))
	m.Write(challenge)
	m.Write([]byte(keyID))
	var out [MACLen]byte
	m.Sum(out[:0])
	return out
}

// appendAnswer encodes the client's answer.
func appendAnswer(dst []byte, keyID string, proof [MACLen]byte) []byte {
	dst = append(dst, byte(len(keyID)))
	dst = append(dst, keyID...)
	return append(dst, proof[:]...)
}

// readAnswer reads the client's answer. Everything is bounded by the length
// byte (at most 255, refused above MaxKeyIDLen): nothing to allocate.
func readAnswer(r io.Reader) (string, [MACLen]byte, error) {
	var proof [MACLen]byte
	var n [1]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", proof, fmt.Errorf("read key id length: %w", err)
	}
	if n[0] == 0 || n[0] > MaxKeyIDLen {
		return "", proof, fmt.Errorf("key id length %d, want 1 to %d", n[0], MaxKeyIDLen)
	}
	var buf [MaxKeyIDLen + MACLen]byte
	b := buf[:int(n[0])+MACLen]
	if _, err := io.ReadFull(r, b); err != nil {
		return "", proof, fmt.Errorf("read key id and proof: %w", noEOF(err))
	}
	copy(proof[:], b[n[0]:])
	return string(b[:n[0]]), proof, nil
}

// serverHandshake runs the server's side over rw (the caller sets a deadline
// on the connection). It returns the authenticated key; on failure it has sent
// StatusRefused, and the error says why, for the server's log only.
func serverHandshake(rw io.ReadWriter, ring *interceptors.KeyRing, challenge [ChallengeLen]byte) (*interceptors.Key, error) {
	hello := append([]byte{Version}, challenge[:]...)
	if _, err := rw.Write(hello); err != nil {
		return nil, fmt.Errorf("send challenge: %w", err)
	}
	kid, proof, err := readAnswer(rw)
	if err != nil {
		return nil, err
	}
	key := ring.Lookup(kid)
	var want [MACLen]byte
	if key != nil {
		want = Proof(key.Secret, challenge[:], kid)
	}
	// Compare even for an unknown key, so timing does not tell which failed.
	proven := hmac.Equal(want[:], proof[:]) && key != nil
	// A key bound to a client certificate (cert=) is never good here: raw has no TLS.
	unbound := interceptors.CheckConn(key, nil)
	ok := proven && unbound == nil
	status := StatusOK
	if !ok {
		status = StatusRefused
	}
	if _, err := rw.Write([]byte{status}); err != nil {
		return nil, fmt.Errorf("send status: %w", err)
	}
	switch {
	case key == nil:
		return nil, fmt.Errorf("unknown key id %q", kid)
	case !proven:
		return nil, fmt.Errorf("bad proof for key %q", kid)
	case !ok:
		return nil, unbound
	}
	return key, nil
}

// newChallenge returns 32 random bytes.
func newChallenge() [ChallengeLen]byte {
	var c [ChallengeLen]byte
	if _, err := rand.Read(c[:]); err != nil {
		panic("rexec: no randomness: " + err.Error()) // crypto/rand does not fail on Linux
	}
	return c
}

// clientHandshake runs the client's side over rw.
func clientHandshake(rw io.ReadWriter, key *interceptors.Key) error {
	var hello [1 + ChallengeLen]byte
	if _, err := io.ReadFull(rw, hello[:]); err != nil {
		return fmt.Errorf("read challenge: %w", err)
	}
	if hello[0] != Version {
		return fmt.Errorf("server speaks raw protocol version %d, this client %d", hello[0], Version)
	}
	if len(key.ID) == 0 || len(key.ID) > MaxKeyIDLen {
		return fmt.Errorf("key id %q: 1 to %d bytes", key.ID, MaxKeyIDLen)
	}
	ans := appendAnswer(nil, key.ID, Proof(key.Secret, hello[1:], key.ID))
	if _, err := rw.Write(ans); err != nil {
		return fmt.Errorf("send proof: %w", err)
	}
	var st [1]byte
	if _, err := io.ReadFull(rw, st[:]); err != nil {
		return fmt.Errorf("read handshake status: %w", err)
	}
	if st[0] != StatusOK {
		return ErrRefused
	}
	return nil
}
