package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/cliflag"
)

// runOpts are the flags of rexec run.
type runOpts struct {
	timeout time.Duration
	dir     string
	maxOut  uint64
	raw     bool
	env     envList
	limits  limitList
	usage   bool // --usage: print what the command used on stderr
	stdin   bool // -i: stream stdin (the default; for -it)
	detach  bool // -d: start it detached and print its id
	so      sessionOpts
	fleet   fleetOutput
}

func (c *command) runCmd() *cobra.Command {
	var o runOpts
	cmd := &cobra.Command{
		Use:   "run [flags] -- CMD [ARG...]",
		Short: "Run a command on the server; its output and exit status are yours",
		Long: `Run CMD on the server. One word runs through /bin/sh -c (so pipes work); several words are an
exact argv, with no shell.

stdin streams to the command, with EOF at its end, as ssh does (-n: no stdin, the command reads
EOF at once). -t gives the command a pseudo-terminal of your window's size; your terminal goes
into raw mode, so Ctrl-C and every key go to the remote terminal. Without -t, SIGINT (Ctrl-C),
SIGTERM and SIGHUP are forwarded to the remote process group, so the exit status is the command's.

If the connection breaks while the command runs, rexec redials and resumes it where the output
stopped, stdin included, and says so in one line on stderr: no byte is lost or repeated, and the
exit status is the command's. rexecd keeps the command running for its --reconnect-grace (30 s)
meanwhile; a killed rexec cannot be told from a broken network, so its command lives that long
too (rexec attach ID takes it up). Ctrl-C and --timeout still end the command at once.

-d starts the command detached: it outlives rexec (stdin /dev/null, output to rexecd's journal),
and rexec prints its execution id for ps, attach, logs, kill and wait.

--raw runs over the raw socket transport (--raw-addr) instead of gRPC: stdin streams there too
(unless -n), but it has no -t and no resume, and Ctrl-C closes the connection, which kills the
command.

With several targets (-H, --hosts-file) stdin is not read (-n is implied); -t, -i, -d and --raw
are refused. Every line comes prefixed "NAME: "; -b gathers identical results into one block,
--output-dir writes NAME.out, NAME.err and NAME.status, --json prints one record per target.
The exit status is 0 when all exited 0, 255 when any could not run the command, else the
highest; a summary ends on stderr, and --failed-file lists the targets that did not exit 0.`,
		Example: `  rexec run -- uname -a
  rexec run -- 'ls /etc | wc -l'              # one word: a shell command line
  rexec run -- echo '$HOME'                   # several words: an exact argv, prints $HOME
  rexec run --timeout 5 --env GREETING=hi -- 'echo $GREETING; sleep 10'   # killed after 5 s: exit 143
  cat big.bin | rexec run -- sha256sum        # stdin streams
  rexec run -it -- bash                       # an interactive shell on a terminal
  rexec run -n -- make -C /srv/app            # no stdin, as ssh -n: for scripts and loops
  rexec run --limit memory=512M --usage -- make   # at most 512 MiB; what it used, on stderr
  id=$(rexec run -d -- ./long-job.sh)         # detached: prints its execution id
  rexec logs -f "$id"; rexec wait "$id"       # follow its output; exit with its status
  rexec -H node[01-20] run -- uptime          # on 20 targets, 64 at a time, each line prefixed
  rexec -H @web run -b -- 'uname -r'          # a config group; identical results in one block`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.stdin && o.so.noStdin {
				return cliflag.Usagef(cmd, "-i and -n contradict each other: -i streams stdin to the command, -n gives it none; drop one")
			}
			if o.detach && (o.so.tty || o.stdin || o.raw) {
				return cliflag.Usagef(cmd, "-d runs the command detached, with stdin /dev/null and over gRPC: drop -t, -i and --raw (rexec attach ID takes it up later)")
			}
			if o.detach && o.usage {
				return cliflag.Usagef(cmd, "-d returns once the command has started, before it has used anything: drop --usage, and ask rexec wait --usage ID")
			}
			return exitWith(c.run(&o, args))
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false) // rexec run ls -l: -l is the remote command's
	f.Var(cliflag.Duration{D: &o.timeout}, "timeout", "kill the command after this long: 30s, 5m, or a number of seconds (default: the server's maximum)")
	f.StringVar(&o.dir, "dir", "", "working directory on the server")
	f.Uint64Var(&o.maxOut, "max-output", 0, "forward at most this many output bytes; the rest is counted (default: the server's maximum)")
	f.BoolVar(&o.raw, "raw", false, "use the raw socket transport (--raw-addr) instead of gRPC")
	f.Var(&o.env, "env", "KEY=VALUE for the command's environment (repeatable); LANG and LC_* are sent as ssh's SendEnv does")
	f.Var(&o.limits, "limit", "a resource limit, NAME=VALUE as in the key file: memory=512M, pids=N, cpu=1.5, nofile=N, fsize=1G (repeatable; at most the key's)")
	f.BoolVar(&o.usage, "usage", false, "print what the command used (CPU time, peak memory, peak processes) on stderr at the end")
	f.BoolVarP(&o.so.tty, "tty", "t", false, "run the command on a pseudo-terminal (Ctrl-C and every key go to it)")
	f.BoolVarP(&o.so.noStdin, "no-stdin", "n", false, "do not read stdin: the command reads EOF (as ssh -n)")
	f.BoolVarP(&o.stdin, "stdin", "i", false, "stream stdin to the command (the default; -it as with docker and kubectl)")
	f.BoolVarP(&o.detach, "detach", "d", false, "start the command detached (it outlives rexec) and print its execution id")
	o.fleet.register(f)
	c.g.fleet.registerFanout(f)
	return cmd
}

func (c *command) run(o *runOpts, args []string) int {
	if len(args) == 0 {
		return c.fail(errors.New("run: no command given: rexec run -- CMD [ARG...]"))
	}
	c.usage = o.usage
	req := &rexecv1.RunRequest{Env: append(localeEnv(c.env.Getenv), o.env...), Dir: o.dir, MaxOutputBytes: o.maxOut, Limits: o.limits.proto()}
	if len(args) == 1 {
		req.Shell = args[0]
	} else {
		req.Argv = args
	}
	if o.timeout != 0 {
		req.Timeout = durationpb.New(o.timeout)
	}
	if c.g.fleet.used() {
		ts, err := c.targets(context.Background())
		if err != nil {
			return c.fail(err)
		}
		if len(ts) > 1 {
			return c.runOnFleet(ts, req, o)
		}
	}
	so := o.so
	if o.raw {
		if so.tty {
			return c.fail(errors.New("run: -t needs gRPC: the raw transport has no terminal (drop --raw)"))
		}
		// The raw transport streams stdin unless -n.
		var stdin io.Reader
		if !so.noStdin {
			stdin = c.env.Stdin
		}
		return c.runPlain(req, true, stdin)
	}
	cl, err := c.dial()
	if err != nil {
		return c.fail(err)
	}
	if o.detach {
		return c.detach(cl, req)
	}
	// stdin, a terminal, or forwarded signals need the Session RPC. With -n
	// a key with the session scope still uses it, stdin closed at once, so
	// that Ctrl-C is SIGINT for the command; an exec-only key uses Run,
	// where Ctrl-C ends the call.
	if so.tty || !so.noStdin || c.key.Allows(interceptors.ScopeSession) {
		if so.noStdin && !so.tty {
			// The server may give this key fewer scopes than the client's
			// copy of the key file says: then Run, which -n asked for.
			so.orRun = func() int { return c.runPlain(req, false, nil) }
		}
		return c.session(cl, req, so)
	}
	return c.runPlain(req, false, nil)
}

// runPlain runs req with Run over gRPC (no stdin) or on the raw transport
// (stdin streams when not nil); a signal ends the call, and the server then
// kills the command's group.
func (c *command) runPlain(req *rexecv1.RunRequest, raw bool, stdin io.Reader) int {
	ctx, sig, stop := signalContext()
	defer stop()
	run, closeConn, err := c.dialRun(ctx, raw, stdin)
	if err != nil {
		return c.fail(err)
	}
	defer closeConn()
	exited, err := run(ctx, req, c.env.Stdout, c.env.Stderr)
	if ctx.Err() != nil && (err != nil || exited.GetReason() == rexecv1.EndReason_END_REASON_CANCELLED) {
		// Our own signal ended the call: the server killed the command.
		return 128 + int(sig())
	}
	if err != nil {
		return c.fail(err)
	}
	return c.report(exited)
}

// detach starts req detached and prints its execution id.
func (c *command) detach(cl *client.Client, req *rexecv1.RunRequest) int {
	ctx, _, stop := signalContext()
	defer stop()
	st, err := cl.Detach(ctx, req)
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintln(c.env.Stdout, st.GetExecutionId())
	return 0
}
