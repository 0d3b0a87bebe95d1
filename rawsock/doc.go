// Package rawsock is rexec over a plain TCP socket: the classic socket recipe
// (length-prefixed frames, an HMAC challenge-response) done right. It holds
// the protocol (frames, handshake, payloads) and the client; the server, over
// the same runner as the gRPC server, is rawsock/rawserver, so that a client
// links no server code. It exists so that the two transports can be read,
// run and measured side by side; docs/PROTOCOL.md is the wire format.
//
// A client dials, which runs the handshake, then runs commands one after
// another on the connection:
//
//	c, err := rawsock.Dial(ctx, "127.0.0.1:50052", key)
//	if err != nil { ... }             // unreachable, or the key was refused
//	defer c.Close()
//	exited, err := c.Run(ctx, &rexecv1.RunRequest{Shell: "uname -a"}, os.Stdout, os.Stderr)
//	// or, with stdin streamed to the command and EOF at its end:
//	exited, err = c.RunStdin(ctx, &rexecv1.RunRequest{Shell: "sort"}, os.Stdin, os.Stdout, os.Stderr)
//
// rawserver's doc shows the server's side.
package rawsock
