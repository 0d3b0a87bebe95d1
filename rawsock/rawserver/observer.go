package rawserver

// Observer is told how each handshake ended, and of each frame refused for
// its connection's key, for metrics. Its methods run in the connection's
// goroutine and must not block.
type Observer interface {
	// Handshake: result is HandshakeOK; HandshakeRefused when the client's
	// proof was refused, reason then being an interceptors.Auth* kind
	// (unknown_key, bad_signature, cert_mismatch); or HandshakeFailed when
	// the handshake did not finish, with a Handshake* reason.
	Handshake(result, reason string)
	// AuthFailure: an authenticated connection's frame was refused for its
	// key: kind is interceptors.AuthKeyRevoked (a reload removed or
	// changed the key) or interceptors.AuthScope.
	AuthFailure(kind string)
}

// Handshake results and the reasons of a handshake that did not finish.
const (
	HandshakeOK      = "ok"
	HandshakeRefused = "refused"
	HandshakeFailed  = "failed"

	HandshakeTimeout    = "timeout"     // no answer within Config.HandshakeTimeout
	HandshakeClosed     = "closed"      // the client closed (or reset) the connection
	HandshakeEvicted    = "evicted"     // closed to make room (Config.MaxUnauthenticated)
	HandshakeMalformed  = "malformed"   // an answer that is not one (a bad key id length)
	HandshakeGRPCClient = "grpc_client" // an HTTP/2 preface: a gRPC client at the raw port
)

// noObserver is the Observer of a server configured without one.
type noObserver struct{}

func (noObserver) Handshake(string, string) {}
func (noObserver) AuthFailure(string)       {}
