// Command rexecd serves rexec over gRPC. See `rexecd -h`.
package main

import (
	"os"

	"github.com/rexec/rexec/internal/cli"
)

func main() { os.Exit(cli.Rexecd(os.Args[1:], cli.OSEnv())) }
