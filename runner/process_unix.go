//go:build unix

package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Process is a started command. Call Wait exactly once; it releases
// everything the command holds.
type Process struct {
	r      *Runner
	spec   Spec
	id     string
	cmd    *exec.Cmd
	ctx    context.Context
	cancel context.CancelCauseFunc
	start  time.Time

	// startErr is set when the command could not be executed (argv[0] not
	// found or not executable): Wait reports it as a shell would, 127 or 126.
	startErr error

	outputs []*os.File // read ends: stdout, stderr; or the pty master alone
	stdin   *os.File   // write end of stdin (or the pty master), when open
	tty     *os.File   // the pty master, in tty mode

	chunks  chan chunk
	stop    chan struct{} // closed when Wait is done with the readers
	readers sync.WaitGroup
	exited  chan struct{} // closed once cmd.Wait returned
	state   *os.ProcessState
	waitErr error
	feeder  sync.WaitGroup // the goroutine copying Spec.Stdin, if any
}

type chunk struct {
	stream Stream
	buf    *[]byte
	n      int
}

// Start validates spec, takes a slot and starts the command. It returns a
// *FieldError for a bad spec, ErrTooManyCommands at the limit, and the cause
// of ctx when ctx is already done; in each case nothing was started.
func (r *Runner) Start(ctx context.Context, spec Spec) (*Process, error) {
	if err := r.opts.check(&spec); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	select {
	case r.slots <- struct{}{}:
	default:
		return nil, fmt.Errorf("%w: %d of %d", ErrTooManyCommands, len(r.slots), cap(r.slots))
	}
	p, err := r.start(ctx, spec)
	if err != nil {
		<-r.slots
		return nil, err
	}
	return p, nil
}

func (r *Runner) start(parent context.Context, spec Spec) (*Process, error) {
	timeout := spec.Timeout
	if timeout == 0 {
		timeout = r.opts.MaxTimeout
	}
	if spec.MaxOutput == 0 || spec.MaxOutput > r.opts.MaxOutput {
		spec.MaxOutput = r.opts.MaxOutput
	}
	ctx, cancel := context.WithCancelCause(parent)
	tctx, tcancel := context.WithTimeoutCause(ctx, timeout, ErrTimeout)
	p := &Process{
		r: r, spec: spec, id: newExecID(), ctx: tctx,
		cancel: func(err error) { cancel(err); tcancel() },
		chunks: make(chan chunk),
		stop:   make(chan struct{}),
		exited: make(chan struct{}),
	}

	var cmd *exec.Cmd
	if spec.Shell != "" {
		cmd = exec.Command("/bin/sh", "-c", spec.Shell)
	} else {
		cmd = exec.Command(spec.Argv[0], spec.Argv[1:]...)
	}
	cmd.Env = append(r.environ[:len(r.environ):len(r.environ)], spec.Env...)
	if spec.TTY != nil {
		cmd.Env = append(cmd.Env, "TERM="+termOf(spec.TTY))
	}
	cmd.Dir = spec.Dir
	p.cmd = cmd

	var err error
	if spec.TTY != nil {
		err = p.startTTY()
	} else {
		err = p.startPipes()
	}
	if err != nil {
		p.cancel(nil)
		if code := execFailureCode(err); code != 0 {
			// As a shell does: the command could not be executed. Wait
			// reports it as stderr text and an exit status, not an error.
			p.startErr = err
			p.start = time.Now()
			close(p.exited)
			return p, nil
		}
		return nil, fmt.Errorf("start %s: %w", spec.Describe(), err)
	}
	p.start = time.Now()
	r.opts.Guard.add(cmd.Process.Pid)
	go func() {
		p.waitErr = cmd.Wait()
		p.state = cmd.ProcessState
		close(p.exited)
	}()
	for i, f := range p.outputs {
		p.readers.Add(1)
		go p.read(f, Stream(i+1))
	}
	if spec.Stdin != nil {
		p.feeder.Add(1)
		go p.feed(spec.Stdin)
	}
	return p, nil
}

func (p *Process) startPipes() error {
	var closeOnErr, childEnds []*os.File
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
	}()
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			closeOnErr = append(closeOnErr, r, w)
		}
		return r, w, err
	}
	outR, outW, err := pipe()
	if err != nil {
		return err
	}
	errR, errW, err := pipe()
	if err != nil {
		closeAll(closeOnErr)
		return err
	}
	p.cmd.Stdout, p.cmd.Stderr = outW, errW
	childEnds = append(childEnds, outW, errW)
	if p.spec.Stdin != nil || p.spec.OpenStdin {
		inR, inW, err := pipe()
		if err != nil {
			closeAll(closeOnErr)
			return err
		}
		p.cmd.Stdin = inR
		childEnds = append(childEnds, inR)
		p.stdin = inW
	}
	// Its own process group, so that one signal reaches the command and
	// everything it started.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		closeAll(closeOnErr)
		p.stdin = nil
		return err
	}
	p.outputs = []*os.File{outR, errR}
	if size := p.r.opts.PipeSize; size > 0 {
		_ = control(outR, func(fd int) error {
			_, err := unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, size)
			return err // best effort: the default size works, only slower
		})
	}
	return nil
}

func (p *Process) startTTY() error {
	size := &pty.Winsize{Rows: p.spec.TTY.Rows, Cols: p.spec.TTY.Cols}
	// pty.StartWithAttrs makes the command a session leader (Setsid) with the
	// terminal as its controlling tty; a session leader leads its group too.
	master, err := pty.StartWithAttrs(p.cmd, size, &syscall.SysProcAttr{Setsid: true, Setctty: true})
	if err != nil {
		return err
	}
	if master, err = pollable(master); err != nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		return err
	}
	p.tty = master
	p.outputs = []*os.File{master}
	p.stdin = master
	if p.spec.Stdin == nil && !p.spec.OpenStdin {
		p.stdin = nil
	}
	return nil
}

// pollable returns f as a non-blocking file on Go's poller, so that Close
// unblocks a pending Read: pty leaves its master in blocking mode (it calls
// Fd), where a Read blocked on a terminal that a background job holds would
// outlive Close.
func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return nil, fmt.Errorf("dup pty master: %w", err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pty master: %w", err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// control runs fn on f's descriptor without taking f off the poller (as Fd would).
func control(f *os.File, fn func(fd int) error) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := sc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func termOf(t *TTY) string {
	if t.Term != "" {
		return t.Term
	}
	return "xterm-256color"
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// execFailureCode is the exit status a shell gives a command it cannot
// execute: 127 when not found, 126 when found but not executable; 0 when err
// is some other failure (out of processes, say), which is rexec's own.
func execFailureCode(err error) int {
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return 127
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.ENOEXEC), errors.Is(err, syscall.EISDIR):
		return 126
	}
	return 0
}

func (p *Process) read(f *os.File, s Stream) {
	defer p.readers.Done()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	for {
		// Wait for data on the poller first and take a buffer only then, so
		// that a thousand quiet commands hold no output buffers.
		var (
			buf  *[]byte
			n    int
			rerr error
		)
		err := rc.Read(func(fd uintptr) bool {
			b := p.r.bufs.Get().(*[]byte)
			n, rerr = unix.Read(int(fd), *b)
			if errors.Is(rerr, unix.EAGAIN) {
				p.r.bufs.Put(b)
				return false // not ready: wait on the poller
			}
			buf = b
			return true
		})
		if n > 0 {
			select {
			case p.chunks <- chunk{s, buf, n}:
			case <-p.stop:
				p.r.bufs.Put(buf)
				return
			}
		} else if buf != nil {
			p.r.bufs.Put(buf)
		}
		if err != nil || rerr != nil || n == 0 {
			// EOF (n == 0) on a pipe; EIO on a pty master once the
			// terminal's last holder is gone; a closed file once Wait gave
			// up draining.
			return
		}
	}
}

func (p *Process) feed(r io.Reader) {
	defer p.feeder.Done()
	_, _ = io.Copy(p.stdin, r)
	if p.spec.OpenStdin {
		return // more comes through Stdin(); its Close is the EOF
	}
	if p.tty != nil {
		_, _ = p.tty.Write([]byte{4}) // ^D: EOF for a terminal in canonical mode
		return
	}
	p.stdin.Close()
}

// ID is the execution id, also given to Sink.Started and in Result.
func (p *Process) ID() string { return p.id }

// Pid is the command's pid (0 when it could not be executed).
func (p *Process) Pid() int {
	if p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Stdin returns the command's live stdin when Spec.OpenStdin was set, else
// nil. Writes block while the command does not read (so a peer that sends
// stdin is slowed by the command, not buffered without bound). Close gives the
// command EOF; with a tty it types ^D instead. Writes fail once Wait returned.
func (p *Process) Stdin() io.WriteCloser {
	if p.stdin == nil || !p.spec.OpenStdin {
		return nil
	}
	if p.tty != nil {
		return ttyInput{p.tty}
	}
	return p.stdin
}

type ttyInput struct{ *os.File }

func (t ttyInput) Close() error {
	_, err := t.Write([]byte{4})
	return err
}

// Signal sends sig to the command: to its process group, or with a tty to
// the terminal's foreground process group (the job the user sees).
func (p *Process) Signal(sig syscall.Signal) error {
	pid := p.Pid()
	if pid == 0 {
		return errors.New("no process")
	}
	pgid := pid
	if p.tty != nil {
		_ = control(p.tty, func(fd int) error {
			fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
			if err == nil && fg > 0 {
				pgid = fg
			}
			return err
		})
	}
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %v: %w", sig, err)
	}
	return nil
}

// Resize sets the terminal's size; it is an error without a tty.
func (p *Process) Resize(rows, cols uint16) error {
	if p.tty == nil {
		return errors.New("no terminal: the session was started without tty")
	}
	if rows == 0 || cols == 0 {
		return fmt.Errorf("size %dx%d: rows and cols must both be set", rows, cols)
	}
	return control(p.tty, func(fd int) error {
		return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	})
}

func (p *Process) killGroup(sig syscall.Signal) {
	if pid := p.Pid(); pid > 0 {
		// The group outlives its leader while any member lives, so this
		// reaches descendants even after the shell was reaped.
		_ = syscall.Kill(-pid, sig)
	}
}

// maxDrainExtensions bounds the extra graces Wait gives late readers when
// the command's group is already gone (see the drain case in Wait).
const maxDrainExtensions = 4

// Wait pumps the command's events into sink until it ends, then releases
// the command's slot, pipes and process group (SIGKILL to what is left). It
// returns the error of sink, if any (the command was then cancelled).
func (p *Process) Wait(sink Sink) (*Result, error) {
	defer p.release()
	res := &Result{ExecID: p.id, Pid: p.Pid(), Reason: ReasonExited}
	if p.startErr != nil {
		return p.waitFailed(sink, res)
	}

	var sinkErr error
	fail := func(err error) {
		if sinkErr == nil {
			sinkErr = err
			p.cancel(fmt.Errorf("event sink: %w", err))
		}
	}
	p.auditStart()
	if err := sink.Started(p.id, res.Pid); err != nil {
		fail(err)
	}

	var (
		seq        uint64
		sent       int64
		readers    = make(chan struct{})
		exited     = p.exited
		ctxDone    = p.ctx.Done()
		drain      <-chan time.Time
		kill       <-chan time.Time
		readersOut = (<-chan struct{})(readers)
		extensions int
	)
	go func() { p.readers.Wait(); close(readers) }()

	for readersOut != nil || exited != nil {
		select {
		case c := <-p.chunks:
			data := (*c.buf)[:c.n]
			if c.stream == Stdout {
				res.StdoutBytes += int64(c.n)
			} else {
				res.StderrBytes += int64(c.n)
			}
			if room := p.spec.MaxOutput - sent; int64(len(data)) > room {
				res.Dropped += int64(len(data)) - max(room, 0)
				data = data[:max(room, 0)]
			}
			if len(data) > 0 && sinkErr == nil {
				seq++
				sent += int64(len(data))
				if err := sink.Output(c.stream, seq, data); err != nil {
					fail(err)
				}
			}
			p.r.bufs.Put(c.buf)
			if drain != nil {
				// The grace is quiet time after the exit, not time since it:
				// output still arriving (or a sink that was slow to take it,
				// under load) is not a descendant holding the pipes.
				drain = time.After(p.r.opts.DrainGrace)
			}
		case <-readersOut:
			readersOut = nil
		case <-exited:
			exited = nil
			if readersOut != nil {
				drain = time.After(p.r.opts.DrainGrace)
			}
		case <-drain:
			// The command exited and the output has been quiet for a whole
			// grace. If nothing of its group is alive, no descendant in the
			// group holds the pipes: the readers are only late (a starved
			// scheduler, under load), so wait a few graces more. A holder that
			// left the group (setsid) still ends the wait after those.
			if extensions < maxDrainExtensions && errors.Is(syscall.Kill(-p.Pid(), 0), syscall.ESRCH) {
				extensions++
				drain = time.After(p.r.opts.DrainGrace)
				continue
			}
			// Something the command started still holds the output open:
			// stop waiting for it.
			res.OutputIncomplete = true
			p.killGroup(syscall.SIGKILL)
			close(p.stop)
			closeAll(p.outputs)
			p.outputs = nil
		case <-ctxDone:
			ctxDone = nil
			res.Reason = reasonOf(context.Cause(p.ctx))
			p.killGroup(syscall.SIGTERM)
			kill = time.After(p.r.opts.KillGrace)
		case <-kill:
			p.killGroup(syscall.SIGKILL)
		}
	}
	res.Duration = time.Since(p.start)
	res.ExitCode, res.Signal = exitStatus(p.state)
	res.SignalName = SignalName(res.Signal)
	if sinkErr == nil {
		if err := sink.Exited(res); err != nil {
			sinkErr = err
		}
	}
	p.auditEnd(res, sinkErr)
	return res, sinkErr
}

func (p *Process) waitFailed(sink Sink, res *Result) (*Result, error) {
	res.ExitCode = execFailureCode(p.startErr)
	msg := []byte("rexec: " + p.startErr.Error() + "\n")
	res.StderrBytes = int64(len(msg))
	err := sink.Output(Stderr, 1, msg)
	if err == nil {
		err = sink.Exited(res)
	}
	p.auditEnd(res, err)
	return res, err
}

func (p *Process) release() {
	p.cancel(nil)
	if p.startErr == nil {
		p.killGroup(syscall.SIGKILL)
		p.r.opts.Guard.remove(p.Pid())
		select {
		case <-p.stop:
		default:
			close(p.stop)
		}
		closeAll(p.outputs)
		p.readers.Wait()
		if p.stdin != nil && p.stdin != p.tty {
			p.stdin.Close()
		}
		p.feeder.Wait()
	}
	<-p.r.slots
}

func exitStatus(st *os.ProcessState) (code, sig int) {
	if st == nil {
		return -1, 0
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, int(ws.Signal())
	}
	return st.ExitCode(), 0
}

// SignalName is the short name of signal n ("KILL" for 9), or "" for 0.
func SignalName(n int) string {
	if n == 0 {
		return ""
	}
	name := unix.SignalName(syscall.Signal(n))
	if len(name) > 3 && name[:3] == "SIG" {
		return name[3:]
	}
	return fmt.Sprintf("SIG%d", n)
}

// SignalByName is the inverse of SignalName for the given short name.
func SignalByName(name string) (syscall.Signal, bool) {
	s := unix.SignalNum("SIG" + name)
	return s, s != 0
}
