// Command rexec-bench measures rexec on this machine. See `rexec-bench -h`.
package main

import (
	"os"

	"github.com/rexec/rexec/internal/bench"
)

func main() { os.Exit(bench.Main(os.Args[1:])) }
