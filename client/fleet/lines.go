package fleet

import (
	"bytes"
	"io"
	"sync"
)

// NoNewline marks a target's last line that had no newline: Lines and
// Gather end the line and add this one after it, prefixed.
const NoNewline = `\ No newline at end of output`

// maxBuffered is how much of a target's unfinished line Lines keeps while
// other targets write. A longer line takes the output for itself and is
// written as it comes until its newline, so that no line is ever cut by
// another target's, however long, and memory stays bounded: the other
// targets wait (their servers are held back by flow control), none is
// buffered without bound.
const maxBuffered = 64 << 10

// Lines is the streamed output: every line of every target's stdout and
// stderr, as it arrives, prefixed "NAME: " and written whole, to Stdout and
// Stderr. A target's last line without a newline is ended at its end and
// marked (NoNewline); the messages about its end (Messages) follow on
// Stderr, prefixed too.
type Lines struct {
	Stdout, Stderr io.Writer
	// Messages are the lines about a target's end; by default none.
	Messages func(r *Result) []string

	// mu is held while a line is written, or by one target while a line
	// longer than maxBuffered streams.
	mu      sync.Mutex
	targets sync.Map // Target.Addr → *lineTarget
}

// lineTarget is one target's state. Only its own goroutine touches it.
type lineTarget struct {
	l        *Lines
	prefix   []byte
	holding  bool // this target holds l.mu while a long line streams
	out, err lineStream
	scratch  []byte
}

type lineStream struct {
	t   *lineTarget
	w   io.Writer
	buf []byte // the unfinished line, not yet written
	mid bool   // part of a line was written: the output is this target's until its newline
}

// Start implements Output.
func (l *Lines) Start(t *Target) (io.Writer, io.Writer, error) {
	lt := &lineTarget{l: l, prefix: []byte(t.Name + ": ")}
	lt.out = lineStream{t: lt, w: l.Stdout}
	lt.err = lineStream{t: lt, w: l.Stderr}
	l.targets.Store(t.Addr, lt)
	return &lt.out, &lt.err, nil
}

// Write writes the whole lines of b, each prefixed, and keeps the rest.
func (s *lineStream) Write(b []byte) (int, error) {
	t := s.t
	if t.holding {
		err := s.direct(b)
		t.release()
		return len(b), err
	}
	nl := bytes.LastIndexByte(b, '\n')
	if nl < 0 && len(s.buf)+len(b) <= maxBuffered {
		s.buf = append(s.buf, b...)
		return len(b), nil
	}
	t.l.mu.Lock()
	t.holding = true
	var err error
	if nl < 0 {
		err = s.direct(b) // a long line: it holds the output until its end
	} else {
		err = s.direct(b[:nl+1])
		if rest := b[nl+1:]; len(rest) <= maxBuffered {
			s.buf = append(s.buf[:0], rest...)
		} else if err == nil {
			err = s.direct(rest)
		}
	}
	t.release()
	return len(b), err
}

// direct writes s.buf and b, the lines prefixed, in one write; the caller
// holds the output.
func (s *lineStream) direct(b []byte) error {
	t := s.t
	out := t.scratch[:0]
	if len(s.buf) > 0 {
		out = append(append(out, t.prefix...), s.buf...)
		s.buf = s.buf[:0]
		s.mid = true
	}
	for len(b) > 0 {
		if !s.mid {
			out = append(out, t.prefix...)
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, b...)
			s.mid = true
			break
		}
		out = append(out, b[:i+1]...)
		s.mid = false
		b = b[i+1:]
	}
	_, err := s.w.Write(out)
	if cap(out) <= maxBuffered {
		t.scratch = out[:0]
	} else {
		t.scratch = nil
	}
	return err
}

// release gives the output back unless a line of this target is still
// unfinished on it.
func (t *lineTarget) release() {
	if t.holding && !t.out.mid && !t.err.mid {
		t.holding = false
		t.l.mu.Unlock()
	}
}

// finish ends an unfinished line and marks it.
func (s *lineStream) finish() error {
	if len(s.buf) == 0 && !s.mid {
		return nil
	}
	if err := s.direct([]byte("\n")); err != nil {
		return err
	}
	_, err := s.w.Write(append(append(s.t.prefix[:len(s.t.prefix):len(s.t.prefix)], NoNewline...), '\n'))
	return err
}

// Done implements Output: it ends the target's unfinished lines and prints
// the messages about its end.
func (l *Lines) Done(r *Result) {
	v, ok := l.targets.LoadAndDelete(r.Target.Addr)
	var msgs []string
	if l.Messages != nil {
		msgs = l.Messages(r)
	}
	if !ok {
		if len(msgs) == 0 {
			return
		}
		v = &lineTarget{l: l, prefix: []byte(r.Target.Name + ": "), err: lineStream{w: l.Stderr}}
	}
	t := v.(*lineTarget)
	t.err.t = t
	if !t.holding {
		l.mu.Lock()
		t.holding = true
	}
	defer func() {
		t.holding = false
		l.mu.Unlock()
	}()
	t.out.finish()
	t.err.finish()
	for _, m := range msgs {
		t.err.w.Write(append(append(t.prefix[:len(t.prefix):len(t.prefix)], m...), '\n'))
	}
}
