// Package interceptors holds rexec's per-call authentication — the key file,
// the HMAC token (mint and verify) — and the gRPC interceptor chains that apply
// it, with logging and panic recovery, on both sides.
//
// A server builds one Verifier over its key ring and installs its chain:
//
//	keys, _ := interceptors.LoadKeyFile(path)
//	v := interceptors.NewVerifier(interceptors.NewKeyRing(keys), interceptors.VerifierOptions{})
//	srv := grpc.NewServer(interceptors.ServerOptions(interceptors.ServerConfig{Verifier: v, Logger: logger})...)
//
// A client signs every call with one key:
//
//	conn, _ := grpc.NewClient(addr, append(creds, interceptors.ClientOptions(key, addr)...)...)
//
// A connection may present a token it spent again (spent.go); the client
// does so for TokenReuse, one token per method and connection.
//
// The token format is in README.md ("The token"), byte for byte.
package interceptors
