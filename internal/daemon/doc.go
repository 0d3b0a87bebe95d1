// Package daemon is rexecd's command line and its serving loop: flags and
// environment into a DaemonConfig, then the gRPC server and the raw socket
// listener over one runner, until a signal stops them. cmd/rexecd only
// calls Rexecd; tests call RunDaemon with a config of their own.
//
// It is apart from internal/cli (rexec's command line) so that the rexec
// binary links no server, runner or reflection code.
package daemon
