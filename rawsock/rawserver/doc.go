// Package rawserver serves rexec's raw socket protocol (package rawsock,
// docs/PROTOCOL.md) over the runner: the handshake with its bounded table,
// one command at a time per connection, stdin and signal frames, idle and
// shutdown rules. It shares its runner with the gRPC server, so that both
// count against one --max-concurrent, and its journal, so that both keep and
// read their commands' events the same way:
//
//	srv := rawserver.New(rawserver.Config{Keys: ring, Runner: run, Journal: j})
//	go srv.Serve(lis)
//	...
//	srv.Shutdown(10 * time.Second)
package rawserver
