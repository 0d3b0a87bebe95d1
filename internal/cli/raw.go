package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/rawsock"
	"github.com/rexec/rexec/runner"
)

// runFunc runs one command on some transport; both clients' Run fit it.
type runFunc func(ctx context.Context, req *rexecv1.RunRequest, stdout, stderr io.Writer) (*rexecv1.Exited, error)

// dialRun connects over gRPC, or over the raw socket when raw is set; over
// the raw socket stdin (when not nil) streams to the command.
func (c *command) dialRun(ctx context.Context, raw bool, stdin io.Reader) (runFunc, func() error, error) {
	if !raw {
		cl, err := c.dial()
		if err != nil {
			return nil, nil, err
		}
		return cl.Run, cl.Close, nil
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

// rawDaemon is rexecd's raw listener, when --raw-listen is given.
type rawDaemon struct {
	srv    *rawsock.Server
	served chan error
}

// startRawDaemon listens on cfg.RawListen; with no address it returns nil:
// the raw transport is off unless asked for, so that a second port with its
// own protocol is never open by surprise.
func startRawDaemon(cfg DaemonConfig, ring *interceptors.KeyRing, run *runner.Runner, log *slog.Logger) (*rawDaemon, error) {
	if cfg.RawListen == "" {
		return nil, nil
	}
	lis, err := net.Listen("tcp", cfg.RawListen)
	if err != nil {
		return nil, fmt.Errorf("--raw-listen: %w", err)
	}
	// The raw transport has no TLS at all: off loopback it needs the same
	// explicit --allow-plaintext as plaintext gRPC.
	if a, ok := lis.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() && !cfg.TLS.AllowPlaintext {
		lis.Close()
		return nil, fmt.Errorf("refusing --raw-listen %s (bound %s), which is not a loopback address: the raw transport "+
			"has no TLS, so anyone on the network path reads every command and its output; keep it on loopback, "+
			"or give --allow-plaintext if the network itself is trusted", cfg.RawListen, lis.Addr())
	}
	if cfg.RawAddrFile != "" {
		if err := os.WriteFile(cfg.RawAddrFile, []byte(lis.Addr().String()), 0o644); err != nil {
			lis.Close()
			return nil, fmt.Errorf("--raw-addr-file: %w", err)
		}
	}
	log.Info("rexecd raw socket listening", "raw", lis.Addr().String())
	idle := cfg.RawIdleTimeout
	if idle <= 0 {
		idle = -1 // never
	}
	d := &rawDaemon{
		srv:    rawsock.NewServer(rawsock.Config{Keys: ring, Runner: run, Logger: log, IdleTimeout: idle}),
		served: make(chan error, 1),
	}
	go func() {
		err := d.srv.Serve(lis)
		if !errors.Is(err, rawsock.ErrServerClosed) {
			log.Error("raw listener failed", "err", err)
		}
		d.served <- err
	}()
	return d, nil
}

// shutdown stops the gRPC server and the raw listener together, each with
// the same grace, and returns when both are done.
func (d *rawDaemon) shutdown(grpc interface{ Shutdown(time.Duration) }, grace time.Duration) {
	var wg sync.WaitGroup
	wg.Go(func() { grpc.Shutdown(grace) })
	if d != nil {
		wg.Go(func() { d.srv.Shutdown(grace); <-d.served })
	}
	wg.Wait()
}

// stop stops the raw listener at once.
func (d *rawDaemon) stop() {
	if d != nil {
		d.srv.Stop()
	}
}
