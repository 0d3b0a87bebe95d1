package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/argtext"
)

// StdinChunk is the most stdin bytes one Session message carries. 128 KiB
// halves the CPU of 32 KiB messages for a bulk pipe (measured: 1 GiB through
// sha256sum, client 2.4 s vs 6.2 s, server 3.9 s vs 7.3 s), and a terminal's
// reads are small anyway.
const StdinChunk = 128 << 10

// ErrSignalBacklog is returned by Session.Signal when an earlier signal has
// not been sent yet: the stream is held up behind stdin that the command
// does not read. A caller that must stop the command then cancels the call.
var ErrSignalBacklog = errors.New("rexec: an earlier signal is still waiting to be sent")

// ErrSessionEnded is returned by Signal and Resize once the session is over.
var ErrSessionEnded = errors.New("rexec: the session has ended")

// Session is a running command with a live stream: an ExecService.Session
// call, or an ExecutionService.Attach. Make one with Client.OpenSession,
// OpenResumableSession or Attach, then call Wait exactly once; Signal,
// Resize and Cancel may be called from any goroutine meanwhile.
//
// One goroutine sends every message of the stream, so stdin, signals and
// resizes reach the server in the order that goroutine picked them (signals
// and resizes go before stdin still waiting). Stdin is read one chunk ahead
// at most, and a Send blocks while HTTP/2 flow control says the server's
// command is not reading: a command that never reads stdin never makes the
// client buffer more than a chunk or two.
//
// A resumable session survives a broken stream: Wait redials and attaches
// again from the last output it wrote, stdin goes on from where the server
// says it stands (the client keeps what the server has not taken, at most
// the server's stdin window), and the writers see every byte once. Output is
// acknowledged as it is written, so the server's journal can let go of it.
type Session struct {
	c      *Client
	ctx    context.Context // the streams'; cancelled when the session ends
	cancel context.CancelFunc
	resume *ResumeOptions // nil: the stream's end is the session's end

	signals   chan rexecv1.Signal
	resized   chan struct{} // a new size waits in size
	acks      chan struct{} // an ack of ackSeq is due
	cancelMsg chan struct{} // a cancel message is due
	wake      chan struct{} // stdin room, or a new stream

	chunks   chan []byte // stdin, read ahead; closed at EOF
	free     chan []byte // buffers back from the sender
	sendDone chan struct{}

	mu        sync.Mutex
	size      *rexecv1.WindowSize // latest Resize
	readErr   error               // a stdin read error other than EOF
	st        sessionStream       // the current stream
	gen       uint64              // which stream st is; bumped by a resume
	execID    string
	durable   bool // the server gave the command a resumable lifetime
	grace     time.Duration
	lastSeq   uint64 // the newest output written
	ackSeq    uint64
	ackedAt   int64  // output bytes written when the last ack was due
	ackWindow uint64 // the server's (Started, Attached); 0 unknown
	written   int64  // output bytes written
	in        stdinReplay
	cancelled bool // Cancel was called: the end is on purpose
	seen      bool // Started (or Attached) has arrived
	attached  *rexecv1.Attached
	endStream context.CancelFunc // the current stream's
}

// sessionStream is one stream of a session: a Session call or an Attach.
type sessionStream interface {
	send(m outMsg) error
	recv() (*rexecv1.Event, *rexecv1.StdinState, *rexecv1.Gap, error)
}

// outMsg is one client message, whichever the RPC.
type outMsg struct {
	stdin  []byte
	off    uint64 // a resumable session's stdin: the offset of stdin[0]
	close  bool
	signal rexecv1.Signal
	resize *rexecv1.WindowSize
	ack    uint64
	hasAck bool
	cancel bool
}

// stdinReplay is a resumable session's stdin that the server has not
// taken: buf holds the bytes from offset taken on; next is the offset of
// the first one not sent on the current stream.
type stdinReplay struct {
	buf       []byte
	arr       []byte // the array buf lies in, whole
	taken     uint64
	next      uint64
	window    uint64
	eof       bool // stdin ended: close it after everything is sent
	closeSent bool // on the current stream
	closed    bool // the server says stdin is closed
}

func (r *stdinReplay) end() uint64 { return r.taken + uint64(len(r.buf)) }

// add appends b to buf. takenTo drops buf's front by slicing, so a plain
// append would grow a new array (copying all that is held) every time it
// ran out at the end; add moves what is held to the front of its array
// instead while that has room, which the window bounds.
func (r *stdinReplay) add(b []byte) {
	if len(r.buf)+len(b) > cap(r.buf) && len(r.buf)+len(b) <= cap(r.arr) {
		r.buf = r.arr[:copy(r.arr, r.buf)]
	}
	r.buf = append(r.buf, b...)
	if cap(r.buf) > cap(r.arr) {
		r.arr = r.buf[:cap(r.buf)] // append grew a new array
	}
}

// takenTo records that the server has taken stdin up to off.
func (r *stdinReplay) takenTo(off uint64) {
	if off <= r.taken {
		return
	}
	drop := min(off-r.taken, uint64(len(r.buf)))
	r.buf = r.buf[drop:]
	r.taken = off
	r.next = max(r.next, off)
	if len(r.buf) == 0 {
		r.buf = r.arr[:0] // start again at the front
	}
}

// defaultStdinWindow is what a resumable session sends beyond the server's
// taken bytes before the server has said its window.
const defaultStdinWindow = StdinChunk

// OpenSession starts start's command and begins copying stdin to it (nil
// stdin: the command reads EOF at once). Cancelling ctx ends the call, and
// the server kills the command.
//
// At the session's end a Read of stdin may still be pending (a terminal with
// nothing typed); its goroutine ends when that Read returns, and the data is
// dropped.
func (c *Client) OpenSession(ctx context.Context, start *rexecv1.SessionStart, stdin io.Reader) (*Session, error) {
	return c.openSession(ctx, start, stdin, nil)
}

// OpenResumableSession is OpenSession for a command that survives a broken
// stream (lifetime RESUMABLE): Wait resumes it as opts say. Cancelling ctx
// is an on-purpose end: the server is told to kill the command (a cancel
// message, or ExecutionService.Kill when the stream is held up behind
// stdin) before the call ends. A server that keeps no journal gives the
// command lifetime CALL (Started says so), and the session is then a plain
// one.
func (c *Client) OpenResumableSession(ctx context.Context, start *rexecv1.SessionStart, stdin io.Reader, opts ResumeOptions) (*Session, error) {
	if start.GetCommand() == nil {
		return nil, errors.New("rexec: session start without a command")
	}
	start = proto.CloneOf(start)
	start.Command.Lifetime = rexecv1.Lifetime_LIFETIME_RESUMABLE
	opts.setDefaults()
	return c.openSession(ctx, start, stdin, &opts)
}

func (c *Client) openSession(ctx context.Context, start *rexecv1.SessionStart, stdin io.Reader, resume *ResumeOptions) (*Session, error) {
	if err := argtext.CheckSession(start); err != nil {
		return nil, err
	}
	s := c.newSession(ctx, resume)
	stream, err := c.exec.Session(s.ctx)
	if err != nil {
		s.cancel()
		return nil, c.wrongPort(err)
	}
	s.st = sessionCall{stream, new(rexecv1.SessionResponse)}
	if err := stream.Send(&rexecv1.SessionRequest{Msg: &rexecv1.SessionRequest_Start{Start: start}}); err != nil && !errors.Is(err, io.EOF) {
		s.cancel()
		return nil, c.wrongPort(err)
	} // io.EOF: the server ended the call; Wait's Recv says why
	s.in.taken = uint64(len(start.GetCommand().GetStdin()))
	s.in.next = s.in.taken
	s.startIO(stdin)
	return s, nil
}

// newSession makes a session whose streams live until it ends: a
// resumable one's are not cut by ctx, which is watched to end the command
// on purpose first (the server cannot tell a cancelled stream from a broken
// one).
func (c *Client) newSession(ctx context.Context, resume *ResumeOptions) *Session {
	s := &Session{
		c: c, resume: resume,
		signals:   make(chan rexecv1.Signal, 1),
		resized:   make(chan struct{}, 1),
		acks:      make(chan struct{}, 1),
		cancelMsg: make(chan struct{}, 1),
		wake:      make(chan struct{}, 1),
		chunks:    make(chan []byte),
		free:      make(chan []byte, 2),
		sendDone:  make(chan struct{}),
	}
	s.in.window = defaultStdinWindow
	if resume == nil {
		s.ctx, s.cancel = context.WithCancel(ctx)
		return s
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { s.Cancel(); s.cancel() })
	go func() { <-s.ctx.Done(); stop() }()
	return s
}

func (s *Session) startIO(stdin io.Reader) {
	if stdin == nil {
		close(s.chunks)
	} else {
		s.free <- make([]byte, StdinChunk)
		s.free <- make([]byte, StdinChunk)
		growPipe(stdin)
		go s.readStdin(stdin)
	}
	go s.send()
}

// Session runs start's command with stdin streamed to it and its output
// copied to the writers; it returns the Exited event, or an error when rexec
// itself failed (a gRPC status, a broken stream, a writer's or stdin's
// error). With a tty all output comes as stdout.
func (c *Client) Session(ctx context.Context, start *rexecv1.SessionStart, stdin io.Reader, stdout, stderr io.Writer) (*rexecv1.Exited, error) {
	s, err := c.OpenSession(ctx, start, stdin)
	if err != nil {
		return nil, err
	}
	return s.Wait(stdout, stderr)
}

// ExecutionID is the command's execution id, once Started (or Attached)
// has arrived; "" before.
func (s *Session) ExecutionID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.execID
}

// LastSeq is the seq of the newest output Wait has written.
func (s *Session) LastSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSeq
}

// Signal asks the server to send sig to the command's process group (with a
// tty, to the terminal's foreground job). It does not wait for the send; it
// returns ErrSignalBacklog while an earlier signal is unsent.
func (s *Session) Signal(sig rexecv1.Signal) error {
	select {
	case <-s.sendDone:
		return ErrSessionEnded
	default:
	}
	select {
	case s.signals <- sig:
		return nil
	default:
		return ErrSignalBacklog
	}
}

// Resize tells the server the terminal's new size. Sizes not yet sent are
// replaced by the latest.
func (s *Session) Resize(rows, cols uint16) error {
	select {
	case <-s.sendDone:
		return ErrSessionEnded
	default:
	}
	s.mu.Lock()
	s.size = &rexecv1.WindowSize{Rows: uint32(rows), Cols: uint32(cols)}
	s.mu.Unlock()
	select {
	case s.resized <- struct{}{}:
	default: // already pending; it will send the latest size
	}
	return nil
}

// cancelWait bounds how long Cancel waits for the server to take the cancel
// message before it asks through ExecutionService.Kill instead.
const cancelWait = time.Second

// Cancel ends the command on purpose: the server kills its process group
// (TERM, then KILL; reason CANCELLED) instead of waiting for a resume. It
// sends a cancel message and, if the stream does not end within a second
// (it is held up behind stdin the command does not read), asks with
// ExecutionService.Kill. Wait then returns; a plain session is just
// cancelled.
func (s *Session) Cancel() {
	s.mu.Lock()
	already := s.cancelled
	s.cancelled = true
	plain := s.resume == nil || (s.seen && !s.durable)
	id := s.execID
	s.mu.Unlock()
	if already {
		return
	}
	if plain {
		s.cancel()
		return
	}
	select {
	case s.cancelMsg <- struct{}{}:
	default:
	}
	t := time.NewTimer(cancelWait)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return
	case <-t.C:
	}
	if id != "" {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 2*time.Second)
		defer cancel()
		_, _ = s.c.Kill(ctx, id, rexecv1.Signal_SIGNAL_UNSPECIFIED)
	}
	s.cancel()
}

// Wait copies the command's output to the writers until it exits, and
// returns its Exited event, or an error when rexec itself failed. A
// resumable session resumes a broken stream first (see ResumeOptions). It
// ends the call and the session's sender before it returns.
func (s *Session) Wait(stdout, stderr io.Writer) (*rexecv1.Exited, error) {
	exited, err := s.receive(stdout, stderr)
	s.cancel()
	<-s.sendDone
	s.mu.Lock()
	if s.readErr != nil {
		err = s.readErr // the cause of the call's cancellation, if any
	}
	s.mu.Unlock()
	return exited, s.c.wrongPort(err)
}

func (s *Session) stream() (sessionStream, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st, s.gen
}

// receive is Receive over the session's streams, with resumes.
func (s *Session) receive(stdout, stderr io.Writer) (*rexecv1.Exited, error) {
	var started bool
	st, _ := s.stream()
	for {
		ev, stdinState, gap, err := st.recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("rexec: the stream ended without an exit status")
			}
			if s.canResume(err) {
				if rerr := s.resumeStream(err); rerr != nil {
					return nil, rerr
				}
				st, _ = s.stream()
				continue
			}
			if started && status.Code(err) == codes.Unavailable {
				return nil, fmt.Errorf("%w: %w", ErrLostMidCommand, err)
			}
			return nil, err
		}
		started = true
		if stdinState != nil {
			s.stdinState(stdinState)
		}
		if gap != nil && s.resume != nil && s.resume.OnGap != nil {
			s.resume.OnGap(gap)
		}
		if gap != nil {
			s.mu.Lock()
			s.lastSeq = max(s.lastSeq, gap.GetLastSeq())
			s.mu.Unlock()
		}
		if ev == nil {
			continue
		}
		var out *rexecv1.Output
		w, name := stdout, "stdout"
		switch k := ev.GetKind().(type) {
		case *rexecv1.Event_Started:
			s.started(k.Started)
			continue
		case *rexecv1.Event_Stdout:
			out = k.Stdout
		case *rexecv1.Event_Stderr:
			out, w, name = k.Stderr, stderr, "stderr"
		case *rexecv1.Event_Exited:
			if _, isCall := st.(sessionCall); isCall {
				// The server ends the call with OK right after Exited; read
				// that end so it is not cut short by our cancel.
				if _, _, _, rerr := st.recv(); rerr != nil && !errors.Is(rerr, io.EOF) {
					return k.Exited, rerr
				}
			}
			return k.Exited, nil
		default:
			return nil, fmt.Errorf("rexec: unknown event %T (a newer server?)", k)
		}
		s.mu.Lock()
		last := s.lastSeq
		s.mu.Unlock()
		if out.GetSeq() != last+1 {
			return nil, fmt.Errorf("rexec: output sequence jumped from %d to %d", last, out.GetSeq())
		}
		if _, err := w.Write(out.GetData()); err != nil {
			return nil, fmt.Errorf("rexec: writing %s: %w", name, err)
		}
		s.wrote(out.GetSeq(), len(out.GetData()))
	}
}

func (s *Session) started(st *rexecv1.Started) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.execID, s.seen = st.GetExecutionId(), true
	s.durable = s.resume != nil && st.GetLifetime() == rexecv1.Lifetime_LIFETIME_RESUMABLE
	s.grace = st.GetReconnectGrace().AsDuration()
	s.ackWindow = st.GetAckWindow()
}

// ackEvery is how much output a resumable session writes between acks, by
// the server's ack window (its --journal-max): a quarter of it, between
// 64 KiB and 4 MiB, so that the server never holds the command back for
// an ack while acks stay few (a GiB at the default window is 256 of them).
// Before the server has said its window, 256 KiB: a journal holds at least
// 1 MiB.
func ackEvery(window uint64) int64 {
	if window == 0 {
		return 256 << 10
	}
	return int64(min(max(window/4, 64<<10), 4<<20))
}

// wrote records output written, and asks for an ack when enough is.
func (s *Session) wrote(seq uint64, n int) {
	s.mu.Lock()
	s.lastSeq = seq
	s.written += int64(n)
	due := s.durable && s.written-s.ackedAt >= ackEvery(s.ackWindow)
	if due {
		s.ackSeq, s.ackedAt = seq, s.written
	}
	s.mu.Unlock()
	if due {
		select {
		case s.acks <- struct{}{}:
		default:
		}
	}
}

// stdinState takes the server's side of stdin: what it has taken need not
// be kept, and the window says how much may be in flight.
func (s *Session) stdinState(st *rexecv1.StdinState) {
	s.mu.Lock()
	s.in.takenTo(st.GetTaken())
	if w := st.GetWindow(); w > 0 {
		s.in.window = w
	}
	s.in.closed = st.GetClosed()
	s.mu.Unlock()
	s.poke()
}

func (s *Session) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// readStdin reads stdin into the free buffers and hands them to the sender.
func (s *Session) readStdin(r io.Reader) {
	defer close(s.chunks)
	for {
		var buf []byte
		select {
		case buf = <-s.free:
		case <-s.ctx.Done():
			return
		}
		n, err := r.Read(buf)
		if n > 0 {
			select {
			case s.chunks <- buf[:n]:
			case <-s.ctx.Done():
				return
			}
		} else {
			s.free <- buf
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.mu.Lock()
				s.readErr = fmt.Errorf("rexec: reading stdin: %w", err)
				s.mu.Unlock()
				s.cancel()
			}
			return
		}
	}
}

// send is the stream's only sender. Control messages go first (cancel,
// signals, resizes, acks); stdin after them, then close_stdin at its end.
// A resumable session's stdin goes through the replay buffer, from which a
// new stream is sent what the server had not taken.
func (s *Session) send() {
	defer close(s.sendDone)
	chunks := s.chunks
	for {
		st, gen := s.stream()
		m, ok := s.nextMsg(&chunks)
		if !ok {
			return
		}
		err := st.send(m)
		if s.resume == nil {
			if m.stdin != nil {
				// Send has marshalled the message: the buffer is free again.
				s.free <- m.stdin[:cap(m.stdin)]
			}
		} else if err == nil {
			s.sent(m, gen)
		}
		if err != nil {
			// The server ended the call (io.EOF) or the call broke: Wait's
			// Recv has the status, and a resumable session a new stream.
			if s.resume == nil || !s.waitStream(gen) {
				return
			}
		}
	}
}

// sent records what a resumable session's stream gen has sent.
func (s *Session) sent(m outMsg, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen {
		return
	}
	switch {
	case m.stdin != nil:
		s.in.next = max(s.in.next, m.off+uint64(len(m.stdin)))
	case m.close:
		s.in.closeSent = true
	}
}

// waitStream waits until a resume has replaced stream gen; false when the
// session ended instead.
func (s *Session) waitStream(gen uint64) bool {
	for {
		s.mu.Lock()
		cur := s.gen
		s.mu.Unlock()
		if cur != gen {
			return true
		}
		select {
		case <-s.ctx.Done():
			return false
		case <-s.wake:
		}
	}
}

// nextMsg picks the next message to send, waiting for one.
func (s *Session) nextMsg(chunks *chan []byte) (outMsg, bool) {
	for {
		// Control first, when ready.
		select {
		case <-s.cancelMsg:
			return outMsg{cancel: true}, true
		case sig := <-s.signals:
			return outMsg{signal: sig}, true
		case <-s.resized:
			return outMsg{resize: s.latestSize()}, true
		case <-s.acks:
			return s.ackMsg(), true
		default:
		}
		if s.resume != nil {
			if m, ok := s.replayMsg(); ok {
				return m, true
			}
		}
		in := *chunks
		if s.resume != nil && !s.roomForChunk() {
			in = nil // the server's window is full: wait for it to take some
		}
		select {
		case <-s.cancelMsg:
			return outMsg{cancel: true}, true
		case sig := <-s.signals:
			return outMsg{signal: sig}, true
		case <-s.resized:
			return outMsg{resize: s.latestSize()}, true
		case <-s.acks:
			return s.ackMsg(), true
		case b, ok := <-in:
			if !ok {
				*chunks = nil
				if s.resume == nil {
					return outMsg{close: true}, true
				}
				s.mu.Lock()
				s.in.eof = true
				s.mu.Unlock()
				continue
			}
			if s.resume == nil {
				return outMsg{stdin: b}, true
			}
			s.mu.Lock()
			s.in.add(b)
			s.mu.Unlock()
			s.free <- b[:cap(b)]
		case <-s.wake:
		case <-s.ctx.Done():
			return outMsg{}, false
		}
	}
}

// replayMsg is the next stdin (or close) a resumable session's current
// stream has not been sent.
func (s *Session) replayMsg() (outMsg, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &s.in
	if r.next < r.end() {
		from := r.next - r.taken
		to := min(uint64(len(r.buf)), from+StdinChunk)
		return outMsg{stdin: r.buf[from:to:to], off: r.next}, true
	}
	if r.eof && !r.closeSent && !r.closed {
		return outMsg{close: true}, true
	}
	return outMsg{}, false
}

// roomForChunk: the server's stdin window has room for another chunk.
func (s *Session) roomForChunk() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.in.buf) == 0 || uint64(len(s.in.buf))+StdinChunk <= s.in.window
}

func (s *Session) ackMsg() outMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return outMsg{ack: s.ackSeq, hasAck: true}
}

func (s *Session) latestSize() *rexecv1.WindowSize {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// sessionCall is an ExecService.Session stream.
type sessionCall struct {
	stream rexecv1.ExecService_SessionClient
	// m is every message received: the codec then reuses its output
	// buffer (receive is done with a message before the next).
	m *rexecv1.SessionResponse
}

func (c sessionCall) send(m outMsg) error {
	var req rexecv1.SessionRequest
	switch {
	case m.cancel:
		req.Msg = &rexecv1.SessionRequest_Cancel{Cancel: &rexecv1.Cancel{}}
	case m.signal != 0:
		req.Msg = &rexecv1.SessionRequest_Signal{Signal: m.signal}
	case m.resize != nil:
		req.Msg = &rexecv1.SessionRequest_Resize{Resize: m.resize}
	case m.hasAck:
		req.Msg = &rexecv1.SessionRequest_Ack{Ack: &rexecv1.Ack{Seq: m.ack}}
	case m.close:
		req.Msg = &rexecv1.SessionRequest_CloseStdin{CloseStdin: &rexecv1.CloseStdin{}}
	default:
		req.Msg = &rexecv1.SessionRequest_Stdin{Stdin: m.stdin}
	}
	return c.stream.Send(&req)
}

func (c sessionCall) recv() (*rexecv1.Event, *rexecv1.StdinState, *rexecv1.Gap, error) {
	m := c.m
	if err := c.stream.RecvMsg(m); err != nil {
		return nil, nil, nil, err
	}
	if m.GetEvent() == nil && m.GetStdin() == nil {
		return nil, nil, nil, errors.New("rexec: an empty session message (a newer server?)")
	}
	return m.GetEvent(), m.GetStdin(), nil, nil
}

// attachCall is an ExecutionService.Attach stream, after its Attached.
type attachCall struct {
	stream rexecv1.ExecutionService_AttachClient
	m      *rexecv1.AttachResponse // as sessionCall.m
}

func (c attachCall) send(m outMsg) error {
	var req rexecv1.AttachRequest
	switch {
	case m.cancel:
		req.Msg = &rexecv1.AttachRequest_Cancel{Cancel: &rexecv1.Cancel{}}
	case m.signal != 0:
		req.Msg = &rexecv1.AttachRequest_Signal{Signal: m.signal}
	case m.resize != nil:
		req.Msg = &rexecv1.AttachRequest_Resize{Resize: m.resize}
	case m.hasAck:
		req.Msg = &rexecv1.AttachRequest_Ack{Ack: &rexecv1.Ack{Seq: m.ack}}
	case m.close:
		req.Msg = &rexecv1.AttachRequest_CloseStdin{CloseStdin: &rexecv1.CloseStdin{}}
	default:
		req.Msg = &rexecv1.AttachRequest_Stdin{Stdin: m.stdin}
	}
	return c.stream.Send(&req)
}

func (c attachCall) recv() (*rexecv1.Event, *rexecv1.StdinState, *rexecv1.Gap, error) {
	m := c.m
	if err := c.stream.RecvMsg(m); err != nil {
		return nil, nil, nil, err
	}
	return m.GetEvent(), m.GetStdin(), m.GetGap(), nil
}
