package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/cliflag"
)

func (c *command) logsCmd() *cobra.Command {
	var (
		follow bool
		from   uint64
	)
	cmd := &cobra.Command{
		Use:   "logs [-f] [--from SEQ] ID",
		Short: "Print an execution's output from rexecd's journal; -f follows it live",
		Long: `Print what rexecd's journal holds of execution ID's output, stdout to stdout and stderr to
stderr, in the order the server read it; with -f go on with live output until the command ends.
--from starts at that output seq (each chunk of output has one). Output the journal no longer
holds (past --journal-max, --journal-total) is said in one line on stderr. Reading does not
attach: the command is not touched. Needs the scope exec.`,
		Example: `  rexec logs 3f9a1c2e4b5d6e7f
  rexec logs -f "$(rexec run -d -- ./build.sh)"    # follow a detached build
  rexec logs 3f9a1c2e4b5d6e7f 2>/dev/null | tail   # stdout only`,
		Args: cliflag.ExactArgs(1, "logs takes one execution id (rexec ps -a lists them)"),
		RunE: func(_ *cobra.Command, args []string) error { return exitWith(c.logs(args[0], from, follow)) },
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "go on with live output until the command ends")
	cmd.Flags().Uint64Var(&from, "from", 0, "start at this output seq (default: the oldest the journal holds)")
	return cmd
}

func (c *command) logs(id string, from uint64, follow bool) int {
	cl, err := c.dial()
	if err != nil {
		return c.fail(err)
	}
	ctx, _, stop := signalContext()
	defer stop()
	_, _, err = cl.Logs(ctx, id, from, follow, c.env.Stdout, c.env.Stderr, func(g *rexecv1.Gap) {
		fmt.Fprintln(c.env.Stderr, "rexec: "+gapLine(g))
	})
	if err != nil {
		if ctx.Err() != nil {
			return 0 // Ctrl-C ends a follow
		}
		return c.fail(err)
	}
	return 0
}
