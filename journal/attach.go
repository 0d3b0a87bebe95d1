package journal

import (
	"context"
	"fmt"
	"io"
	"syscall"
)

// Attachment is the stream a client has attached to an execution: it
// reads the output (from memory while it keeps up), and its position holds
// the journal back — the output it has not been sent yet (a live window at
// most), and, for a Resumable execution, what its client has not
// acknowledged (MaxBytes at most). It feeds stdin, signals, resizes. One
// execution has at most one; a new one takes over.
//
// One goroutine calls Next (the stream's sender); the others (stdin, acks,
// signals) may be called from another goroutine (the stream's receiver).
type Attachment struct {
	x   *Execution
	cur cursor

	// under x.mu
	kicked, closed   bool
	sentSeq          uint64 // the newest output the stream has sent
	sentOff          int64  // output bytes up to it
	pendSeq          uint64 // returned by Next, sent once Next is called again
	pendOff          int64
	reported         StdinState
	reportedAnything bool
}

// Attach takes over x's stream from seq from (0 or 1: the oldest held;
// output before from counts as acknowledged). A Call execution ends with
// its call and cannot be attached (ErrNotAttachable).
func (x *Execution) Attach(from uint64) (*Attachment, error) {
	if x.lifetime == Call {
		return nil, ErrNotAttachable
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.attachLocked(max(from, 1)), nil
}

func (x *Execution) attachLocked(from uint64) *Attachment {
	if old := x.holder; old != nil {
		old.kicked = true
	}
	if x.grace != nil {
		x.grace.Stop()
		x.grace = nil
	}
	a := &Attachment{x: x, cur: newCursor(x, from)}
	a.sentSeq = min(from, x.log.lastSeq+1) - min(from, 1)
	a.sentOff = x.offBeforeLocked(a.sentSeq + 1)
	a.pendSeq, a.pendOff = a.sentSeq, a.sentOff
	if from > 1 {
		x.acked = max(x.acked, min(from-1, x.log.lastSeq))
	}
	x.holder = a
	x.broadcast()
	return a
}

// offBeforeLocked is the output offset of record seq (the bytes before it),
// or a lower bound of it when seq is on disk only.
func (x *Execution) offBeforeLocked(seq uint64) int64 {
	l := &x.log
	if seq > l.lastSeq {
		return l.off
	}
	if b, i, ok := l.memRecord(seq); ok {
		return b.pos[i].off
	}
	if s := l.segFor(seq); s != nil {
		return s.firstOff
	}
	return 0
}

// Execution is the execution attached to.
func (a *Attachment) Execution() *Execution { return a.x }

// Next returns the next item for the stream: Started (an attachment made
// by Start), output, gaps, Exited, and stdin states (alone when nothing
// else is to be sent). Calling it again means the previous item was sent.
// It returns ErrTakenOver once another client attached, io.EOF after
// Exited, and the cause of ctx when ctx is done first.
func (a *Attachment) Next(ctx context.Context) (Item, error) {
	x := a.x
	x.mu.Lock()
	defer x.mu.Unlock()
	if a.pendSeq != a.sentSeq {
		a.sentSeq, a.sentOff = a.pendSeq, a.pendOff
		// Wake a writer that waits for room once half the live window is
		// free, not at every record sent: on a busy machine every wake
		// costs a trip through the scheduler, and a writer and a reader
		// handing the window's last record back and forth would pay it
		// for every chunk.
		if x.writerWaiting && x.log.off-a.sentOff <= x.j.opts.LiveWindow/2 {
			x.broadcast()
		}
	}
	for {
		if a.kicked {
			return Item{}, ErrTakenOver
		}
		if a.closed {
			return Item{}, ErrDetachedStream
		}
		it, st := a.cur.poll()
		var stdin *StdinState
		if s := x.stdin; s != nil {
			if cur := s.state(); !a.reportedAnything || cur != a.reported {
				a.reported, a.reportedAnything = cur, true
				stdin = &cur
			}
		}
		switch st {
		case pollGot:
			if it.Kind == ItemOutput {
				a.pendSeq, a.pendOff = it.Seq, a.cur.prevEnd
			}
			it.Stdin = stdin
			return it, nil
		case pollDone:
			return Item{}, io.EOF
		case pollGone:
			return Item{}, ErrGone
		}
		if stdin != nil {
			return Item{Kind: ItemStdin, Stdin: stdin}, nil
		}
		if err := x.waitLocked(ctx); err != nil {
			return Item{}, err
		}
	}
}

// Ack records that the client has written every output record up to seq:
// a Resumable execution's journal may let go of them.
func (a *Attachment) Ack(seq uint64) {
	x := a.x
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.holder != a {
		return
	}
	seq = min(seq, a.pendSeq)
	if seq > x.acked {
		x.acked = seq
		x.broadcast()
	}
}

// Stdin queues b for the command's stdin. It waits while more than twice
// the stdin window is queued (a client that keeps to the window never
// waits), and returns ErrNoStdin, ErrStdinClosed, or ErrDetachedStream.
func (a *Attachment) Stdin(ctx context.Context, b []byte) error {
	x := a.x
	x.mu.Lock()
	defer x.mu.Unlock()
	s := x.stdin
	if s == nil {
		return ErrNoStdin
	}
	for {
		switch {
		case x.holder != a:
			return ErrDetachedStream
		case s.closed || s.closeQueued:
			return ErrStdinClosed
		case s.queued == 0 || s.queued+len(b) <= 2*s.window:
			s.queue = append(s.queue, b)
			s.queued += len(b)
			x.broadcast()
			return nil
		}
		if err := x.waitLocked(ctx); err != nil {
			return err
		}
	}
}

// CloseStdin closes the command's stdin once what is queued is written.
func (a *Attachment) CloseStdin() error {
	x := a.x
	x.mu.Lock()
	defer x.mu.Unlock()
	s := x.stdin
	switch {
	case s == nil:
		return ErrNoStdin
	case x.holder != a:
		return ErrDetachedStream
	case s.closed || s.closeQueued:
		return ErrStdinClosed
	}
	s.closeQueued = true
	x.broadcast()
	return nil
}

// StdinOpen reports whether the command has a live stdin not closed yet.
func (a *Attachment) StdinOpen() bool {
	x := a.x
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.stdin != nil && !x.stdin.closed && !x.stdin.closeQueued
}

// StdinState is the server's side of stdin now; false when the command
// has no live stdin.
func (a *Attachment) StdinState() (StdinState, bool) {
	x := a.x
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stdin == nil {
		return StdinState{}, false
	}
	return x.stdin.state(), true
}

// Signal sends sig to the command (see Execution.Signal), unless another
// client has taken over.
func (a *Attachment) Signal(sig syscall.Signal) error {
	if err := a.live(); err != nil {
		return err
	}
	return a.x.Signal(sig)
}

// Resize sets the command's terminal size.
func (a *Attachment) Resize(rows, cols uint16) error {
	if err := a.live(); err != nil {
		return err
	}
	if a.x.p == nil {
		return fmt.Errorf("the command has ended")
	}
	return a.x.p.Resize(rows, cols)
}

func (a *Attachment) live() error {
	a.x.mu.Lock()
	defer a.x.mu.Unlock()
	if a.x.holder != a {
		return ErrDetachedStream
	}
	return nil
}

// Close ends the attachment. If the command still runs and this was its
// attachment: a Call command is cancelled with cause; a Resumable one gets
// the reconnect grace; a Detached one runs on. Stdin queued but not taken
// is dropped (its client sends it again). Closing twice does nothing.
func (a *Attachment) Close(cause error) {
	x := a.x
	x.mu.Lock()
	if a.closed {
		x.mu.Unlock()
		return
	}
	a.closed = true
	var cancel bool
	if x.holder == a {
		x.holder = nil
		if s := x.stdin; s != nil {
			s.queue, s.queued, s.closeQueued = nil, 0, false
		}
		if x.exit == nil {
			switch x.lifetime {
			case Call:
				x.released, cancel = true, true
			case Resumable:
				if !x.released {
					x.startGraceLocked()
				}
			}
		}
		x.broadcast()
	}
	a.cur.unpin()
	x.mu.Unlock()
	a.cur.closeFile()
	if cancel {
		x.cancel(cause)
	}
}
