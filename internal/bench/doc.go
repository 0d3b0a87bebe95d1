// Package bench measures rexec against its baselines: it starts a real
// rexecd binary on loopback, drives it with the Go client, and samples the
// server's memory from /proc. cmd/rexec-bench is its command line.
package bench
