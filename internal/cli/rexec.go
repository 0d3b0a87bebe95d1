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
	"github.com/rexec/rexec/client/fleet"
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
	fleet                fleetFlags
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
	g.fleet.register(fs)
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
	// usage: run --usage, print the command's usage on stderr at the end.
	usage bool
	// cl is the gRPC client once dialed; versions records the server's
	// version from its response headers (version.go).
	cl       *client.Client
	versions interceptors.ServerVersion
	// flagSet reports whether a flag was given on the command line (set
	// once the flags are parsed); fleetDialer dials -H's targets.
	flagSet     func(name string) bool
	fleetDialer *fleet.Dialer
}

// fail prints one line about rexec's own failure and returns 255.
func (c *command) fail(err error) int {
	fmt.Fprintln(c.env.Stderr, c.explain(err))
	return ExitFailure
}

// explain turns an error into one line that says what failed and what to
// do: fleet.Explain's line, which a fleet prints for each target too, but
// for a call the server does not know, which also names both versions.
func (c *command) explain(err error) string {
	var wrongPort *client.WrongPortError
	if st, ok := status.FromError(err); ok && !errors.As(err, &wrongPort) && !errors.Is(err, client.ErrLostMidCommand) {
		msg := strings.TrimPrefix(st.Message(), "rexec: ")
		switch {
		case st.Code() == codes.Unimplemented:
			return fmt.Sprintf("rexec: rexecd at %s does not know this call (server said Unimplemented: %s): %s",
				c.g.addr, st.Message(), c.versionMismatch())
		case st.Code() == codes.InvalidArgument && strings.Contains(msg, "unknown field"):
			return fmt.Sprintf("rexec: %s (server said %s): %s", msg, st.Code(), c.versionMismatch())
		}
	}
	keyID := ""
	if c.key != nil {
		keyID = c.key.ID
	}
	return fleet.Explain(err, c.g.addr, keyID, c.g.tls.caFile != "" || c.g.tls.certFile != "")
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
		client.WithKeepalive(keepaliveTime), client.WithKeepaliveTimeout(keepaliveTimeout),
		client.WithTraceParent(c.env.Getenv("TRACEPARENT"), c.env.Getenv("TRACESTATE")))
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
	for _, n := range client.ExitNotes(e) {
		fmt.Fprintln(c.env.Stderr, n)
	}
	if c.usage {
		fmt.Fprintln(c.env.Stderr, usageLine(e))
	}
	return client.ExitStatus(e)
}
