package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/cliflag"
)

func (c *command) attachCmd() *cobra.Command {
	var (
		from    uint64
		noStdin bool
	)
	cmd := &cobra.Command{
		Use:   "attach [--from SEQ] [-n] ID",
		Short: "Take up an execution's stream: its output from the start (or SEQ), then live; exit with its status",
		Long: `Attach to execution ID — a detached one (rexec run -d), or one whose rexec went away (killed, or
its network broke for longer than rexec kept trying): print its output from the oldest the
journal holds (or --from SEQ), then live, and exit with its status as rexec run would. A command
started with stdin gets yours (-n: none), a terminal's keys and window size included; SIGINT,
SIGTERM and SIGHUP are forwarded to it, as rexec run does. If the connection breaks, attach
resumes as run does. Another client attached to it is detached (its rexec says so and exits
255). Needs the scope exec.`,
		Example: `  id=$(rexec run -d -- ./long-job.sh); rexec attach "$id"
  rexec attach --from 120 3f9a1c2e4b5d6e7f     # from output seq 120 on
  rexec attach -n 3f9a1c2e4b5d6e7f </dev/null  # watch it, send it no stdin`,
		Args: cliflag.ExactArgs(1, "attach takes one execution id (rexec ps lists them)"),
		RunE: func(_ *cobra.Command, args []string) error { return exitWith(c.attach(args[0], from, noStdin)) },
	}
	cmd.Flags().Uint64Var(&from, "from", 0, "start at this output seq (default: the oldest the journal holds)")
	cmd.Flags().BoolVarP(&noStdin, "no-stdin", "n", false, "send the command none of your stdin")
	return cmd
}

func (c *command) attach(id string, from uint64, noStdin bool) int {
	cl, err := c.dial()
	if err != nil {
		return c.fail(err)
	}
	var stdin io.Reader = c.env.Stdin
	if noStdin {
		stdin = nil
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	termFD, isTerm := terminalFD(c.env.Stdin)
	isTerm = isTerm && !noStdin
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var local *localTerm
	s, err := cl.Attach(ctx, id, from, stdin, c.resumeOpts(false))
	if err != nil {
		return c.fail(err)
	}
	a := s.Attached()
	if g := a.GetExecution(); from > 1 && g.GetFirstSeq() > from {
		fmt.Fprintln(c.env.Stderr, "rexec: "+gapLine(&rexecv1.Gap{FirstSeq: from, LastSeq: g.GetFirstSeq() - 1}))
	}
	if a.GetExecution().GetTty() && isTerm && a.GetStdin() != nil {
		// Its terminal's keys are ours, as with rexec run -t; and it learns
		// our window's size (a full-screen program redraws for it).
		if local, err = makeRaw(termFD); err == nil {
			defer local.restore()
			signal.Notify(sigs, syscall.SIGWINCH)
			if rows, cols, ok := windowSize(termFD); ok {
				_ = s.Resize(rows, cols)
			}
		}
	}
	return c.waitSession(ctx, s, sigs, termFD, cancel, local, "the command was ended", c.fail)
}
