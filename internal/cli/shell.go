package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/cliflag"
)

// shellPrompt is what the classic socket lesson's client prints.
const shellPrompt = ">> "

// maxShellLine bounds one line of `rexec shell` input.
const maxShellLine = 1 << 20

func (c *command) shellCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "shell [--timeout D]",
		Short: `The classic socket lesson's client: a ">> " prompt, each line run on the server`,
		Long: `A ">> " prompt: each line runs on the server with Run (no stdin: the prompt owns it), its
output is printed, and "[exit N]" on stderr when N is not 0. "exit [N]" or EOF ends it with N or
the last status, as sh does; Ctrl-C ends the running command, not the shell.`,
		Example: `  rexec shell
  printf 'uname -a\nexit\n' | rexec shell       # one command a line, from a script`,
		Args: cliflag.NoArgs("type commands at the prompt"),
		RunE: func(cmd *cobra.Command, _ []string) error { return exitWith(c.shell(timeout)) },
	}
	cmd.Flags().Var(cliflag.Duration{D: &timeout}, "timeout", "kill each command after this long: 30s, 5m, or a number of seconds (default: the server's maximum)")
	return cmd
}

// shell is the classic lesson's client: a prompt, one command a line, each
// run with ExecService.Run (so with no stdin: the shell owns it), its output
// printed, and its status when it is not 0. `exit [N]` or EOF ends it, with
// N or the last command's status, as sh does. Ctrl-C ends the running
// command (the server kills its process group), not the shell.
func (c *command) shell(timeout time.Duration) int {
	if code, ok := c.oneTarget("shell"); !ok {
		return code
	}
	cl, err := c.dial()
	if err != nil {
		return c.fail(err)
	}
	defer cl.Close()

	// Lines come from a goroutine, so that a signal can end the shell while
	// it waits at the prompt. A Read pending then is left to the process's exit.
	lines := make(chan string)
	readErr := make(chan error, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(c.env.Stdin)
		sc.Buffer(make([]byte, 4096), maxShellLine)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-done:
				return
			}
		}
		readErr <- sc.Err()
	}()

	var (
		mu      sync.Mutex
		current context.CancelFunc // the running command's, or nil
		quit    = make(chan syscall.Signal, 1)
	)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	stopSigs := make(chan struct{})
	sigsDone := make(chan struct{})
	defer func() { close(stopSigs); <-sigsDone }()
	go func() {
		defer close(sigsDone)
		for {
			select {
			case sig := <-sigs:
				mu.Lock()
				if current != nil {
					current()
				} else if sig == syscall.SIGINT {
					// At the prompt: the terminal dropped the line; prompt again.
					fmt.Fprint(c.env.Stdout, "\n"+shellPrompt)
				}
				mu.Unlock()
				if sig != syscall.SIGINT {
					select {
					case quit <- sig.(syscall.Signal):
					default:
					}
				}
			case <-stopSigs:
				return
			}
		}
	}()

	last := 0
	for {
		mu.Lock()
		fmt.Fprint(c.env.Stdout, shellPrompt)
		mu.Unlock()
		var line string
		var ok bool
		select {
		case line, ok = <-lines:
		case sig := <-quit:
			fmt.Fprintln(c.env.Stdout)
			return 128 + int(sig)
		}
		if !ok {
			fmt.Fprintln(c.env.Stdout)
			if err := <-readErr; err != nil {
				return c.fail(fmt.Errorf("shell: reading stdin: %w", err))
			}
			return last
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if word, arg, _ := strings.Cut(line, " "); word == "exit" {
			if arg = strings.TrimSpace(arg); arg == "" {
				return last
			}
			n, err := strconv.Atoi(arg)
			if err != nil || n < 0 || n > 255 {
				fmt.Fprintf(c.env.Stderr, "rexec shell: exit %s: want a status from 0 to 255\n", arg)
				continue
			}
			return n
		}
		req := &rexecv1.RunRequest{Shell: line, Env: localeEnv(c.env.Getenv)}
		if timeout != 0 {
			req.Timeout = durationpb.New(timeout)
		}
		ctx, cancel := context.WithCancel(context.Background())
		mu.Lock()
		current = cancel
		mu.Unlock()
		exited, err := cl.Run(ctx, req, c.env.Stdout, c.env.Stderr)
		mu.Lock()
		current = nil
		mu.Unlock()
		interrupted := ctx.Err() != nil
		cancel()
		switch {
		case err != nil && interrupted:
			fmt.Fprintln(c.env.Stderr, "\nrexec: interrupted; the server killed the command")
			last = 128 + int(syscall.SIGINT)
		case err != nil:
			fmt.Fprintln(c.env.Stderr, c.explain(err))
			last = ExitFailure
		default:
			last = c.report(exited)
			if last != 0 {
				fmt.Fprintf(c.env.Stderr, "[exit %d%s]\n", last, signalNote(exited))
			}
		}
		select {
		case sig := <-quit:
			return 128 + int(sig)
		default:
		}
	}
}

// signalNote names the signal that killed a command, for the status line.
func signalNote(e *rexecv1.Exited) string {
	if e.GetSignal() == "" {
		return ""
	}
	return ": killed by SIG" + e.GetSignal()
}
