package rawserver

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/keyspec"
	"github.com/rexec/rexec/journal"
	"github.com/rexec/rexec/rawsock"
	"github.com/rexec/rexec/runner"
)

// Config configures a Server. Zero fields take the defaults below.
type Config struct {
	// Keys are the keys a client may prove (required): the gRPC server's ring.
	Keys *interceptors.KeyRing
	// Runner runs the commands (required); share it with the gRPC server.
	Runner *runner.Runner
	// Journal, when set, keeps every command's events, as the gRPC
	// server's does (share it): the command's frames are read from it, and
	// rexec ps and logs show raw commands too. Its stdin stays this
	// server's to write (with its own back-pressure), and a raw command
	// ends with its connection (lifetime call). By default there is none.
	Journal *journal.Journal
	// Logger gets connection errors. By default slog.Default().
	Logger *slog.Logger
	// HandshakeTimeout drops a client that has not finished the handshake in
	// this long (slowloris). By default 5s.
	HandshakeTimeout time.Duration
	// MaxUnauthenticated bounds the connections still in their handshake. A
	// new connection past it evicts (closes) the oldest one, so that idle
	// connections cannot lock out a client that answers promptly. By
	// default 64.
	MaxUnauthenticated int
	// MaxUnauthenticatedPerHost bounds those from one source address (an
	// IPv4 address, an IPv6 /64): a new one past it evicts that host's
	// oldest, never another host's. By default half of MaxUnauthenticated.
	MaxUnauthenticatedPerHost int
	// IdleTimeout closes an authenticated connection that runs no command
	// and sends no frame for this long, after an error frame (Unavailable)
	// that says so. By default 5m; negative: never.
	IdleTimeout time.Duration
	// MaxFrame bounds a frame a client sends. By default rawsock.DefaultMaxFrame.
	MaxFrame int
	// Observer, when set, is told how each handshake ended and of frames
	// refused for their key (observer.go). By default there is none.
	Observer Observer
}

// DefaultIdleTimeout is Config.IdleTimeout's default.
const DefaultIdleTimeout = 5 * time.Minute

// Server serves the raw protocol.
type Server struct {
	cfg Config
	hs  *handshakeTable
	// base is cancelled, with runner.ErrShutdown as its cause, when the
	// shutdown grace has passed: every running command is then killed.
	base     context.Context
	stopCmds context.CancelCauseFunc

	mu       sync.Mutex
	lis      map[net.Listener]bool
	conns    map[*conn]bool
	draining bool
	wg       sync.WaitGroup
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 5 * time.Second
	}
	if cfg.MaxUnauthenticated <= 0 {
		cfg.MaxUnauthenticated = 64
	}
	if cfg.MaxUnauthenticatedPerHost <= 0 {
		cfg.MaxUnauthenticatedPerHost = max(cfg.MaxUnauthenticated/2, 1)
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = rawsock.DefaultMaxFrame
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	s := &Server{cfg: cfg, hs: newHandshakeTable(cfg.MaxUnauthenticated, cfg.MaxUnauthenticatedPerHost),
		lis: map[net.Listener]bool{}, conns: map[*conn]bool{}}
	s.base, s.stopCmds = context.WithCancelCause(context.Background())
	return s
}

// ErrServerClosed is returned by Serve after Shutdown or Stop.
var ErrServerClosed = errors.New("rawsock: server closed")

// Serve accepts connections on lis until Shutdown or Stop.
func (s *Server) Serve(lis net.Listener) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		lis.Close()
		return ErrServerClosed
	}
	s.lis[lis] = true
	s.mu.Unlock()
	var backoff time.Duration
	for {
		nc, err := lis.Accept()
		if err != nil && transientAccept(err) && !s.closing() {
			// Out of file descriptors, or a peer gone before accept: wait
			// and go on, as net/http does, instead of ending the server.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.cfg.Logger.Warn("raw accept failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if err != nil {
			s.mu.Lock()
			closed := s.draining
			delete(s.lis, lis)
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			return fmt.Errorf("rawsock: accept: %w", err)
		}
		c := &conn{s: s, nc: nc, peer: nc.RemoteAddr().String()}
		s.mu.Lock()
		if s.draining {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		var victim *pending
		c.pend, victim = s.hs.add(nc)
		if victim != nil {
			victim.nc.Close() // its goroutine logs it
		}
		go c.serve()
	}
}

func transientAccept(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS)
}

func (s *Server) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// Shutdown stops accepting connections and closes idle ones; connections
// with a running command are closed when it ends. Commands still running
// after grace are killed (their clients get an exit frame with reason
// shutdown); Shutdown returns once every connection has ended, or after the
// runner's kill and drain graces more, when it closes whatever is left.
func (s *Server) Shutdown(grace time.Duration) {
	s.mu.Lock()
	s.draining = true
	for l := range s.lis {
		l.Close()
	}
	for c := range s.conns {
		c.drain()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	s.cfg.Runner.Drain(grace, done, s.stopCmds, s.closeAll)
	<-done
}

// Stop closes every connection and kills every command at once.
func (s *Server) Stop() {
	s.mu.Lock()
	s.draining = true
	for l := range s.lis {
		l.Close()
	}
	s.mu.Unlock()
	s.stopCmds(runner.ErrShutdown)
	s.closeAll()
	s.wg.Wait()
}

func (s *Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.nc.Close()
	}
}

// conn is one client connection.
type conn struct {
	s    *Server
	nc   net.Conn
	peer string
	pend *pending          // its entry in the handshake table
	key  *interceptors.Key // as the handshake proved it; see liveKey

	wmu    sync.Mutex  // frames are written by the reader and by the command's pump
	ending atomic.Bool // the connection is being failed: the pump writes no more frames

	mu       sync.Mutex
	proc     command // the running command, or nil once it has exited
	pumps    int     // commands whose events are still being sent
	draining bool
	runs     sync.WaitGroup
}

func (c *conn) serve() {
	defer func() {
		c.nc.Close()
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		c.s.wg.Done()
	}()
	key, err := c.handshake()
	if evicted, total := c.s.hs.remove(c.pend); evicted {
		c.s.cfg.Observer.Handshake(HandshakeFailed, HandshakeEvicted)
		c.s.cfg.Logger.Warn("raw handshake abandoned: evicted by a newer connection (too many in their handshake)",
			"peer", c.peer, "limit", c.s.cfg.MaxUnauthenticated, "per_host", c.s.cfg.MaxUnauthenticatedPerHost, "evicted_total", total)
		return
	}
	c.s.cfg.Observer.Handshake(handshakeOutcome(err))
	if err != nil {
		c.s.cfg.Logger.Warn("raw handshake failed", "peer", c.peer, "err", err)
		return
	}
	c.key = key
	c.s.cfg.Logger.Debug("raw connection authenticated", "peer", c.peer, "key_id", key.ID)

	// Closing the connection cancels its context, and so kills its command.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer c.runs.Wait()
	// Before waiting for the pump: one blocked writing to a client that
	// stopped reading (and sent a bad frame, or half-closed) fails at once.
	defer c.nc.Close()
	defer cancel(errors.New("connection closed"))
	rd := rawsock.NewReader(c.nc, c.s.cfg.MaxFrame)
	for {
		c.armIdle()
		f, err := rd.Next()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = errIdle{c.s.cfg.IdleTimeout}
		}
		if err == nil {
			err = c.dispatch(ctx, f)
		}
		if err == nil {
			continue
		}
		var (
			proto   errProtocol
			revoked errKeyRevoked
			idle    errIdle
		)
		switch {
		case errors.Is(err, rawsock.ErrFrameTooLarge) || errors.Is(err, rawsock.ErrEmptyFrame) || errors.Is(err, rawsock.ErrUnknownType) || errors.As(err, &proto):
			c.s.cfg.Logger.Warn("raw connection closed: protocol error", "peer", c.peer, "err", err)
			c.fail(cancel, err)
		case errors.As(err, &revoked):
			c.s.cfg.Logger.Warn("raw connection closed: its key was removed or changed by a reload", "peer", c.peer, "key_id", c.key.ID)
			c.fail(cancel, err)
		case errors.As(err, &idle):
			c.s.cfg.Logger.Info("raw connection closed: idle", "peer", c.peer, "key_id", c.key.ID, "after", idle.after)
			c.fail(cancel, err)
		case errors.Is(err, errClientGone):
			c.s.cfg.Logger.Debug("raw connection closed by the client while its command's stdin was full", "peer", c.peer)
		}
		return
	}
}

// errorFrameTimeout bounds the write of the error frame that ends a
// connection: a client that reads nothing does not get it, and does not
// hold the connection either.
const errorFrameTimeout = 2 * time.Second

// fail ends the connection for err. Its command is cancelled first, at
// once: the command's pump may be blocked writing to a client that reads
// nothing, holding the write lock that the error frame needs. Then the error
// frame is written as the connection's last frame (the pump writes none
// after it: ending), within errorFrameTimeout: the write deadline also fails
// a pump write blocked on such a client, which frees the lock. The caller
// closes the connection.
func (c *conn) fail(cancel context.CancelCauseFunc, err error) {
	c.ending.Store(true)
	cancel(err)
	_ = c.nc.SetWriteDeadline(time.Now().Add(errorFrameTimeout))
	_ = c.writeError(err)
}

// armIdle starts the idle timer when no command runs, and stops it when one
// does (its stdin may be quiet for as long as the command runs).
func (c *conn) armIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armIdleLocked()
}

func (c *conn) armIdleLocked() {
	var t time.Time
	if c.pumps == 0 && c.s.cfg.IdleTimeout > 0 {
		t = time.Now().Add(c.s.cfg.IdleTimeout)
	}
	_ = c.nc.SetReadDeadline(t)
}

// liveKey is the connection's key as the key ring holds it now, so that a
// reload (SIGHUP) acts on open connections too: new scopes apply to the
// next frame, and a key removed from the file, given another secret, or
// bound to a client certificate (cert=, which a raw connection cannot
// carry) no longer authenticates the connection (errKeyRevoked).
func (c *conn) liveKey() (*interceptors.Key, error) {
	k := c.s.cfg.Keys.Lookup(c.key.ID)
	if k == nil || subtle.ConstantTimeCompare(k.Secret, c.key.Secret) != 1 || interceptors.CheckConn(k, nil) != nil {
		return nil, errKeyRevoked{c.key.ID}
	}
	return k, nil
}

func (c *conn) handshake() (*interceptors.Key, error) {
	if err := c.nc.SetDeadline(time.Now().Add(c.s.cfg.HandshakeTimeout)); err != nil {
		return nil, err
	}
	key, err := serverHandshake(c.nc, c.s.cfg.Keys, newChallenge())
	if err != nil {
		return nil, err
	}
	return key, c.nc.SetDeadline(time.Time{})
}

// drain closes the connection now if it is idle, else once its command ends.
func (c *conn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	if c.pumps == 0 {
		c.nc.Close()
	}
}

// command is a running command: a runner.Process, or an execution of the
// journal started with direct stdin.
type command interface {
	Stdin() io.WriteCloser
	Signal(syscall.Signal) error
}

func (c *conn) current() command {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc
}

// dispatch handles one frame from the client. An error it returns closes
// the connection; a refused command is answered with an error frame instead.
func (c *conn) dispatch(ctx context.Context, f rawsock.Frame) error {
	switch f.Type {
	case rawsock.TypeCommand:
		if err := c.start(ctx, f.Payload); err != nil {
			var (
				proto   errProtocol
				revoked errKeyRevoked
			)
			if errors.As(err, &proto) || errors.As(err, &revoked) {
				return err
			}
			return c.writeError(err)
		}
	case rawsock.TypeEcho:
		key, err := c.liveKey()
		if err != nil {
			return err
		}
		if !key.Allows(interceptors.ScopeEcho) {
			return c.writeError(errNoScope{key.ID, interceptors.ScopeEcho})
		}
		if len(f.Payload) == 0 {
			return errProtocol{"echo frame without its flags byte"}
		}
		msg := f.Payload[1:]
		if f.Payload[0]&rawsock.EchoUpper != 0 {
			msg = []byte(strings.ToUpper(string(msg)))
		}
		return c.write(rawsock.TypeEchoReply, msg)
	case rawsock.TypeStdin, rawsock.TypeStdinClose:
		// Input for a command that has ended raced with its exit: dropped.
		p := c.current()
		if p == nil || p.Stdin() == nil {
			return nil
		}
		if f.Type == rawsock.TypeStdinClose {
			_ = p.Stdin().Close()
		} else {
			return c.deliver(p.Stdin(), f.Payload)
		}
	case rawsock.TypeSignal:
		sig, ok := runner.SignalByName(string(f.Payload))
		if !ok {
			return c.writeError(&runner.FieldError{Field: "signal", Problem: fmt.Sprintf("unknown signal %q", f.Payload)})
		}
		if p := c.current(); p != nil {
			_ = p.Signal(sig)
		}
	default:
		return errProtocol{fmt.Sprintf("a client may not send a %v frame", f.Type)}
	}
	return nil
}

// start starts the command of a command frame and pumps its events in a
// goroutine, so that stdin and signal frames are read while it runs.
func (c *conn) start(ctx context.Context, payload []byte) error {
	c.mu.Lock()
	busy, draining := c.proc != nil, c.draining
	c.mu.Unlock()
	switch {
	case busy:
		return errProtocol{"a command frame while a command runs: one command at a time per connection"}
	case draining:
		return runner.ErrShutdown
	}
	key, err := c.liveKey()
	if err != nil {
		return err
	}
	if !key.Allows(interceptors.ScopeExec) {
		return errNoScope{key.ID, interceptors.ScopeExec}
	}
	spec, limits, err := decodeCommand(payload)
	if err == nil {
		err = keyspec.Apply(&spec, key, limits)
	}
	if err != nil {
		return err
	}
	spec.Audit = []slog.Attr{slog.String("transport", "raw"), slog.String("peer", c.peer), slog.String("key_id", key.ID)}
	// The command's context: the connection's, and also cancelled (with the
	// shutdown cause) when the server's shutdown grace has passed.
	cctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(c.s.base, func() { cancel(context.Cause(c.s.base)) })
	if j := c.s.cfg.Journal; j != nil {
		return c.startJournaled(j, cctx, func() { stop(); cancel(nil) }, spec, key.ID)
	}
	p, err := c.s.cfg.Runner.Start(cctx, spec)
	if err != nil {
		stop()
		cancel(nil)
		return err
	}
	c.mu.Lock()
	c.proc = p
	c.pumps++
	c.mu.Unlock()
	c.runs.Add(1)
	go func() {
		defer c.runs.Done()
		defer func() { stop(); cancel(nil) }()
		_, err := p.Wait(&frameSink{c: c})
		if err != nil {
			c.s.cfg.Logger.Debug("raw command's peer failed", "peer", c.peer, "err", err)
		}
		c.idle()
	}()
	return nil
}

// startJournaled starts spec as an execution of the journal (it ends with
// the connection) and pumps its events from the journal into frames, as
// the gRPC server's streams read theirs.
func (c *conn) startJournaled(j *journal.Journal, ctx context.Context, done func(), spec runner.Spec, owner string) error {
	spec.Audit = append(spec.Audit, slog.String("lifetime", journal.Call.String()))
	x, a, err := j.Start(ctx, c.s.cfg.Runner, spec, journal.StartOptions{Owner: owner, Lifetime: journal.Call, Attach: true, DirectStdin: true})
	if err != nil {
		done()
		return err
	}
	c.mu.Lock()
	c.proc = x
	c.pumps++
	c.mu.Unlock()
	c.runs.Add(1)
	go func() {
		defer c.runs.Done()
		defer done()
		sink := &frameSink{c: c}
		var err error
		for err == nil {
			var it journal.Item
			if it, err = a.Next(ctx); err != nil {
				break
			}
			switch it.Kind {
			case journal.ItemStarted:
				err = sink.Started(x.ID(), it.Pid)
			case journal.ItemOutput:
				err = sink.Output(it.Stream, it.Seq, it.Data)
			case journal.ItemExited:
				err = sink.Exited(it.Exit)
			}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			c.s.cfg.Logger.Debug("raw command's peer failed", "peer", c.peer, "err", err)
		}
		a.Close(err) // a command whose frames could not be sent ends with them
		c.idle()
	}()
	return nil
}

// idle notes that a command's events are all sent; a draining connection
// is closed once none are left.
func (c *conn) idle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pumps--
	if c.draining && c.pumps == 0 {
		c.nc.Close()
	}
	c.armIdleLocked() // the reader may be waiting for the next frame already
}

func (c *conn) write(t rawsock.Type, parts ...[]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return rawsock.WriteFrame(c.nc, t, parts...)
}

func (c *conn) writeError(err error) error {
	var (
		scope   errNoScope
		revoked errKeyRevoked
	)
	switch {
	case errors.As(err, &scope):
		c.s.cfg.Observer.AuthFailure(interceptors.AuthScope)
	case errors.As(err, &revoked):
		c.s.cfg.Observer.AuthFailure(interceptors.AuthKeyRevoked)
	}
	return c.write(rawsock.TypeError, errorFrame(err).Payload())
}

// writeEvent writes a frame of the command's pump, unless the connection is
// being failed: its error frame is the last one.
func (c *conn) writeEvent(t rawsock.Type, parts ...[]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.ending.Load() {
		return errConnEnding
	}
	return rawsock.WriteFrame(c.nc, t, parts...)
}

// frameSink adapts runner events to frames.
type frameSink struct {
	c   *conn
	buf [rawsock.ExitLen]byte
}

func (s *frameSink) Started(id string, pid int) error {
	b := binary.BigEndian.AppendUint32(s.buf[:0], uint32(pid))
	return s.c.writeEvent(rawsock.TypeStarted, b, []byte(id))
}

func (s *frameSink) Output(st runner.Stream, seq uint64, data []byte) error {
	t := rawsock.TypeStdout
	if st == runner.Stderr {
		t = rawsock.TypeStderr
	}
	return s.c.writeEvent(t, binary.BigEndian.AppendUint64(s.buf[:0], seq), data)
}

func (s *frameSink) Exited(r *runner.Result) error {
	// Free before the frame goes out: a client may send its next command as
	// soon as it reads this one.
	s.c.mu.Lock()
	s.c.proc = nil
	s.c.mu.Unlock()
	return s.c.writeEvent(rawsock.TypeExit, appendExit(s.buf[:0], r))
}
