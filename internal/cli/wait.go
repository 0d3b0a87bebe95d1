package cli

import (
	"github.com/spf13/cobra"

	"github.com/rexec/rexec/internal/cliflag"
)

func (c *command) waitCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wait ID",
		Short: "Wait for an execution to end, and exit with its status",
		Long: `Wait until execution ID has ended, then exit with its status as rexec run would: the
command's, 128+N for signal N, 128+N of the signal rexec sent when rexec ended it (a timeout, a
kill, a shutdown, no client within the reconnect grace; 137 for an OOM kill), with the reason on
stderr; --usage prints what it used, as rexec run --usage does. Needs the scope exec.`,
		Example: `  id=$(rexec run -d -- make test)
  rexec wait "$id" && echo passed
  rexec wait --usage "$id"                  # and its CPU time, peak memory and processes`,
		Args: cliflag.ExactArgs(1, "wait takes one execution id (rexec ps lists them)"),
		RunE: func(_ *cobra.Command, args []string) error { return exitWith(c.wait(args[0])) },
	}
	cmd.Flags().BoolVar(&c.usage, "usage", false, "print what the command used (CPU time, peak memory, peak processes) on stderr")
	return cmd
}

func (c *command) wait(id string) int {
	cl, err := c.dial()
	if err != nil {
		return c.fail(err)
	}
	ctx, _, stop := signalContext()
	defer stop()
	ex, err := cl.GetExecution(ctx, id, true)
	if err != nil {
		return c.fail(err)
	}
	return c.report(ex.GetExited())
}
