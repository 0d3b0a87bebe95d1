package journal

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rexec/rexec/runner"
)

// Execution is one command the journal keeps: its output log, who is
// attached, its grace, its stdin. A running one has its process; one
// recovered from disk has only its journal.
type Execution struct {
	j        *Journal
	id, dir  string
	owner    string
	command  string
	workdir  string
	lifetime Lifetime
	tty      bool
	started  time.Time

	p      *runner.Process // nil when recovered from disk
	direct io.WriteCloser  // the command's stdin, with StartOptions.DirectStdin
	cancel context.CancelCauseFunc
	done   chan struct{} // closed once it has ended and its end is written

	gone    atomic.Bool // deleted from the journal (retention, total bound)
	exitSet atomic.Bool // exit is set (read without the lock)

	mu        sync.Mutex
	pid       int
	startedEv bool // the runner reported Started
	log       outputLog
	exit      *runner.Result
	ended     time.Time
	recovered bool
	holder    *Attachment
	acked     uint64 // Resumable: output acknowledged by a client
	released  bool   // nothing holds the log back any more (cancelled, grace passed, ended)
	grace     *time.Timer
	graceEnds time.Time
	changed   chan struct{} // closed and replaced when something changes for a waiter
	waiters   int
	stdin     *stdinPump
	loggedErr bool
	// writerWaiting: the runner's delivery waits in appendOutput for room.
	writerWaiting bool
}

// ID is the execution id.
func (x *Execution) ID() string { return x.id }

// Owner is the key id that started it.
func (x *Execution) Owner() string { return x.owner }

// Lifetime is how long it lives relative to its call.
func (x *Execution) Lifetime() Lifetime { return x.lifetime }

// Done is closed once the execution has ended and its end is recorded.
func (x *Execution) Done() <-chan struct{} { return x.done }

// Info is what the journal knows of an execution at one moment.
type Info struct {
	ID, Owner, Command, Dir string
	Lifetime                Lifetime
	TTY                     bool
	Pid                     int
	Started, Ended          time.Time // Ended is zero while it runs
	// Exit is how it ended; nil while it runs.
	Exit *runner.Result
	// FirstSeq and LastSeq are the oldest and newest output records held
	// (0 when none is).
	FirstSeq, LastSeq            uint64
	Bytes                        int64 // file bytes held
	EvictedBytes, EvictedRecords int64
	Attached                     bool
	GraceEnds                    time.Time // Resumable, running, no client: when the grace ends
	StdinOpen                    bool
	// Recovered: a restart found it running; its end is the restart's
	// inference (reason shutdown).
	Recovered bool
}

// Info returns what the journal knows of x now.
func (x *Execution) Info() Info {
	x.mu.Lock()
	defer x.mu.Unlock()
	in := Info{
		ID: x.id, Owner: x.owner, Command: x.command, Dir: x.workdir, Lifetime: x.lifetime, TTY: x.tty,
		Pid: x.pid, Started: x.started, Ended: x.ended, Exit: x.exit,
		FirstSeq: x.log.firstSeq(), LastSeq: x.log.lastSeq, Bytes: x.log.size,
		EvictedBytes: x.log.evictedBytes, EvictedRecords: x.log.evictedRecords,
		Attached: x.holder != nil, Recovered: x.recovered,
	}
	if x.exit == nil && x.holder == nil && x.grace != nil {
		in.GraceEnds = x.graceEnds
	}
	if s := x.stdin; s != nil && x.exit == nil {
		in.StdinOpen = !s.closed && !s.closeQueued
	}
	return in
}

func (x *Execution) metaLocked() *meta {
	m := &meta{
		ID: x.id, Owner: x.owner, Command: x.command, Dir: x.workdir, Lifetime: x.lifetime, TTY: x.tty,
		Pid: x.pid, Started: x.started, Ended: x.ended, Exit: x.exit,
		EvictedBytes: x.log.evictedBytes, EvictedRecords: x.log.evictedRecords, Recovered: x.recovered,
	}
	if x.exit != nil {
		m.LastSeq, m.Off = x.log.lastSeq, x.log.off
	}
	return m
}

// waitLocked waits, x.mu held, until something changes or ctx is done.
func (x *Execution) waitLocked(ctx context.Context) error {
	ch := x.changed
	x.waiters++
	x.mu.Unlock()
	var err error
	select {
	case <-ch:
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	x.mu.Lock()
	return err
}

// broadcast wakes every waiter (x.mu held).
func (x *Execution) broadcast() {
	if x.waiters > 0 {
		close(x.changed)
		x.changed = make(chan struct{})
		x.waiters = 0
	}
}

// run delivers the command's events into the journal.
func (x *Execution) run() {
	defer x.cancel(nil)
	_, _ = x.p.Wait(sink{x})
	if !x.exitSet.Load() {
		// The runner always ends with Exited; this only guards the books.
		x.finish(&runner.Result{ExecID: x.id, ExitCode: -1, Reason: runner.ReasonCancelled})
	}
}

// sink takes the runner's events. It never fails: an error would cancel
// the command, and a journal that cannot write still serves the live
// stream (the failure is logged and counted).
type sink struct{ x *Execution }

func (s sink) Started(_ string, pid int) error {
	x := s.x
	x.mu.Lock()
	x.startedEv, x.pid = true, pid
	x.broadcast()
	x.mu.Unlock()
	return nil
}

func (s sink) Output(st runner.Stream, seq uint64, data []byte) error {
	s.x.appendOutput(st, seq, len(data), func(l *outputLog) (int64, error) { return l.append(st, seq, data) })
	return nil
}

// OutputBuffer keeps a large chunk in the runner's buffer, as it came (see
// runner.BufferSink): one copy fewer on the live stream's way. A small one
// is copied into a block, and the buffer given back at once.
func (s sink) OutputBuffer(st runner.Stream, seq uint64, buf *[]byte, n int, release func(*[]byte)) error {
	if n < ownMin {
		err := s.Output(st, seq, (*buf)[:n])
		release(buf)
		return err
	}
	s.x.appendOutput(st, seq, n, func(l *outputLog) (int64, error) { return l.appendOwned(st, seq, buf, n, release) })
	return nil
}

func (s sink) Exited(r *runner.Result) error {
	s.x.finish(r)
	return nil
}

// appendOutput adds a chunk, waiting while there is no room for it: that
// wait is the back-pressure that reaches the command's pipe.
func (x *Execution) appendOutput(st runner.Stream, seq uint64, size int, add func(*outputLog) (int64, error)) {
	need := int64(headerSize + size)
	x.mu.Lock()
	defer x.mu.Unlock()
	for !x.roomFor(need) {
		x.writerWaiting = true
		_ = x.waitLocked(context.Background()) // woken by sends, acks, a release
		x.writerWaiting = false
	}
	n, err := add(&x.log)
	if err != nil {
		x.j.log.Error("journal: output out of order; not kept", "exec_id", x.id, "err", err)
		return
	}
	x.j.total.Add(n)
	// Into the page cache at once: a server that is killed (its commands
	// with it) loses none of their output; the copy costs what a batched
	// write would, and the record stays in memory for the live stream.
	x.log.flushTail()
	if x.log.writeErr != nil && !x.loggedErr {
		x.loggedErr = true
		x.j.log.Error("journal: writing an execution's output failed; the live stream goes on, later readers find a gap",
			"exec_id", x.id, "err", x.log.writeErr)
	}
	x.broadcast()
}

// roomFor makes room for need bytes and reports whether they may be
// appended now; false means wait. It evicts what may go, oldest first:
// everything of a Detached execution (it is never blocked), output a
// Resumable one's client acknowledged, output a Call one's stream sent.
func (x *Execution) roomFor(need int64) bool {
	l := &x.log
	blocking := !x.released && x.lifetime != Detached
	if h := x.holder; h != nil && blocking && l.off-h.sentOff > x.j.opts.LiveWindow {
		return false // the attached stream is a live window behind: flow control
	}
	keep := x.keepLocked()
	for l.size+need > x.j.opts.MaxBytes {
		if freed, ok := l.evictOldest(keep, false); ok {
			x.evictedLocked(freed)
			continue
		}
		if blocking {
			return false
		}
		freed, ok := l.evictOldest(0, true)
		if !ok {
			break
		}
		x.evictedLocked(freed)
	}
	if x.j.total.Load()+need > x.j.opts.MaxTotal {
		x.j.evictEnded(need)
		for x.j.total.Load()+need > x.j.opts.MaxTotal {
			freed, ok := l.evictOldest(keep, !blocking)
			if !ok {
				break // what is left is unacknowledged: MaxBytes bounds it
			}
			x.evictedLocked(freed)
		}
	}
	return true
}

// keepLocked is the newest seq that may be evicted: nothing after it.
func (x *Execution) keepLocked() uint64 {
	switch {
	case x.released || x.lifetime == Detached:
		return x.log.lastSeq
	case x.lifetime == Resumable:
		return x.acked
	case x.holder != nil:
		return x.holder.sentSeq
	}
	return x.log.lastSeq
}

// evictedLocked counts an evicted segment and records the counts in the
// meta file, so that they survive a restart.
func (x *Execution) evictedLocked(s *segment) {
	x.j.total.Add(-s.size)
	x.j.countEvicted(s.payload, s.records)
	if err := appendMeta(x.dir, x.metaLocked()); err != nil && !x.loggedErr {
		x.loggedErr = true
		x.j.log.Error("journal: cannot update an execution's meta file", "exec_id", x.id, "err", err)
	}
}

// finish records the end: the runner has freed the command's slot.
func (x *Execution) finish(r *runner.Result) {
	now := x.j.opts.Now()
	x.mu.Lock()
	if x.exit != nil {
		x.mu.Unlock()
		return
	}
	res := *r
	x.exit, x.ended = &res, now
	x.exitSet.Store(true)
	x.released = true
	if x.grace != nil {
		x.grace.Stop()
	}
	x.log.close()
	if err := appendMeta(x.dir, x.metaLocked()); err != nil {
		x.j.log.Error("journal: cannot write an execution's end", "exec_id", x.id, "err", err)
	}
	lost := x.log.lostWrites
	x.broadcast()
	x.mu.Unlock()
	if lost > 0 {
		x.j.mu.Lock()
		x.j.stats.LostWrites += lost
		x.j.mu.Unlock()
	}
	x.j.endedExec(x)
	close(x.done)
}

// release lets go of everything that held the log back: no client will
// come for its output (the command was cancelled, or is being killed).
func (x *Execution) release() {
	x.mu.Lock()
	x.released = true
	x.broadcast()
	x.mu.Unlock()
}

// Cancel ends the command as rexec does: TERM to its group, KILL after the
// runner's kill grace; cause says why (see runner.Reason).
func (x *Execution) Cancel(cause error) {
	if x.p == nil {
		return
	}
	x.release()
	x.cancel(cause)
}

// errCancelled is the cause of an on-purpose cancel by a client.
var errCancelled = errors.New("cancelled by its client")

// CancelByClient ends the command because a client asked (a cancel
// message, Kill without a signal): reason cancelled.
func (x *Execution) CancelByClient() { x.Cancel(errCancelled) }

// Stdin is the command's live stdin when it was started with
// StartOptions.DirectStdin, else nil; see runner.Process.Stdin.
func (x *Execution) Stdin() io.WriteCloser { return x.direct }

// Signal sends sig to the command's group (with a tty, to the terminal's
// foreground job). It is an error once the command has ended.
func (x *Execution) Signal(sig syscall.Signal) error {
	if x.p == nil {
		return errors.New("the command has ended")
	}
	return x.p.Signal(sig)
}

// startGraceLocked starts the reconnect grace: without a client attached
// by its end, the command is killed (reason disconnected).
func (x *Execution) startGraceLocked() {
	g := x.j.opts.ReconnectGrace
	if g <= 0 {
		x.released = true
		go x.cancel(runner.ErrDisconnected)
		return
	}
	x.graceEnds = x.j.opts.Now().Add(g)
	x.grace = time.AfterFunc(g, x.graceExpired)
}

func (x *Execution) graceExpired() {
	x.mu.Lock()
	if x.holder != nil || x.exit != nil {
		x.mu.Unlock()
		return
	}
	x.released = true
	x.broadcast()
	x.mu.Unlock()
	x.cancel(runner.ErrDisconnected)
}
