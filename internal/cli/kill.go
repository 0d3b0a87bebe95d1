package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/cliflag"
)

func (c *command) killCmd() *cobra.Command {
	var sig string
	cmd := &cobra.Command{
		Use:   "kill [-s SIG] ID",
		Short: "End an execution (TERM, then KILL), or send it a signal",
		Long: `Without -s, end execution ID as rexec ends a command: TERM to its process group, KILL after
rexecd's --kill-grace; it ends with reason cancelled. With -s, send that one signal to its process
group (with a terminal, to its foreground job): HUP, INT, QUIT, KILL, USR1, USR2, TERM or WINCH,
by name (TERM, SIGTERM) or number. An execution that has ended is left as it is. Needs the scope
exec; a key sees only its own executions (one whose line lists admin sees all).`,
		Example: `  rexec kill 3f9a1c2e4b5d6e7f            # TERM, then KILL
  rexec kill -s INT 3f9a1c2e4b5d6e7f     # what Ctrl-C would send
  rexec kill -s HUP "$(rexec run -d -- ./server)"`,
		Args: cliflag.ExactArgs(1, "kill takes one execution id (rexec ps lists them)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s := rexecv1.Signal_SIGNAL_UNSPECIFIED
			if sig != "" {
				var ok bool
				if s, ok = parseSignal(sig); !ok {
					return cliflag.Usagef(cmd, "-s %q: want one of HUP, INT, QUIT, KILL, USR1, USR2, TERM, WINCH (a name or its number)", sig)
				}
			}
			return exitWith(c.kill(args[0], s))
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "send this signal instead of ending the command (TERM, INT, HUP, KILL, …)")
	return cmd
}

// parseSignal reads a signal as people write it: TERM, SIGTERM, term, 15.
func parseSignal(s string) (rexecv1.Signal, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		_, ok := rexecv1.Signal_name[int32(n)]
		return rexecv1.Signal(n), ok && n != 0
	}
	name := "SIGNAL_" + strings.TrimPrefix(strings.ToUpper(s), "SIG")
	v, ok := rexecv1.Signal_value[name]
	return rexecv1.Signal(v), ok && v != 0
}

func (c *command) kill(id string, sig rexecv1.Signal) int {
	cl, err := c.dial()
	if err != nil {
		return c.fail(err)
	}
	ctx, _, stop := signalContext()
	defer stop()
	ex, err := cl.Kill(ctx, id, sig)
	if err != nil {
		return c.fail(err)
	}
	if ex.GetExited() != nil {
		fmt.Fprintf(c.env.Stderr, "rexec: execution %s had already ended (%s)\n", id, stateText(ex, ex.GetEndedAt().AsTime()))
	}
	return 0
}
