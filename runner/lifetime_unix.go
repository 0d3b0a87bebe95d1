//go:build unix

package runner

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Wait delivers the command's events to sink — Started, Output chunks in seq
// order, then Exited — and returns how the command ended, and the sink's
// error, if any (the command was then cancelled). When the command has ended
// its group is killed, its leader reaped and its slot freed before Exited is
// delivered, so a client that has read Exited may start its next command at
// once. Wait returns once Exited is delivered, however long the sink takes.
func (p *Process) Wait(sink Sink) (*Result, error) {
	if p.startErr != nil {
		return p.waitFailed(sink)
	}
	err := p.deliver(p.events, sink)
	return &p.res, err
}

// sinkFailed records the sink's first error and cancels the command.
func (p *Process) sinkFailed(err error) {
	if p.sinkErr.CompareAndSwap(nil, &err) {
		p.cancel(fmt.Errorf("event sink: %w", err))
	}
}

func (p *Process) sinkError() error {
	if e := p.sinkErr.Load(); e != nil {
		return *e
	}
	return nil
}

// lifetime is the command's control loop, from Start until its slot is
// freed. It owns the process: the leader's exit, the timeout and the
// context (TERM, then KILL after KillGrace), the drain after the exit, and
// the output's accounting (seq, budget). It never calls the sink: it hands
// events to the delivery through p.events and, while the delivery is busy,
// holds one event and takes no more output (the pipe then fills, and the
// command blocks in write). So the timers act whatever the client does.
func (p *Process) lifetime() {
	defer close(p.events)
	var (
		res        = &p.res
		seq        uint64
		sent       int64
		pending    = event{kind: evStarted}
		holding    = true
		readers    = make(chan struct{})
		readersOut = (<-chan struct{})(readers)
		exited     = (<-chan struct{})(p.exited)
		leaderGone bool
		ctxDone    = p.ctx.Done()
		kill       <-chan time.Time
		drain      <-chan time.Time
		drainMark  uint64 // p.delivered when the drain timer was set
		oom        = p.cell.oomEvents()
	)
	go func() { p.readers.Wait(); close(readers) }()
	armDrain := func() {
		drain = time.After(p.r.opts.DrainGrace)
		drainMark = p.delivered.Load()
	}

	for readersOut != nil || exited != nil {
		var (
			in  <-chan chunk
			out chan<- event
		)
		if holding {
			out = p.events
		} else {
			in = p.chunks
		}
		select {
		case out <- pending:
			holding = false
		case c := <-in:
			pending, holding = p.account(c, &seq, &sent)
		case <-readersOut:
			readersOut = nil
		case <-exited:
			exited, leaderGone = nil, true
			res.Duration = time.Since(p.start)
			if readersOut != nil {
				// A bound from the exit, not quiet time: output that goes on
				// arriving does not extend it.
				armDrain()
			}
		case <-drain:
			drain = nil
			switch {
			case p.outputHeld():
				// Something the command started still holds the output
				// open: stop waiting for it.
				res.OutputIncomplete = true
				_ = p.group.signal(syscall.SIGKILL)
				p.stopReading()
			case p.ctx.Err() != nil && holding && p.delivered.Load() == drainMark:
				// rexec has ended the command (or its client went away) and
				// the client took nothing for a whole grace: what is left in
				// the pipe is not worth a slot.
				res.OutputIncomplete = true
				p.stopReading()
			default:
				// Nobody holds the output: what is left is finite and the
				// client takes it, however slowly (or the readers are only
				// late, on a busy machine). Look again after a grace.
				armDrain()
			}
		case <-ctxDone:
			ctxDone = nil
			if !leaderGone {
				res.Reason = reasonOf(context.Cause(p.ctx))
			}
			if p.tty != nil {
				// Hang up first, as sshd does: the kernel sends the session
				// leader SIGHUP, and an interactive shell passes it to its
				// jobs (which live in their own groups). TERM alone would
				// reach neither, as such a shell ignores TERM.
				if p.stopReading() > 0 {
					res.OutputIncomplete = true
				}
			}
			p.end(syscall.SIGTERM, leaderGone)
			kill = time.After(p.r.opts.KillGrace)
		case <-kill:
			kill = nil
			p.end(syscall.SIGKILL, leaderGone)
		case <-oom:
			// The v1 memory cgroup went out of memory, with the kernel's
			// OOM killer off (cgroup_linux.go says why): rexec ends the
			// whole command, as v2's memory.oom.group does.
			oom = nil
			if !leaderGone && ctxDone != nil {
				res.Reason = ReasonOOM
			}
			p.end(syscall.SIGKILL, leaderGone)
		}
	}
	p.release()
	// From here on the command holds nothing; the client may take its time.
	if holding {
		p.events <- pending
	}
	p.events <- event{kind: evExited, res: res}
}

// account counts a chunk and applies the output budget. It returns the
// event to deliver, or false when nothing of the chunk is to be sent.
func (p *Process) account(c chunk, seq *uint64, sent *int64) (event, bool) {
	res := &p.res
	if c.stream == Stdout {
		res.StdoutBytes += int64(c.n)
	} else {
		res.StderrBytes += int64(c.n)
	}
	n := c.n
	if room := p.spec.MaxOutput - *sent; int64(n) > room {
		res.Dropped += int64(n) - max(room, 0)
		n = int(max(room, 0))
	}
	if n == 0 || p.sinkErr.Load() != nil {
		p.r.bufs.Put(c.buf)
		return event{}, false
	}
	*seq++
	*sent += int64(n)
	return event{kind: evOutput, stream: c.stream, seq: *seq, buf: c.buf, n: n}, true
}

// end sends sig to the group to end the command, and records it as the
// signal rexec sent when the leader was still running.
func (p *Process) end(sig syscall.Signal, leaderGone bool) {
	if err := p.group.signal(sig); err == nil && !leaderGone {
		p.res.SentSignal = int(sig)
	}
}

// outputHeld reports whether some process still has the write end of an
// output open: the pipe (or terminal) does not report a hang-up yet. With
// a cgroup, an empty one settles it: no process of the command is left to
// hold anything, and the readers are only late.
func (p *Process) outputHeld() bool {
	if p.cell != nil && !p.cell.populated() {
		return false
	}
	for _, f := range p.outputs {
		held := true
		err := control(f, func(fd int) error {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			_, err := unix.Poll(fds, 0)
			held = err != nil || fds[0].Revents&unix.POLLHUP == 0
			return err
		})
		if err == nil && held {
			return true
		}
	}
	return false
}

// stopReading closes the outputs (for a terminal: hangs it up), so that the
// readers stop, and returns the bytes that were left in them. Only the
// lifetime loop calls it.
func (p *Process) stopReading() (unread int64) {
	if p.outputs == nil {
		return 0
	}
	close(p.stop)
	for _, f := range p.outputs {
		_ = control(f, func(fd int) error {
			n, err := unix.IoctlGetInt(fd, unix.TIOCINQ) // FIONREAD: bytes not yet read
			unread += int64(max(n, 0))
			return err
		})
		f.Close()
	}
	p.outputs = nil
	p.res.Unread += unread
	return unread
}

// release is the command's end, before Exited is delivered: the group is
// killed and the leader reaped, the pipes closed, the audit line written and
// the slot freed.
func (p *Process) release() {
	p.cancel(nil)
	res := &p.res
	st, empty := p.group.reap(p.r.opts.KillGrace)
	if !empty {
		p.r.opts.Logger.Warn("a command's cgroup still has processes after cgroup.kill (in uninterruptible sleep?); they die when they wake",
			"exec_id", p.id, "within", p.r.opts.KillGrace)
	}
	p.measure(st)
	p.cell.release()
	p.owner.release()
	p.stopReading()
	p.readers.Wait()
	res.Unread += p.unread.Load()
	if p.stdin != nil && p.stdin != p.tty {
		p.stdin.Close()
	}
	p.feeder.Wait()
	res.ExitCode, res.Signal = exitStatus(st)
	res.SignalName = SignalName(res.Signal)
	res.SentSignalName = SignalName(res.SentSignal)
	p.auditEnd(res, p.sinkError())
	p.observeEnded(res)
	<-p.r.slots
}

// measure fills in what the command consumed, from its cgroup once it is
// empty, else from the leader's rusage; and makes an OOM kill its reason.
func (p *Process) measure(st *os.ProcessState) {
	res := &p.res
	var oomKills uint64
	if p.cell != nil {
		oomKills = p.cell.usage(&res.Usage)
	}
	if ru, ok := rusage(st); ok {
		if !res.Usage.Cgroup {
			res.Usage.UserCPU, res.Usage.SystemCPU = ru.user, ru.system
		}
		// Without a memory cgroup: the leader's ru_maxrss, when it is the
		// command's own (see ownPeakRSS); else unknown, 0.
		if res.Usage.PeakMemory == 0 && ru.maxRSS > p.serverPeak {
			res.Usage.PeakMemory = ru.maxRSS
		}
	}
	// The lifetime loop makes it ReasonOOM when v1's OOM notification came
	// first (its kill may then have spared the OOM killer a victim).
	if oomKills > 0 && res.Reason == ReasonExited || res.Reason == ReasonOOM {
		res.Reason = ReasonOOM
		res.SentSignal = int(syscall.SIGKILL)
		res.Message = OOMMessage(p.spec.Limits.Memory)
	}
}

// waitFailed reports a command that could not be executed, as a shell
// would: a line on stderr and 127 or 126. Its slot is freed first.
func (p *Process) waitFailed(sink Sink) (*Result, error) {
	res := &p.res
	res.ExitCode = execFailureCode(p.startErr)
	msg := []byte("rexec: " + p.startErr.Error() + "\n")
	res.StderrBytes = int64(len(msg))
	p.auditEnd(res, nil)
	p.owner.release()
	p.observeEnded(res)
	<-p.r.slots
	err := sink.Output(Stderr, 1, msg)
	if err == nil {
		err = sink.Exited(res)
	}
	return res, err
}
