package journal

import (
	"context"
	"io"
)

// stdinPump owns a command's live stdin, so that it outlives the streams
// that feed it: an attachment hands it chunks, and one goroutine writes
// them to the command, blocking while the command does not read. The
// Execution's mutex guards it.
//
// Taken counts the bytes handed to the writer (written, or being written):
// a chunk once taken is the command's, whatever happens to the stream that
// sent it. Chunks queued but not taken are dropped when their attachment
// ends; its client sends them again from Taken after a resume, so that
// stdin arrives once, in order.
type stdinPump struct {
	w      io.WriteCloser
	window int

	queue       [][]byte
	queued      int
	taken       uint64
	closeQueued bool // close after the queue
	closed      bool
	failed      bool // a write failed: the command closed its stdin or ended
}

// StdinState is the server's side of a command's stdin.
type StdinState struct {
	// Taken counts the bytes handed to the command (the start's own
	// included): after a resume the client sends from there.
	Taken uint64
	// Window is how many bytes beyond Taken a client may send without the
	// stream being held up.
	Window int
	// Closed: stdin has been closed (the command read or will read EOF).
	Closed bool
}

func (s *stdinPump) state() StdinState {
	return StdinState{Taken: s.taken, Window: s.window, Closed: s.closed}
}

// pumpStdin writes the queued chunks to the command until it ends.
func (x *Execution) pumpStdin() {
	s := x.stdin
	x.mu.Lock()
	defer x.mu.Unlock()
	for {
		for len(s.queue) == 0 && !s.closeQueued && x.exit == nil {
			_ = x.waitLocked(context.Background())
		}
		if x.exit != nil {
			return
		}
		if len(s.queue) > 0 {
			b := s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
			s.queued -= len(b)
			s.taken += uint64(len(b))
			x.broadcast()
			if s.failed {
				continue // what a command that closed its stdin is sent is dropped, as a pipe drops it
			}
			x.mu.Unlock()
			_, err := s.w.Write(b)
			x.mu.Lock()
			if err != nil {
				s.failed = true
			}
			continue
		}
		s.closeQueued, s.closed = false, true
		x.broadcast()
		if s.w != nil {
			x.mu.Unlock()
			_ = s.w.Close()
			x.mu.Lock()
		}
	}
}
