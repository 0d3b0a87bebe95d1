// Command rexecd serves rexec over gRPC. See `rexecd --help`.
package main

import (
	"os"

	"github.com/rexec/rexec/internal/daemon"
)

func main() { os.Exit(daemon.Rexecd(os.Args[1:], os.Stdout, os.Stderr, os.Getenv)) }
