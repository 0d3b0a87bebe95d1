package journal

import (
	"bufio"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rexec/rexec/runner"
)

// ItemKind says what an Item is.
type ItemKind uint8

// The kinds of items a reader returns.
const (
	// ItemStarted: the command started (Pid). Only for a reader from seq 0.
	ItemStarted ItemKind = iota + 1
	// ItemOutput: an output chunk (Stream, Seq, Data).
	ItemOutput
	// ItemGap: output the journal evicted before the reader got to it (Gap);
	// the next output is Gap.LastSeq+1.
	ItemGap
	// ItemExited: how the command ended (Exit); the last item.
	ItemExited
	// ItemStdin: only the attachment's stdin state changed (Stdin).
	ItemStdin
)

// Item is one thing a reader returns.
type Item struct {
	Kind   ItemKind
	Stream runner.Stream
	Seq    uint64
	// Data is the output; valid until the reader's next call.
	Data []byte
	Pid  int
	Exit *runner.Result
	Gap  Gap
	// Stdin, for an attachment, is set when the server's side of stdin
	// changed since the last item that carried it.
	Stdin *StdinState
}

// Gap is a run of output the journal no longer holds.
type Gap struct {
	FirstSeq, LastSeq uint64
	// Bytes is the output they held; -1 when the reader cannot know (it
	// started at a seq that was already gone).
	Bytes int64
}

// errRetry: the segment to read was evicted meanwhile; look again.
var errRetry = errors.New("journal: segment evicted")

// cursor reads an execution's events in order: Started (from seq 0),
// output by seq from memory while it is there and from disk otherwise, then
// Exited. One goroutine uses a cursor; its fields outside the execution's
// log are its own.
type cursor struct {
	x       *Execution
	next    uint64 // the next output seq; 0 means Started comes first
	prevEnd int64  // output bytes up to the last record returned; -1 unknown
	done    bool

	f     *os.File
	rr    recordReader
	fSeg  uint64 // the first seq of f's segment
	fNext uint64 // the seq of the record rr reads next

	pinned *block // the block of the record returned last, if from memory
}

// unpin lets go of the block of the record returned last (x.mu held).
func (c *cursor) unpin() {
	if c.pinned != nil {
		c.pinned.pins--
		c.pinned = nil
	}
}

func newCursor(x *Execution, from uint64) cursor {
	c := cursor{x: x, next: from, prevEnd: -1}
	if from <= 1 {
		c.prevEnd = 0
	}
	return c
}

type pollState uint8

const (
	pollGot pollState = iota
	pollEmpty
	pollDone
	pollGone
)

// poll returns the next item if there is one now (x.mu held; it may let go
// of the lock to read from disk).
func (c *cursor) poll() (Item, pollState) {
	x, l := c.x, &c.x.log
	c.unpin()
	for {
		if c.done {
			return Item{}, pollDone
		}
		if x.gone.Load() {
			c.done = true
			c.closeFile()
			return Item{}, pollGone
		}
		if c.next == 0 {
			switch {
			case x.startedEv:
				c.next = 1
				return Item{Kind: ItemStarted, Pid: x.pid}, pollGot
			case l.lastSeq > 0 || x.exit != nil:
				c.next = 1 // it could not be executed: no Started
				continue
			}
			return Item{}, pollEmpty
		}
		if c.next <= l.lastSeq {
			if first := l.firstSeq(); first == 0 || c.next < first {
				return c.gap(l, first), pollGot
			}
			if b, i, ok := l.memRecord(c.next); ok {
				p := b.pos[i]
				b.pins++
				c.pinned = b
				it := Item{Kind: ItemOutput, Stream: p.stream, Seq: c.next, Data: b.payload(i)}
				c.next++
				c.prevEnd = p.off + int64(p.n)
				return it, pollGot
			}
			s := l.segFor(c.next)
			segFirst := s.firstSeq
			x.mu.Unlock()
			it, err := c.readDisk(segFirst)
			x.mu.Lock()
			if err == nil {
				return it, pollGot
			}
			if x.gone.Load() || l.segFor(c.next) != s {
				continue // evicted meanwhile: look again
			}
			// Lost on disk (a failed write) or torn: skip the segment.
			return c.skipSegment(l, segFirst), pollGot
		}
		if x.exit != nil {
			c.done = true
			c.closeFile()
			return Item{Kind: ItemExited, Exit: x.exit}, pollGot
		}
		return Item{}, pollEmpty
	}
}

// gap reports the records from c.next up to the first held one (or all of
// them when none is held) as gone.
func (c *cursor) gap(l *outputLog, first uint64) Item {
	last, end := l.lastSeq, l.off
	if first != 0 {
		last, end = first-1, l.segs[0].firstOff
	}
	g := Gap{FirstSeq: c.next, LastSeq: last, Bytes: -1}
	if c.prevEnd >= 0 {
		g.Bytes = end - c.prevEnd
	}
	c.next, c.prevEnd = last+1, end
	c.closeFile()
	return Item{Kind: ItemGap, Gap: g}
}

// skipSegment reports the rest of the segment that begins at segFirst as a
// gap: a write to it failed, or it was torn.
func (c *cursor) skipSegment(l *outputLog, segFirst uint64) Item {
	last := l.lastSeq
	for _, s := range l.segs {
		if s.firstSeq > segFirst {
			last = s.firstSeq - 1
			break
		}
	}
	g := Gap{FirstSeq: c.next, LastSeq: last, Bytes: -1}
	c.next, c.prevEnd = last+1, -1
	c.closeFile()
	return Item{Kind: ItemGap, Gap: g}
}

// readDisk reads record c.next from the segment that starts at segFirst,
// without the lock: the record is flushed (it is older than the tail) and
// segment files only grow until they are removed whole.
func (c *cursor) readDisk(segFirst uint64) (Item, error) {
	if c.f == nil || c.fSeg != segFirst || c.fNext > c.next {
		c.closeFile()
		f, err := os.Open(filepath.Join(c.x.dir, segName(segFirst)))
		if errors.Is(err, fs.ErrNotExist) {
			return Item{}, errRetry
		}
		if err != nil {
			return Item{}, err
		}
		c.f, c.fSeg, c.fNext = f, segFirst, segFirst
		c.rr = recordReader{r: bufio.NewReaderSize(f, 64<<10), buf: c.rr.buf}
	}
	for {
		hd, data, err := c.rr.next()
		if err == nil && hd.seq != c.fNext {
			// Not the record that follows: the file was evicted and
			// recycled under this reader, or a write to it failed.
			err = errCorrupt
		}
		if err != nil {
			c.closeFile()
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the record should be there
			}
			return Item{}, errRetry
		}
		c.fNext = hd.seq + 1
		if hd.seq < c.next {
			continue
		}
		return c.output(hd, data), nil
	}
}

func (c *cursor) output(hd header, data []byte) Item {
	c.next = hd.seq + 1
	c.prevEnd = hd.off + int64(hd.n)
	return Item{Kind: ItemOutput, Stream: hd.stream, Seq: hd.seq, Data: data}
}

func (c *cursor) closeFile() {
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
}

// Reader reads an execution's journal: for Logs, and for anyone who only
// reads. It holds nothing back (only an attachment does).
type Reader struct {
	c      cursor
	follow bool
}

// Reader returns a reader of x's output from seq from (0 or 1: the oldest
// held; no Started). With follow it waits for live output until Exited;
// without, Next returns io.EOF once it has returned what there is.
func (x *Execution) Reader(from uint64, follow bool) *Reader {
	return &Reader{c: newCursor(x, max(from, 1)), follow: follow}
}

// Next returns the next item: output, gaps, then Exited (then io.EOF). It
// returns ErrGone when the execution was deleted while it ran, and the
// cause of ctx when ctx is done first.
func (r *Reader) Next(ctx context.Context) (Item, error) {
	x := r.c.x
	x.mu.Lock()
	defer x.mu.Unlock()
	for {
		it, st := r.c.poll()
		switch st {
		case pollGot:
			return it, nil
		case pollDone:
			return Item{}, io.EOF
		case pollGone:
			return Item{}, ErrGone
		}
		if !r.follow {
			return Item{}, io.EOF
		}
		if err := x.waitLocked(ctx); err != nil {
			return Item{}, err
		}
	}
}

// Close lets go of the reader's file and memory.
func (r *Reader) Close() {
	r.c.x.mu.Lock()
	r.c.unpin()
	r.c.x.mu.Unlock()
	r.c.closeFile()
}
