// Command mangen writes the man pages of rexec (one per command: rexec.1,
// rexec-run.1, …) and rexecd (rexecd.8) into a directory, from the same
// cobra commands as --help, so the two never disagree:
//
//	go run ./internal/mangen man && man -l man/rexec-run.1
//
// It is a program of its own so that rexec and rexecd do not link the man
// page renderer.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/rexec/rexec/internal/cli"
	"github.com/rexec/rexec/internal/daemon"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./internal/mangen DIR")
		os.Exit(2)
	}
	if err := write(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "mangen:", err)
		os.Exit(1)
	}
}

// write generates every page into dir.
func write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	env := cli.Env{Stdin: os.Stdin, Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}
	rexec := cli.Command(env)
	rexecd := daemon.Command(io.Discard, io.Discard, func(string) string { return "" })
	for _, p := range []struct {
		cmd     *cobra.Command
		section string
	}{{rexec, "1"}, {rexecd, "8"}} {
		p.cmd.DisableAutoGenTag = true // no date: the pages are reproducible
		hdr := &doc.GenManHeader{Title: p.cmd.Name(), Section: p.section, Source: "rexec", Manual: "rexec manual"}
		if err := doc.GenManTree(p.cmd, hdr, dir); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dir, p.cmd.Name()), err)
		}
	}
	return nil
}
