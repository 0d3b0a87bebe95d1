// Command rexec runs commands on a rexecd server. See `rexec --help`.
package main

import (
	"os"

	"github.com/rexec/rexec/internal/cli"
)

func main() { os.Exit(cli.Rexec(os.Args[1:], cli.OSEnv())) }
