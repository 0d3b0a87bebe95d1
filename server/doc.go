// Package server implements rexec's gRPC services — ExecService over the
// runner, EchoService, health and reflection — and wires them into a
// *grpc.Server with auth, keepalive and limits.
//
//	srv, err := server.New(server.Config{Keys: ring, Logger: logger})
//	go srv.Serve(lis)
//	...
//	srv.Shutdown(30 * time.Second) // running commands get the grace, then are killed
package server
