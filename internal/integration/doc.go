// Package integration holds tests that drive a real rexec server with the
// real outside tools users reach for — grpcurl and buf — built at pinned
// versions by scripts/tools.sh.
package integration
