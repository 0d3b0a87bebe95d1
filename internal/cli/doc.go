// Package cli is the command line of rexec and rexecd: flags and environment
// into config, then calls into client, server and rawsock. The mains in cmd/
// only call Rexec or Rexecd, so every behaviour here is testable in-process
// and with testscript.
package cli
