package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rexec/rexec/internal/cliflag"
	"github.com/rexec/rexec/internal/version"
)

// exitStatus is a command's exit status other than 0, after the command has
// said on stderr whatever there was to say.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// exitWith turns a command's exit status into RunE's error.
func exitWith(code int) error {
	if code == 0 {
		return nil
	}
	return exitStatus(code)
}

// Rexec runs the rexec command line and returns its exit status: the remote
// command's, 128+N for signal N, 255 when rexec itself failed (a usage error
// included), with one line on stderr that says what to do.
func Rexec(args []string, env Env) int {
	c := &command{g: &globals{}, env: env}
	c.g.defaults(env)
	root := c.rootCmd()
	root.SetArgs(append([]string{}, args...)) // never nil: cobra would read os.Args
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.Execute()
	if c.cl != nil {
		c.cl.Close()
	}
	var st exitStatus
	switch {
	case err == nil:
		return 0
	case errors.As(err, &st):
		return int(st)
	}
	// cobra's own refusals: an unknown command or flag, a bad value.
	fmt.Fprintln(env.Stderr, cliflag.Line(root, args, err))
	return ExitFailure
}

// Command returns rexec's command tree, for generated documentation (man
// pages); Rexec runs it.
func Command(env Env) *cobra.Command {
	c := &command{g: &globals{}, env: env}
	c.g.defaults(env)
	return c.rootCmd()
}

func (c *command) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "rexec [--addr HOST[:PORT] | -H TARGETS] [--key-file FILE] COMMAND",
		Short: "Run commands on a rexecd server as ssh runs them: your exit status, stdout and stderr apart",
		Long: `rexec runs commands on a rexecd server over gRPC, every call signed with a key from the key
file that rexecd made (~/.config/rexec/keys). Output arrives as it is written, stdout and stderr
apart, and the exit status is the remote command's.

Exit status: the remote command's; 128+N when signal N killed it; 255 when rexec itself failed
(connection, auth, a usage error), with one line on stderr that says what to do.

-H (or --hosts-file) names several targets: run and echo then go to each, -f at a time, every
line prefixed with its target; the exit status is 0 when all exited 0, 255 when any could not
run the command, else the highest. -H takes HOST[:PORT], ranges (node[01-20]:50051), hosts and
@groups of the config file (~/.config/rexec/config, $REXEC_CONFIG) and dns:///NAME:PORT (every
address of NAME).

Environment: REXEC_ADDR (default 127.0.0.1:50051), REXEC_RAW_ADDR (default 127.0.0.1:50052),
REXEC_KEY_FILE, REXEC_CONFIG.`,
		Example: `  rexec run -- uname -a                    # one word runs through /bin/sh -c, several are an exact argv
  echo hi | rexec run -- tr a-z A-Z         # stdin streams to the command
  rexec --addr db1 run -it -- bash          # db1:50051, a terminal
  rexec run -d -- ./long-job.sh; rexec ps   # detached; list what runs
  rexec version                             # this rexec's version, and the server's
  rexec -H node[01-20],@web run -- uptime   # many targets, each line prefixed`,
		Version:       version.String(),
		Args:          unknownCommand,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			c.g.fillPorts()
			c.flagSet = cmd.Flags().Changed
		},
		// rexec alone: the command list, on stderr, as a usage error.
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(c.env.Stderr)
			_ = cmd.Usage()
			return exitStatus(ExitFailure)
		},
	}
	root.SuggestionsMinimumDistance = 2
	root.SetVersionTemplate("rexec {{.Version}}\n")
	root.SetFlagErrorFunc(cliflag.FlagError)
	root.CompletionOptions.DisableDefaultCmd = true // completion.go has ours, with examples
	c.g.register(root.PersistentFlags())
	root.AddCommand(
		c.runCmd(), c.psCmd(), c.attachCmd(), c.logsCmd(), c.killCmd(), c.waitCmd(),
		c.shellCmd(), c.echoCmd(), c.framesCmd(),
		c.cpCmd(), c.lsCmd(), c.statCmd(), c.mkdirCmd(), c.rmCmd(), c.mvCmd(), c.dfCmd(),
		c.tokenCmd(), c.keygenCmd(), c.certsCmd(),
		c.versionCmd(), c.completionCmd(root),
	)
	return root
}

// unknownCommand refuses a word that is no command, suggesting the nearest.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(": did you mean %q?", s[0])
	}
	return cliflag.Usagef(cmd, "%s", msg)
}
