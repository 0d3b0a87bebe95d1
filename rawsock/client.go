package rawsock

import (
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
	mu sync.Mutex
	nc net.Conn
	rd *Reader
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

// call runs fn with the connection; when ctx is done first the connection
// is closed (which kills a running command) and ctx's error returned.
func (c *Client) call(ctx context.Context, fn func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.nc.Close() })
	err := fn()
	if !stop() {
		return fmt.Errorf("rawsock: %w (connection closed)", ctx.Err())
	}
	return err
}

// Echo sends one message and returns the echo.
func (c *Client) Echo(ctx context.Context, msg string, upper bool) (string, error) {
	var out string
	err := c.call(ctx, func() error {
		flags := byte(0)
		if upper {
			flags = echoUpper
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
// Cancelling ctx closes the connection, which kills the command's group.
func (c *Client) Run(ctx context.Context, req *rexecv1.RunRequest, stdout, stderr io.Writer) (*rexecv1.Exited, error) {
	if err := argtext.Check(req); err != nil {
		return nil, err
	}
	cmd, err := commandFromRequest(req)
	if err != nil {
		return nil, err
	}
	payload, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("rawsock: encode command: %w", err)
	}
	var exited *rexecv1.Exited
	err = c.call(ctx, func() error {
		if err := WriteFrame(c.nc, TypeCommand, payload); err != nil {
			return err
		}
		// Stdin goes out beside the output coming in: a command that writes
		// before it reads would otherwise deadlock with us.
		sent := make(chan error, 1)
		go func() { sent <- c.sendStdin(req.GetStdin()) }()
		exited, err = c.receive(stdout, stderr)
		var refused *Error
		if err != nil && !errors.As(err, &refused) {
			c.nc.Close() // unblocks sendStdin; the server kills the command
		}
		if serr := <-sent; err == nil && serr != nil {
			err = serr
		}
		return err
	})
	return exited, err
}

func (c *Client) sendStdin(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	const chunk = 64 << 10
	for len(data) > 0 {
		n := min(len(data), chunk)
		if err := WriteFrame(c.nc, TypeStdin, data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return WriteFrame(c.nc, TypeStdinClose)
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
