package rawsock

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

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

// ErrGRPCPort is the client's view of a server that greets as HTTP/2 does:
// rexecd's gRPC port, not its raw one.
var ErrGRPCPort = errors.New("the server speaks gRPC (HTTP/2), not rexec's raw protocol")

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

// clientHandshake runs the client's side over rw.
func clientHandshake(rw io.ReadWriter, key *interceptors.Key) error {
	var hello [1 + ChallengeLen]byte
	if _, err := io.ReadFull(rw, hello[:1]); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("no greeting from the server: %w (rexec's raw listener greets at once; "+
				"a gRPC port with TLS waits for the client to speak first)", err)
		}
		return fmt.Errorf("read challenge: %w", err)
	}
	if hello[0] != Version {
		return notRaw(rw, hello[0])
	}
	if _, err := io.ReadFull(rw, hello[1:]); err != nil {
		return fmt.Errorf("read challenge: %w", noEOF(err))
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

// notRaw says what a server whose first byte is not this protocol's version
// speaks. An HTTP/2 server (rexecd's gRPC port) sends a SETTINGS frame
// first: a 9-byte header whose length is small (first byte 0), type 4, and
// stream 0. The rest of the header comes with the first byte, so reading it
// waits at most a moment.
func notRaw(r io.Reader, first byte) error {
	var h [8]byte // the frame header after its first byte
	if d, ok := r.(interface{ SetReadDeadline(time.Time) error }); ok {
		_ = d.SetReadDeadline(time.Now().Add(2 * time.Second))
	}
	n, _ := io.ReadFull(r, h[:])
	const settings = 0x4
	if first == 0 && n == len(h) && h[2] == settings && binary.BigEndian.Uint32(h[4:])&0x7fffffff == 0 {
		return ErrGRPCPort
	}
	return fmt.Errorf("the server's greeting begins 0x%02x, not raw protocol version %d: another version, or not rexec's raw port", first, Version)
}
