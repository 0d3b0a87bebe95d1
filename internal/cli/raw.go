package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/rawsock"
)

// runFunc runs one command on some transport; both clients' Run fit it.
type runFunc func(ctx context.Context, req *rexecv1.RunRequest, stdout, stderr io.Writer) (*rexecv1.Exited, error)

// dialRun connects over gRPC, or over the raw socket when raw is set; over
// the raw socket stdin (when not nil) streams to the command.
func (c *command) dialRun(ctx context.Context, raw bool, stdin io.Reader) (runFunc, func() error, error) {
	if !raw {
		cl := c.cl
		if cl == nil {
			var err error
			if cl, err = c.dial(); err != nil {
				return nil, nil, err
			}
		}
		run := func(ctx context.Context, req *rexecv1.RunRequest, stdout, stderr io.Writer) (*rexecv1.Exited, error) {
			return cl.RunResumable(ctx, req, stdout, stderr, c.resumeOpts(false))
		}
		return run, cl.Close, nil
	}
	rc, err := c.dialRaw(ctx)
	if err != nil {
		return nil, nil, err
	}
	run := func(ctx context.Context, req *rexecv1.RunRequest, stdout, stderr io.Writer) (*rexecv1.Exited, error) {
		return rc.RunStdin(ctx, req, stdin, stdout, stderr)
	}
	return run, rc.Close, nil
}

// dialRaw connects to the raw listener and runs the handshake, and words
// its failures as the gRPC path does.
func (c *command) dialRaw(ctx context.Context) (*rawsock.Client, error) {
	key, err := client.LoadKey(c.g.keyFile, c.g.keyID)
	if err != nil {
		return nil, err // names the file and what to do
	}
	c.key = key
	rc, err := rawsock.Dial(ctx, c.g.rawAddr, key)
	var op *net.OpError
	switch {
	case errors.Is(err, rawsock.ErrGRPCPort):
		return nil, fmt.Errorf("rexec: %s: that port speaks gRPC, not rexec's raw protocol (drop --raw, or give the raw port: --raw-addr, $REXEC_RAW_ADDR)", c.g.rawAddr)
	case errors.Is(err, rawsock.ErrRefused):
		return nil, fmt.Errorf("rexec: auth failed for key %q (server refused the raw handshake): check that the key file matches the server's", key.ID)
	case errors.As(err, &op) && op.Op == "dial":
		return nil, fmt.Errorf("rexec: cannot reach rexecd's raw listener at %s (%v): is it running with --raw-listen? (--raw-addr, $REXEC_RAW_ADDR)", c.g.rawAddr, errors.Unwrap(op.Err))
	case err != nil:
		return nil, fmt.Errorf("rexec: %w", err)
	}
	return rc, nil
}

// echoRaw is `rexec echo --raw`: each message (with --stream) or all of them
// joined, as echo frames on one connection.
func (c *command) echoRaw(ctx context.Context, msgs []string, upper, stream bool) int {
	rc, err := c.dialRaw(ctx)
	if err != nil {
		return c.fail(err)
	}
	defer rc.Close()
	if !stream {
		msgs = []string{strings.Join(msgs, " ")}
	}
	for _, m := range msgs {
		out, err := rc.Echo(ctx, m, upper)
		if err != nil {
			return c.fail(err)
		}
		fmt.Fprintln(c.env.Stdout, out)
	}
	return 0
}
