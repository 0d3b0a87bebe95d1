package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// sessionOpts are run's flags that shape a Session.
type sessionOpts struct {
	tty     bool // -t: a pseudo-terminal on the server
	noStdin bool // -n: stdin is not read (with -t: the terminal gets EOF at once)
	// orRun, when set, runs the command with Run instead if the server
	// refuses the Session for the key's scopes (PermissionDenied: nothing ran).
	orRun func() int
}

// forwarded are the signals rexec passes on to the command instead of dying
// of them. With a local terminal in raw mode Ctrl-C is a byte, not SIGINT;
// these then come only from kill(1) or a closed terminal (HUP).
var forwarded = map[os.Signal]rexecv1.Signal{
	syscall.SIGINT:  rexecv1.Signal_SIGNAL_INT,
	syscall.SIGTERM: rexecv1.Signal_SIGNAL_TERM,
	syscall.SIGHUP:  rexecv1.Signal_SIGNAL_HUP,
}

// session runs req as an ExecService.Session: stdin streams to the command
// with EOF at its end, signals are forwarded, and with -t the command gets a
// pseudo-terminal that follows the local window's size.
func (c *command) session(cl *client.Client, req *rexecv1.RunRequest, o sessionOpts) int {
	start := &rexecv1.SessionStart{Command: req}
	var stdin io.Reader = c.env.Stdin
	if o.noStdin {
		stdin = nil
	}
	termFD, isTerm := terminalFD(c.env.Stdin)
	isTerm = isTerm && !o.noStdin
	if o.tty {
		start.Tty = &rexecv1.Tty{Term: c.env.Getenv("TERM")}
		// The size of the window the user sees: stdin's terminal, else
		// stdout's; with neither the server's default (24x80).
		sizeFD, ok := termFD, isTerm
		if !ok {
			sizeFD, ok = terminalFD(c.env.Stdout)
		}
		if ok {
			if rows, cols, ok := windowSize(sizeFD); ok {
				start.Tty.Size = &rexecv1.WindowSize{Rows: uint32(rows), Cols: uint32(cols)}
			}
		}
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	if o.tty && isTerm {
		signal.Notify(sigs, syscall.SIGWINCH)
	}
	defer signal.Stop(sigs)

	var local *localTerm
	if o.tty && isTerm {
		var err error
		if local, err = makeRaw(termFD); err != nil {
			return c.fail(fmt.Errorf("putting the terminal in raw mode: %w", err))
		}
		defer local.restore()
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := cl.OpenResumableSession(ctx, start, stdin, c.resumeOpts(local != nil))
	if err != nil {
		local.restore()
		return c.failSession(err, o)
	}
	return c.waitSession(ctx, s, sigs, termFD, cancel, local, "the call was ended and the command killed", func(err error) int { return c.failSession(err, o) })
}

// waitSession forwards signals to s while it runs, restores the local
// terminal, and returns the exit status: the command's, 128+N after a
// signal that could not reach it (then ended says what became of it), or
// fail's for an error.
func (c *command) waitSession(ctx context.Context, s *client.Session, sigs <-chan os.Signal, termFD int, cancel func(), local *localTerm, ended string, fail func(error) int) int {
	fw := c.forwardSignals(s, sigs, termFD, cancel)
	exited, err := s.Wait(c.env.Stdout, c.env.Stderr)
	lastSig := fw.stop()
	local.restore()
	if err != nil {
		if ctx.Err() != nil && lastSig != 0 {
			// We gave up on the command after a signal; the server ended it.
			fmt.Fprintf(c.env.Stderr, "rexec: the signal could not reach the command (it is not reading its stdin); %s\n", ended)
			return 128 + int(lastSig)
		}
		return fail(err)
	}
	return c.report(exited)
}

// forwarder passes signals (and window resizes) on to a session until stop.
type forwarder struct {
	done, quit chan struct{}
	lastSig    syscall.Signal
}

// forwardSignals forwards sigs to s until stop. A signal that cannot be
// sent (an earlier one still waits behind stdin the command does not read)
// ends the call instead, with cancel: the server then kills the command.
func (c *command) forwardSignals(s *client.Session, sigs <-chan os.Signal, termFD int, cancel func()) *forwarder {
	f := &forwarder{done: make(chan struct{}), quit: make(chan struct{})}
	go func() {
		defer close(f.done)
		for {
			select {
			case sig := <-sigs:
				if sig == syscall.SIGWINCH {
					if rows, cols, ok := windowSize(termFD); ok {
						_ = s.Resize(rows, cols)
					}
					continue
				}
				f.lastSig = sig.(syscall.Signal)
				if err := s.Signal(forwarded[sig]); errors.Is(err, client.ErrSignalBacklog) {
					cancel()
				}
			case <-f.quit:
				return
			}
		}
	}()
	return f
}

// stop ends the forwarding and returns the last signal forwarded.
func (f *forwarder) stop() syscall.Signal {
	close(f.quit)
	<-f.done
	return f.lastSig
}

// resumeOpts say how a resumable call of rexec resumes: one line on stderr
// for each drop (raw: the terminal is in raw mode, where a line needs \r).
func (c *command) resumeOpts(raw bool) client.ResumeOptions {
	eol := "\n"
	if raw {
		eol = "\r\n"
	}
	return client.ResumeOptions{
		OnResume: func(r client.Resumed) {
			fmt.Fprintf(c.env.Stderr, "rexec: the connection to rexecd at %s dropped (%s) and was resumed after %v: execution %s goes on from output seq %d%s",
				c.g.addr, statusMessage(r.Cause), r.Took.Round(time.Millisecond), r.ExecutionID, r.FromSeq, eol)
		},
		OnGap: func(g *rexecv1.Gap) {
			fmt.Fprintf(c.env.Stderr, "rexec: %s%s", gapLine(g), eol)
		},
	}
}

// gapLine says what output the journal no longer held.
func gapLine(g *rexecv1.Gap) string {
	what := fmt.Sprintf("output seq %d-%d", g.GetFirstSeq(), g.GetLastSeq())
	if g.GetBytes() > 0 {
		what += fmt.Sprintf(" (%d bytes)", g.GetBytes())
	}
	return what + " was evicted from the server's journal before it was read (--journal-max, --journal-total)"
}

// failSession is fail, with a hint for a key without the session scope;
// or, for -n, the same command with Run, which needs only exec.
func (c *command) failSession(err error, o sessionOpts) int {
	if status.Code(err) == codes.PermissionDenied && o.orRun != nil {
		return o.orRun()
	}
	if status.Code(err) == codes.PermissionDenied {
		fmt.Fprintln(c.env.Stderr, c.explain(err)+"; `rexec run` streams stdin with the session scope, `rexec run -n` needs only exec")
		return ExitFailure
	}
	return c.fail(err)
}
