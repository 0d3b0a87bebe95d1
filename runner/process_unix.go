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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Process is a started command. Call Wait exactly once; it delivers the
// command's events and returns once they are delivered (or the sink failed).
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

	acct  *Account  // the user it runs as
	cell  *cell     // its cgroup; nil without cgroups
	owner ownerSlot // its place in Spec.Owner's count
	// serverPeak is this process's peak RSS as the command started, when
	// its peak memory comes from rusage (see ownPeakRSS).
	serverPeak int64

	outputs []*os.File // read ends: stdout, stderr; or the pty master alone
	stdin   *os.File   // write end of stdin (or the pty master), when open
	tty     *os.File   // the pty master, in tty mode
	group   *group     // the process group: every signal goes through it

	chunks  chan chunk    // readers → lifetime loop
	events  chan event    // lifetime loop → Wait's delivery (see delivery.go)
	stop    chan struct{} // closed when the loop stops reading
	readers sync.WaitGroup
	unread  atomic.Int64   // bytes readers had read but not handed over when stopped
	exited  chan struct{}  // closed once the leader has exited (it is reaped later)
	feeder  sync.WaitGroup // the goroutine copying Spec.Stdin, if any

	res       Result
	delivered atomic.Uint64         // events the delivery has finished with
	sinkErr   atomic.Pointer[error] // the sink's first error
}

type chunk struct {
	stream Stream
	buf    *[]byte
	n      int
}

// Start validates spec, takes a slot and starts the command. It returns a
// *FieldError for a bad spec (or one the host cannot serve: a user that does
// not exist, a limit without its cgroup controller), ErrTooManyCommands or
// ErrTooManyForOwner at a limit, and the cause of ctx when ctx is already
// done; in each case nothing was started. From here on the command's
// timeout and ctx act, whenever Wait is called.
func (r *Runner) Start(ctx context.Context, spec Spec) (*Process, error) {
	if err := r.opts.check(&spec); err != nil {
		return nil, r.observeRefused(ctx, &spec, err)
	}
	if err := r.checkIsolation(&spec); err != nil {
		return nil, r.observeRefused(ctx, &spec, err)
	}
	if ctx.Err() != nil {
		return nil, r.observeRefused(ctx, &spec, context.Cause(ctx))
	}
	select {
	case r.slots <- struct{}{}:
	default:
		return nil, r.observeRefused(ctx, &spec, fmt.Errorf("%w: %d of %d", ErrTooManyCommands, len(r.slots), cap(r.slots)))
	}
	owner, err := r.takeOwnerSlot(&spec)
	if err != nil {
		<-r.slots
		return nil, r.observeRefused(ctx, &spec, err)
	}
	p, err := r.start(ctx, spec, owner)
	if err != nil {
		owner.release()
		<-r.slots
		return nil, r.observeRefused(ctx, &spec, err)
	}
	return p, nil
}

func (r *Runner) start(parent context.Context, spec Spec, owner ownerSlot) (*Process, error) {
	timeout := spec.Timeout
	if timeout == 0 {
		timeout = r.opts.MaxTimeout
	}
	if spec.MaxOutput == 0 || spec.MaxOutput > r.opts.MaxOutput {
		spec.MaxOutput = r.opts.MaxOutput
	}
	acct := r.self
	if spec.User != "" {
		a, err := r.opts.LookupUser(spec.User)
		if err != nil {
			return nil, &FieldError{Field: "user", Problem: fmt.Sprintf("the key's user %q cannot run commands on the server: %v", spec.User, err), Precondition: true}
		}
		a.Self = a.UID == r.self.UID && a.GID == r.self.GID && os.Geteuid() == int(a.UID)
		if !a.Self && !r.canSetUID {
			return nil, &FieldError{Field: "user", Problem: fmt.Sprintf("the key's user %q: the server may not run commands as another user (rexecd needs root, or CAP_SETUID and CAP_SETGID)", spec.User), Precondition: true}
		}
		acct = a
	}
	ctx, cancel := context.WithCancelCause(parent)
	tctx, tcancel := context.WithTimeoutCause(ctx, timeout, ErrTimeout)
	p := &Process{
		r: r, spec: spec, id: newExecID(), ctx: tctx, acct: acct, owner: owner,
		cancel: func(err error) { cancel(err); tcancel() },
		chunks: make(chan chunk),
		events: make(chan event),
		stop:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	p.res = Result{ExecID: p.id, Reason: ReasonExited, Limits: spec.Limits}

	term := ""
	if spec.TTY != nil {
		term = termOf(spec.TTY)
	}
	env := loginEnv(acct, r.passEnv, term, spec.Env)
	var cmd *exec.Cmd
	if spec.Shell != "" {
		cmd = exec.Command("/bin/sh", "-c", spec.Shell)
	} else {
		// Not exec.Command: it looks argv[0] up in the server's PATH.
		path, err := lookPath(spec.Argv[0], env)
		cmd = &exec.Cmd{Path: path, Args: spec.Argv, Err: err}
	}
	cmd.Env = env
	cmd.Dir = spec.Dir
	if cmd.Dir == "" {
		cmd.Dir = homeDir(acct)
	}
	if spec.Limits.rlimits() && cmd.Err == nil {
		withRlimits(cmd, spec.Limits)
	}
	p.cmd = cmd

	if r.cg != nil {
		c, err := r.cg.take(spec.Limits)
		if err != nil {
			p.cancel(nil)
			return nil, err
		}
		p.cell = c
	}
	var err error
	if spec.TTY != nil {
		err = p.startTTY()
	} else {
		err = p.startPipes()
	}
	if err != nil {
		p.cancel(nil)
		p.cell.release()
		if code := execFailureCode(err); code != 0 {
			// As a shell does: the command could not be executed. Wait
			// reports it as stderr text and an exit status, not an error.
			p.startErr = err
			p.start = time.Now()
			p.cell = nil
			p.observeStarted(0)
			return p, nil
		}
		if errors.Is(err, syscall.E2BIG) {
			// Each string is checked against the kernel's limit; this is
			// their sum with the login environment.
			return nil, fieldErr("command", "argv and env together are over the kernel's limit for a new program (E2BIG)")
		}
		return nil, fmt.Errorf("start %s: %w", spec.Describe(), err)
	}
	p.start = time.Now()
	if p.cell == nil || !r.cg.limitsMemory() {
		p.serverPeak = ownPeakRSS()
	}
	pid := cmd.Process.Pid
	p.res.Pid = pid
	p.group = &group{cmd: cmd, guard: r.opts.Guard, pgid: pid, tty: p.tty, session: p.tty != nil, cell: p.cell}
	r.opts.Guard.add(pid)
	go p.group.watch(p.exited)
	for i, f := range p.outputs {
		p.readers.Add(1)
		go p.read(f, Stream(i+1))
	}
	if spec.Stdin != nil {
		p.feeder.Add(1)
		go p.feed(spec.Stdin)
	}
	p.auditStart()
	p.observeStarted(pid)
	go p.lifetime()
	return p, nil
}

// sysProcAttr is the attributes every command starts with: the user's
// credentials when it is not this process's own.
func (p *Process) sysProcAttr(attr *syscall.SysProcAttr) *syscall.SysProcAttr {
	if a := p.acct; !a.Self {
		attr.Credential = &syscall.Credential{Uid: a.UID, Gid: a.GID, Groups: a.Groups}
	}
	return attr
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
	p.cmd.SysProcAttr = p.sysProcAttr(&syscall.SysProcAttr{Setpgid: true})
	if err := p.cell.start(p.cmd.SysProcAttr, p.startCmd); err != nil {
		p.reapFailed()
		closeAll(closeOnErr)
		p.stdin = nil
		return err
	}
	p.outputs = []*os.File{outR, errR}
	if size := p.r.opts.PipeSize; size > 0 {
		for _, f := range []*os.File{outR, p.stdin} {
			if f == nil {
				continue
			}
			_ = control(f, func(fd int) error {
				_, err := unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, size)
				return err // best effort: the default size works, only slower
			})
		}
	}
	return nil
}

// reapFailed reaps a command that started but whose start failed after
// (the cell killed it).
func (p *Process) reapFailed() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

// startCmd starts the command and returns its pid.
func (p *Process) startCmd() (int, error) {
	if err := p.cmd.Start(); err != nil {
		return 0, err
	}
	return p.cmd.Process.Pid, nil
}

func (p *Process) startTTY() error {
	master, tty, err := pty.Open()
	if err != nil {
		return err
	}
	defer tty.Close() // the command has its own once started
	if err := pty.Setsize(master, &pty.Winsize{Rows: p.spec.TTY.Rows, Cols: p.spec.TTY.Cols}); err != nil {
		master.Close()
		return err
	}
	if !p.acct.Self {
		// As sshd does: the user owns its terminal (group tty, 0620), so
		// that tty(1), mesg and write work and others cannot read it.
		if err := tty.Chown(int(p.acct.UID), ttyGroup(p.acct.GID)); err != nil {
			master.Close()
			return fmt.Errorf("give the terminal to user %s: %w", p.acct.Name, err)
		}
		_ = tty.Chmod(0o620)
	}
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = tty, tty, tty
	// A session leader (Setsid) with the terminal as its controlling tty
	// (Setctty, fd 0); a session leader leads its group too.
	p.cmd.SysProcAttr = p.sysProcAttr(&syscall.SysProcAttr{Setsid: true, Setctty: true})
	if err := p.cell.start(p.cmd.SysProcAttr, p.startCmd); err != nil {
		p.reapFailed()
		master.Close()
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
	// F_DUPFD_CLOEXEC: no window in which a concurrent fork inherits it.
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup pty master: %w", err)
	}
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
				p.unread.Add(int64(n))
				p.r.bufs.Put(buf)
				return
			}
		} else if buf != nil {
			p.r.bufs.Put(buf)
		}
		if err != nil || rerr != nil || n == 0 {
			// EOF (n == 0) on a pipe; EIO on a pty master once the
			// terminal's last holder is gone; a closed file once the
			// lifetime loop stopped reading (drain bound, hang-up, end).
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
// command EOF; with a tty it types ^D instead. Writes fail once the command
// has ended (before Exited is delivered).
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
// the terminal's foreground process group (the job the user sees). Once the
// command has ended it signals nothing and returns an error: the group's id
// may then belong to another command.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.group == nil {
		return errors.New("no process")
	}
	return p.group.signalForeground(sig)
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
