package rawsock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/go-json-experiment/json"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/argtext"
)

// DefaultAddr is where rexecd's raw listener is, when --raw-listen turns it on.
const DefaultAddr = "127.0.0.1:50052"

// Client is one authenticated raw connection. Its calls run one at a time
// (the protocol runs one command at a time per connection); it is safe for
// concurrent use, callers queue.
type Client struct {
	mu sync.Mutex // one call at a time
	nc net.Conn
	rd *Reader

	// wmu orders the frames of a call and of its stdin sender; a sender
	// whose call has ended (call changed) writes nothing more, so that its
	// stdin never reaches the connection's next command.
	wmu  sync.Mutex
	call uint64
}

// Dial connects to addr and runs the handshake with key. Dial gives up after
// ctx is done, or after 10s.
func Dial(ctx context.Context, addr string, key *interceptors.Key) (*Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rawsock: dial %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	err = clientHandshake(nc, key)
	if !stop() && err != nil {
		err = fmt.Errorf("%w (%w)", context.Cause(ctx), err)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("rawsock: handshake with %s as key %q: %w", addr, key.ID, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return &Client{nc: nc, rd: NewReader(nc, DefaultMaxFrame)}, nil
}

// Close closes the connection; a command still running is killed.
func (c *Client) Close() error { return c.nc.Close() }

// abort closes the connection with a reset rather than a FIN: a server that
// has stopped reading (a command that does not read the stdin sent to it
// holds up the server's reader) sees a reset at once, where a FIN would
// wait behind the unread bytes.
func (c *Client) abort() {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.nc.Close()
}

// do runs fn with the connection; when ctx is done first the connection
// is closed (which kills a running command) and ctx's error returned.
func (c *Client) do(ctx context.Context, fn func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, c.abort)
	err := fn()
	if !stop() {
		return fmt.Errorf("rawsock: %w (connection closed)", ctx.Err())
	}
	return err
}

// Echo sends one message and returns the echo.
func (c *Client) Echo(ctx context.Context, msg string, upper bool) (string, error) {
	var out string
	err := c.do(ctx, func() error {
		flags := byte(0)
		if upper {
			flags = EchoUpper
		}
		if err := WriteFrame(c.nc, TypeEcho, []byte{flags}, []byte(msg)); err != nil {
			return err
		}
		f, err := c.next()
		if err != nil {
			return err
		}
		if f.Type != TypeEchoReply {
			return fmt.Errorf("rawsock: got a %v frame, want echo-reply", f.Type)
		}
		out = string(f.Payload)
		return nil
	})
	return out, err
}

// next reads a frame; an error frame becomes an *Error.
func (c *Client) next() (Frame, error) {
	f, err := c.rd.Next()
	if errors.Is(err, io.EOF) {
		return f, errors.New("rawsock: the server closed the connection")
	}
	if err != nil {
		return f, fmt.Errorf("rawsock: %w", err)
	}
	if f.Type == TypeError {
		return f, decodeError(f.Payload)
	}
	return f, nil
}

// Run runs req and copies its stdout and stderr to the writers as the frames
// arrive. It returns the exit record, or an error when rexec itself failed (an
// *Error from the server, a broken connection, a writer's error; an
// *argtext.Error, before anything is sent, for a word that is not UTF-8:
// encoding/json would send U+FFFD in its place). The result
// is the gRPC client's message, so that callers treat both transports alike.
// req.Stdin, if any, is the command's whole stdin; without it the command's
// stdin is /dev/null. Cancelling ctx closes the connection, which kills the
// command's group.
func (c *Client) Run(ctx context.Context, req *rexecv1.RunRequest, stdout, stderr io.Writer) (*rexecv1.Exited, error) {
	return c.RunStdin(ctx, req, nil, stdout, stderr)
}

// StdinChunk is the most stdin bytes one stdin frame carries.
const StdinChunk = 64 << 10

// RunStdin is Run with the command's stdin streamed from stdin as it is read
// (after req.Stdin, if any), and EOF at its end, as the gRPC client's
// Session does. A nil stdin is Run.
//
// At the call's end a Read of stdin may still be pending (a terminal with
// nothing typed); its goroutine ends when that Read returns, and the data
// is dropped, never sent to the connection's next command.
func (c *Client) RunStdin(ctx context.Context, req *rexecv1.RunRequest, stdin io.Reader, stdout, stderr io.Writer) (*rexecv1.Exited, error) {
	if err := argtext.Check(req); err != nil {
		return nil, err
	}
	cmd, err := commandFromRequest(req)
	if err != nil {
		return nil, err
	}
	switch {
	case stdin != nil && cmd.Stdin:
		stdin = io.MultiReader(bytes.NewReader(req.GetStdin()), stdin)
	case cmd.Stdin:
		stdin = bytes.NewReader(req.GetStdin())
	}
	cmd.Stdin = stdin != nil
	payload, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("rawsock: encode command: %w", err)
	}
	var exited *rexecv1.Exited
	err = c.do(ctx, func() error {
		c.wmu.Lock()
		c.call++
		call := c.call
		err := WriteFrame(c.nc, TypeCommand, payload)
		c.wmu.Unlock()
		if err != nil {
			return err
		}
		// Stdin goes out beside the output coming in: a command that writes
		// before it reads would otherwise deadlock with us.
		readErr := make(chan error, 1)
		if stdin != nil {
			go c.sendStdin(call, stdin, readErr)
		}
		exited, err = c.receive(stdout, stderr)
		var refused *Error
		if err != nil && !errors.As(err, &refused) {
			c.abort() // unblocks the sender; the server kills the command
		}
		c.wmu.Lock()
		c.call++ // the sender, if still reading stdin, sends nothing more
		c.wmu.Unlock()
		select {
		case rerr := <-readErr:
			if rerr != nil {
				err = rerr // the cause of the call's end
			}
		default:
		}
		return err
	})
	return exited, err
}

// sendStdin copies r to the running command (call) as stdin frames, then a
// stdin-close at EOF. A read error other than EOF ends the call: it goes to
// readErr, and the connection is closed, which kills the command.
func (c *Client) sendStdin(call uint64, r io.Reader, readErr chan<- error) {
	buf := make([]byte, StdinChunk)
	for {
		n, rerr := r.Read(buf)
		if n > 0 && !c.sendFor(call, TypeStdin, buf[:n]) {
			return
		}
		switch {
		case rerr == nil:
			continue
		case errors.Is(rerr, io.EOF):
			c.sendFor(call, TypeStdinClose, nil)
			return
		}
		c.wmu.Lock()
		if c.call == call {
			readErr <- fmt.Errorf("rexec: reading stdin: %w", rerr)
			c.abort()
		}
		c.wmu.Unlock()
		return
	}
}

// sendFor writes one frame for call, unless that call has ended. It
// returns false when nothing more should be sent: the call ended, or the
// connection broke (which the call's receiver reports).
func (c *Client) sendFor(call uint64, t Type, data []byte) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.call != call {
		return false
	}
	return WriteFrame(c.nc, t, data) == nil
}

// receive reads a command's frames until its exit frame, checking the
// stream's rules: output sequence numbers without gaps, exit last.
func (c *Client) receive(stdout, stderr io.Writer) (*rexecv1.Exited, error) {
	var seq uint64
	for {
		f, err := c.next()
		if err != nil {
			return nil, err
		}
		w := stdout
		switch f.Type {
		case TypeStarted:
			continue
		case TypeStdout:
		case TypeStderr:
			w = stderr
		case TypeExit:
			return decodeExit(f.Payload)
		default:
			return nil, fmt.Errorf("rawsock: unexpected %v frame during a command", f.Type)
		}
		n, data, err := splitSeq(f.Payload)
		if err != nil {
			return nil, fmt.Errorf("rawsock: %v frame: %w", f.Type, err)
		}
		if n != seq+1 {
			return nil, fmt.Errorf("rawsock: output sequence jumped from %d to %d", seq, n)
		}
		seq = n
		if _, err := w.Write(data); err != nil {
			return nil, fmt.Errorf("rawsock: writing %v: %w", f.Type, err)
		}
	}
}
