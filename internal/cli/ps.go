package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/cliflag"
)

func (c *command) psCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "ps [-a]",
		Short: "List your executions: running ones, and with -a those the journal still keeps",
		Long: `List the executions of your key, newest first: id, state, start, duration, key and command.
With -a also the ended ones that rexecd's journal still keeps (--retain, 1 h), with how they
ended: "exited N", "killed (SIG)" for a signal, "timeout", "cancelled", "shutdown" (the server
stopped: also those a restart found running), "disconnected" (no client came back within the
reconnect grace). A running one says whether a client is attached, or when its grace ends.
A key whose line lists admin sees every key's executions. Needs the scope exec.`,
		Example: `  rexec ps                       # what runs now
  rexec ps -a                    # and what ended, as long as the journal keeps it
  rexec logs $(rexec ps -a | awk 'NR==2 {print $1}')   # the newest one's output`,
		Args: cliflag.NoArgs("ps takes flags only"),
		RunE: func(*cobra.Command, []string) error { return exitWith(c.ps(all)) },
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "also the ended executions the journal keeps")
	return cmd
}

func (c *command) ps(all bool) int {
	cl, err := c.dial()
	if err != nil {
		return c.fail(err)
	}
	ctx, _, stop := signalContext()
	defer stop()
	resp, err := cl.ListExecutions(ctx, all, 0)
	if err != nil {
		return c.fail(err)
	}
	tw := tabwriter.NewWriter(c.env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EXECUTION\tSTATE\tSTARTED\tDURATION\tKEY\tCOMMAND")
	now := time.Now()
	for _, ex := range resp.GetExecutions() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ex.GetExecutionId(), stateText(ex, now),
			ex.GetStartedAt().AsTime().Local().Format("2006-01-02 15:04:05"), durationText(ex, now),
			ex.GetKeyId(), oneLine(ex.GetCommand(), 60))
	}
	tw.Flush()
	if resp.GetTruncated() {
		fmt.Fprintln(c.env.Stderr, "rexec: more executions than listed; the newest are shown")
	}
	return 0
}

// stateText says in a few words where an execution stands.
func stateText(ex *rexecv1.Execution, now time.Time) string {
	e := ex.GetExited()
	if e == nil {
		switch {
		case ex.GetAttached():
			return "running, attached"
		case ex.GetGraceEndsAt() != nil:
			return fmt.Sprintf("running, no client (grace ends in %v)", ex.GetGraceEndsAt().AsTime().Sub(now).Round(time.Second))
		case ex.GetLifetime() == rexecv1.Lifetime_LIFETIME_DETACHED:
			return "running, detached"
		}
		return "running"
	}
	switch e.GetReason() {
	case rexecv1.EndReason_END_REASON_TIMEOUT:
		return "timeout (" + e.GetSentSignal() + ")"
	case rexecv1.EndReason_END_REASON_CANCELLED:
		return "cancelled (" + e.GetSentSignal() + ")"
	case rexecv1.EndReason_END_REASON_SHUTDOWN:
		return "shutdown (" + e.GetSentSignal() + ")"
	case rexecv1.EndReason_END_REASON_DISCONNECTED:
		return "disconnected (" + e.GetSentSignal() + ")"
	case rexecv1.EndReason_END_REASON_OOM:
		return "oom (" + e.GetSentSignal() + ")"
	}
	if e.GetSignal() != "" {
		return "killed (" + e.GetSignal() + ")"
	}
	return fmt.Sprintf("exited %d", e.GetExitCode())
}

func durationText(ex *rexecv1.Execution, now time.Time) string {
	end := now
	if ex.GetEndedAt() != nil {
		end = ex.GetEndedAt().AsTime()
	}
	d := end.Sub(ex.GetStartedAt().AsTime())
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// oneLine shows s on one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
