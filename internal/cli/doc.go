// Package cli is the rexec command line, on cobra: one file per command
// (run.go, shell.go, echo.go, frames.go, token.go, keygen.go, certs.go,
// version.go, completion.go), flags and environment into options, then calls
// into client and rawsock. cmd/rexec only calls Rexec, so every behaviour
// here is testable in-process and with testscript.
//
// rexecd's command line is internal/daemon: this package links no server,
// runner or reflection code, which keeps rexec's cold start short and lets it
// build for every OS a laptop runs.
package cli
