package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/rawsock"
)

// ExitFailure is the exit status when rexec itself fails (connection, auth,
// bad usage), as ssh uses 255.
const ExitFailure = 255

// Env is what a command sees of its process: arguments aside.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// OSEnv is the real process's Env.
func OSEnv() Env {
	return Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// globals are the connection flags, accepted before or after the command word.
type globals struct {
	addr, keyFile, keyID string
	rawAddr              string
	tls                  clientTLS
}

// defaults fills g from the environment, before any flag is parsed.
func (g *globals) defaults(env Env) {
	g.addr = env.Getenv("REXEC_ADDR")
	if g.addr == "" {
		g.addr = client.DefaultAddr
	}
	g.keyFile = env.Getenv("REXEC_KEY_FILE")
	if g.rawAddr = env.Getenv("REXEC_RAW_ADDR"); g.rawAddr == "" {
		g.rawAddr = rawsock.DefaultAddr
	}
}

// register adds the global flags to fs (the root command's persistent
// flags, so they are accepted before or after the command word), with g's
// current values, from the environment, as defaults.
func (g *globals) register(fs *pflag.FlagSet) {
	fs.StringVar(&g.addr, "addr", g.addr, "server address, HOST[:PORT] (port 50051 when left out); $REXEC_ADDR")
	fs.StringVar(&g.keyFile, "key-file", g.keyFile, "key file; $REXEC_KEY_FILE, else ~/.config/rexec/keys")
	fs.StringVar(&g.keyID, "key-id", g.keyID, "which key of the file (default: the first)")
	fs.StringVar(&g.rawAddr, "raw-addr", g.rawAddr, "raw socket address for --raw, HOST[:PORT] (port 50052 when left out); $REXEC_RAW_ADDR")
	g.tls.register(fs)
}

// fillPorts gives an address without a port the default one, so that
// --addr localhost works as ssh localhost does.
func (g *globals) fillPorts() {
	g.addr = withDefaultPort(g.addr, client.DefaultAddr)
	g.rawAddr = withDefaultPort(g.rawAddr, rawsock.DefaultAddr)
}

// withDefaultPort returns addr, with def's port when addr has none: host,
// [v6] and a bare IPv6 address (::1) all get it.
func withDefaultPort(addr, def string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil || addr == "" {
		return addr
	}
	_, port, err := net.SplitHostPort(def)
	if err != nil {
		return addr
	}
	host := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	if strings.ContainsAny(host, "[]/") {
		return addr // not a host: leave it for the dialer to refuse
	}
	return net.JoinHostPort(host, port)
}

// command is one run of rexec: its flags and what the run has learned.
type command struct {
	g   *globals
	env Env
	key *interceptors.Key
	// cl is the gRPC client once dialed; versions records the server's
	// version from its response headers (version.go).
	cl       *client.Client
	versions interceptors.ServerVersion
}

// fail prints one line about rexec's own failure and returns 255.
func (c *command) fail(err error) int {
	fmt.Fprintln(c.env.Stderr, c.explain(err))
	return ExitFailure
}

// explain turns an error into one line that says what failed and what to do.
func (c *command) explain(err error) string {
	var wrongPort *client.WrongPortError
	if errors.As(err, &wrongPort) {
		return fmt.Sprintf("rexec: %s: that port speaks rexec's raw protocol, not gRPC (use --raw with --raw-addr %[1]s, or the gRPC port)", wrongPort.Addr)
	}
	var resume *client.ResumeError
	if errors.As(err, &resume) && resume.Refused {
		return fmt.Sprintf("rexec: lost the connection to rexecd at %s, which refused every connection for %v (is it down?): execution %s ended with it unless it is back within its reconnect grace; `rexec logs %[3]s` once it is up",
			c.g.addr, resume.Tried.Round(time.Second), resume.ExecutionID)
	}
	if errors.As(err, &resume) {
		return fmt.Sprintf("rexec: lost the connection to rexecd at %s and could not resume execution %s for %v (%s): it runs on until the server's reconnect grace passes; then `rexec logs %[2]s` has its output",
			c.g.addr, resume.ExecutionID, resume.Tried.Round(time.Second), statusMessage(resume.Err))
	}
	if errors.Is(err, client.ErrLostMidCommand) {
		why := err.Error()
		var se interface{ GRPCStatus() *status.Status }
		if errors.As(err, &se) {
			why = se.GRPCStatus().Message()
		}
		return fmt.Sprintf("rexec: lost the connection to rexecd at %s while the command ran (%s): the command is killed on the server side; check that rexecd is still up",
			c.g.addr, why)
	}
	st, ok := status.FromError(err)
	if !ok {
		msg := err.Error()
		if strings.HasPrefix(msg, "rexec:") {
			return msg
		}
		return "rexec: " + msg
	}
	keyID := "?"
	if c.key != nil {
		keyID = c.key.ID
	}
	switch st.Code() {
	case codes.Unavailable:
		if hint := c.g.tls.tlsHint(st.Message()); hint != "" {
			return fmt.Sprintf("rexec: cannot connect to rexecd at %s: %s (%s)", c.g.addr, hint, st.Message())
		}
		return fmt.Sprintf("rexec: cannot reach rexecd at %s (%s): is it running? (--addr, $REXEC_ADDR)", c.g.addr, st.Message())
	case codes.Unauthenticated:
		return fmt.Sprintf("rexec: auth failed for key %q (server said Unauthenticated): check that the key file matches the server's, and the clocks", keyID)
	case codes.PermissionDenied:
		return fmt.Sprintf("rexec: key %q may not do this (server said PermissionDenied): give the key the scope in the server's key file", keyID)
	case codes.Canceled:
		return "rexec: cancelled"
	case codes.Unimplemented:
		return fmt.Sprintf("rexec: rexecd at %s does not know this call (server said Unimplemented: %s): %s",
			c.g.addr, st.Message(), c.versionMismatch())
	}
	msg := strings.TrimPrefix(st.Message(), "rexec: ")
	if st.Code() == codes.InvalidArgument && strings.Contains(msg, "unknown field") {
		return fmt.Sprintf("rexec: %s (server said %s): %s", msg, st.Code(), c.versionMismatch())
	}
	return fmt.Sprintf("rexec: %s (server said %s)", msg, st.Code())
}

// statusMessage is err's gRPC message, or its text.
func statusMessage(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

// Keepalive of rexec's connections: a quiet connection is pinged after 10 s
// and given up 5 s later, so that a black-holed path is found (and a
// resumable command resumed) within about 15 s. rexecd accepts pings every
// 5 s.
const (
	keepaliveTime    = 10 * time.Second
	keepaliveTimeout = 5 * time.Second
)

func (c *command) dial() (*client.Client, error) {
	key, err := client.LoadKey(c.g.keyFile, c.g.keyID)
	if err != nil {
		return nil, err // names the file and what to do
	}
	c.key = key
	tlsOpts, err := c.g.tls.options()
	if err != nil {
		return nil, err
	}
	opts := append(tlsOpts, client.WithKey(key), client.WithDialOptions(c.versions.DialOptions()...),
		client.WithKeepalive(keepaliveTime), client.WithKeepaliveTimeout(keepaliveTimeout))
	cl, err := client.New(c.g.addr, opts...)
	c.cl = cl
	return cl, err
}

// signalContext is cancelled on SIGINT, SIGTERM or SIGHUP, and says which.
func signalContext() (context.Context, func() syscall.Signal, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	var got syscall.Signal
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case s := <-ch:
			got = s.(syscall.Signal)
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() syscall.Signal { <-done; return got }, func() { signal.Stop(ch); cancel(); <-done }
}

// report prints what the exit status alone does not say, and returns it.
func (c *command) report(e *rexecv1.Exited) int {
	switch {
	case e.GetTimedOut():
		fmt.Fprintf(c.env.Stderr, "rexec: command timed out after %v and was killed\n", e.GetDuration().AsDuration().Round(time.Millisecond))
	case e.GetReason() == rexecv1.EndReason_END_REASON_SHUTDOWN:
		fmt.Fprintln(c.env.Stderr, "rexec: the server shut down and killed the command")
	case e.GetReason() == rexecv1.EndReason_END_REASON_DISCONNECTED:
		fmt.Fprintln(c.env.Stderr, "rexec: the client's connection broke and none came back within the server's reconnect grace: the command was killed")
	}
	if e.GetDroppedBytes() > 0 {
		fmt.Fprintf(c.env.Stderr, "rexec: output budget reached: %d bytes dropped\n", e.GetDroppedBytes())
	}
	if e.GetOutputIncomplete() {
		fmt.Fprintln(c.env.Stderr, "rexec: the command exited but a background process held its output open; the rest was not read")
	}
	return client.ExitStatus(e)
}
