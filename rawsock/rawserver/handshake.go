package rawserver

import (
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/rawsock"
)

// readAnswer reads the client's answer. Everything is bounded by the length
// byte (at most 255, refused above rawsock.MaxKeyIDLen): nothing to allocate.
func readAnswer(r io.Reader) (string, [rawsock.MACLen]byte, error) {
	var proof [rawsock.MACLen]byte
	var n [1]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", proof, fmt.Errorf("read key id length: %w", err)
	}
	switch {
	case n[0] == 'P':
		return "", proof, &badAnswer{HandshakeGRPCClient, "the client sent 'P', as an HTTP/2 (gRPC) client's preface begins: a gRPC client at the raw port"}
	case n[0] == 0 || n[0] > rawsock.MaxKeyIDLen:
		return "", proof, &badAnswer{HandshakeMalformed, fmt.Sprintf("key id length %d, want 1 to %d", n[0], rawsock.MaxKeyIDLen)}
	}
	var buf [rawsock.MaxKeyIDLen + rawsock.MACLen]byte
	b := buf[:int(n[0])+rawsock.MACLen]
	if _, err := io.ReadFull(r, b); err != nil {
		return "", proof, fmt.Errorf("read key id and proof: %w", noEOF(err))
	}
	copy(proof[:], b[n[0]:])
	return string(b[:n[0]]), proof, nil
}

// serverHandshake runs the server's side over rw (the caller sets a deadline
// on the connection). It returns the authenticated key; on failure it has sent
// rawsock.StatusRefused, and the error says why, for the server's log only.
func serverHandshake(rw io.ReadWriter, ring *interceptors.KeyRing, challenge [rawsock.ChallengeLen]byte) (*interceptors.Key, error) {
	hello := append([]byte{rawsock.Version}, challenge[:]...)
	if _, err := rw.Write(hello); err != nil {
		return nil, fmt.Errorf("send challenge: %w", err)
	}
	kid, proof, err := readAnswer(rw)
	if err != nil {
		return nil, err
	}
	key := ring.Lookup(kid)
	var want [rawsock.MACLen]byte
	if key != nil {
		want = rawsock.Proof(key.Secret, challenge[:], kid)
	}
	// Compare even for an unknown key, so timing does not tell which failed.
	proven := hmac.Equal(want[:], proof[:]) && key != nil
	// A key bound to a client certificate (cert=) is never good here: raw has no TLS.
	unbound := interceptors.CheckConn(key, nil)
	ok := proven && unbound == nil
	status := rawsock.StatusOK
	if !ok {
		status = rawsock.StatusRefused
	}
	if _, err := rw.Write([]byte{status}); err != nil {
		return nil, fmt.Errorf("send status: %w", err)
	}
	switch {
	case key == nil:
		return nil, &refusal{interceptors.AuthUnknownKey, fmt.Errorf("unknown key id %q", kid)}
	case !proven:
		return nil, &refusal{interceptors.AuthBadSignature, fmt.Errorf("bad proof for key %q", kid)}
	case !ok:
		return nil, &refusal{interceptors.AuthCertMismatch, unbound}
	}
	return key, nil
}

// refusal is a handshake the server refused (it sent StatusRefused): kind
// is the check that failed, an interceptors.Auth* kind.
type refusal struct {
	kind string
	err  error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// badAnswer is an answer that is not one: reason is a Handshake* reason.
type badAnswer struct{ reason, msg string }

func (b *badAnswer) Error() string { return b.msg }

// handshakeOutcome says how a handshake ended, in the words of Observer.
func handshakeOutcome(err error) (result, reason string) {
	var (
		ref *refusal
		bad *badAnswer
	)
	switch {
	case err == nil:
		return HandshakeOK, ""
	case errors.As(err, &ref):
		return HandshakeRefused, ref.kind
	case errors.As(err, &bad):
		return HandshakeFailed, bad.reason
	case errors.Is(err, os.ErrDeadlineExceeded):
		return HandshakeFailed, HandshakeTimeout
	}
	return HandshakeFailed, HandshakeClosed
}

// newChallenge returns 32 random bytes.
func newChallenge() [rawsock.ChallengeLen]byte {
	var c [rawsock.ChallengeLen]byte
	if _, err := rand.Read(c[:]); err != nil {
		panic("rexec: no randomness: " + err.Error()) // crypto/rand does not fail on Linux
	}
	return c
}

// noEOF is io.ErrUnexpectedEOF for an EOF inside a message.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
