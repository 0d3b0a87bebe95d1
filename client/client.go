// Package client is the Go API of rexec: dial a server with a key, run
// commands, echo. The CLI, the tests and the benchmarks all use it.
//
//	key, _ := client.LoadKey("", "")  // --key-file, $REXEC_KEY_FILE or the default path
//	c, _ := client.New("127.0.0.1:50051", client.WithKey(key))
//	defer c.Close()
//	exited, err := c.Run(ctx, &rexecv1.RunRequest{Shell: "uname -a"}, os.Stdout, os.Stderr)
//	// err: rexec itself failed; otherwise exited says how the command ended
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/argtext"
	"github.com/rexec/rexec/internal/codec"
)

// ErrLostMidCommand wraps the error of a call whose connection broke after
// the command had started (the server died or the network went away). The
// command is killed on the server side: by rexecd once it notices, or by its
// guard if rexecd died.
var ErrLostMidCommand = errors.New("lost the connection to rexecd while the command ran")

// DefaultAddr is where rexecd listens by default.
const DefaultAddr = "127.0.0.1:50051"

// Client is a connection to one rexec server. It is safe for concurrent use.
type Client struct {
	addr  string
	conn  *grpc.ClientConn
	exec  rexecv1.ExecServiceClient
	execs rexecv1.ExecutionServiceClient
	echo  rexecv1.EchoServiceClient
}

type options struct {
	authority        string
	key              *interceptors.Key
	tls              *tls.Config
	keepalive        time.Duration
	keepaliveTimeout time.Duration
	window           int32
	dialOpts         []grpc.DialOption
}

// Option configures New.
type Option func(*options)

// WithKey signs every call with key. Without it calls carry no token, and
// only health and reflection (when open) answer.
func WithKey(key *interceptors.Key) Option { return func(o *options) { o.key = key } }

// WithTLS dials with TLS. By default the connection is plaintext. The
// server's certificate is checked against cfg.ServerName when it is set,
// else against the host of the address dialed; either way the calls'
// :authority (which their tokens sign) is the address dialed.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithKeepalive sets how long a connection may be quiet before the client
// pings the server. By default 30s; the server refuses pings more often than
// every 5s.
func WithKeepalive(d time.Duration) Option { return func(o *options) { o.keepalive = d } }

// WithKeepaliveTimeout sets how long the client waits for the answer to a
// keepalive ping before it takes the connection for dead. By default 10s.
// With WithKeepalive it bounds how long a black-holed connection goes
// unnoticed, and so when a resumable call starts to resume.
func WithKeepaliveTimeout(d time.Duration) Option {
	return func(o *options) { o.keepaliveTimeout = d }
}

// WithWindow sets the HTTP/2 flow-control window for the data a server
// sends (per stream and per connection). By default 8 MiB: a fixed window
// this size moved 1 GiB of output faster than gRPC's adaptive default (the
// benchmarks in BENCHMARKS.md); it bounds what one call buffers in the client
// when the program does not read. Zero keeps gRPC's adaptive window.
func WithWindow(bytes int32) Option { return func(o *options) { o.window = bytes } }

// WithAuthority sets the calls' :authority, which their tokens sign, to
// authority instead of the address dialed: for a server reached through a
// proxy or a port forward, whose own address (or --name) the server
// accepts. By default the address dialed.
func WithAuthority(authority string) Option { return func(o *options) { o.authority = authority } }

// WithDialOptions adds raw gRPC dial options (a custom dialer, say).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// New returns a client of the server at addr. The connection is made on the
// first call.
func New(addr string, opts ...Option) (*Client, error) {
	o := options{keepalive: 30 * time.Second, keepaliveTimeout: 10 * time.Second, window: 8 << 20, authority: addr}
	for _, opt := range opts {
		opt(&o)
	}
	creds := insecure.NewCredentials()
	if o.tls != nil {
		creds = tlsCreds(o.tls)
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: o.keepalive, Timeout: o.keepaliveTimeout}),
		// Reconnect soon after a break (gRPC's default waits 1s, then
		// longer), and give up on a connection attempt that hangs (a
		// black-holed path) after 5s rather than 20s: a resume redials
		// with its own backoff, and each attempt resets this one.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
		traceDialOption(),
	}
	// gRPC's codec with buffers sized to rexec's messages and not zeroed:
	// per GiB of output, rexecd spent 1.4 s of CPU with gRPC's own, 1.05 s
	// with it (package codec).
	dial = append(dial, codec.DialOptions()...)
	if o.window > 0 {
		dial = append(dial, grpc.WithInitialWindowSize(o.window), grpc.WithInitialConnWindowSize(o.window))
	}
	if o.key != nil {
		dial = append(dial, interceptors.ClientOptions(o.key, o.authority)...)
	} else if o.authority != addr {
		dial = append(dial, grpc.WithAuthority(o.authority))
	}
	dial = append(dial, o.dialOpts...)
	conn, err := grpc.NewClient("passthrough:///"+addr, dial...)
	if err != nil {
		return nil, fmt.Errorf("rexec: dial %s: %w", addr, err)
	}
	return &Client{addr: addr, conn: conn, exec: rexecv1.NewExecServiceClient(conn),
		execs: rexecv1.NewExecutionServiceClient(conn), echo: rexecv1.NewEchoServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Conn is the underlying connection, e.g. for the health client.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Exec is the generated ExecService client, for callers that want the raw
// event stream or a Session.
func (c *Client) Exec() rexecv1.ExecServiceClient { return c.exec }

// Echo sends one message and returns the echo.
func (c *Client) Echo(ctx context.Context, msg string, upper bool) (string, error) {
	resp, err := c.echo.Echo(ctx, &rexecv1.EchoRequest{Message: msg, Upper: upper})
	if err != nil {
		return "", c.wrongPort(err)
	}
	return resp.GetMessage(), nil
}

// EchoStream is the generated bidi echo stream.
func (c *Client) EchoStream(ctx context.Context) (rexecv1.EchoService_EchoStreamClient, error) {
	return c.echo.EchoStream(ctx)
}

// Run runs req and copies its stdout and stderr to the writers as the chunks
// arrive. It returns the Exited event, or an error when rexec itself failed
// (a gRPC status, a broken stream, a writer's error; an *argtext.Error,
// before anything is sent, for a word of req that is not UTF-8; a
// *WrongPortError when the address is rexecd's raw port).
func (c *Client) Run(ctx context.Context, req *rexecv1.RunRequest, stdout, stderr io.Writer) (*rexecv1.Exited, error) {
	return c.RunNotify(ctx, req, stdout, stderr, nil)
}

// RunNotify is Run that calls started, when it is not nil, as the server
// reports that the command started (its pid, its execution id): the fleet
// engine ends a target's connect timeout there.
func (c *Client) RunNotify(ctx context.Context, req *rexecv1.RunRequest, stdout, stderr io.Writer, started func(*rexecv1.Started)) (*rexecv1.Exited, error) {
	if err := argtext.Check(req); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // a writer's error ends the call, and so the command
	stream, err := c.exec.Run(ctx, req)
	if err != nil {
		return nil, c.wrongPort(err)
	}
	var m rexecv1.RunResponse
	recv := func() (*rexecv1.RunResponse, error) {
		err := stream.RecvMsg(&m)
		if s := m.GetEvent().GetStarted(); s != nil && err == nil && started != nil {
			started(s)
		}
		return &m, err
	}
	exited, err := Receive(recv, stdout, stderr)
	if err == nil {
		// The server ends the call with OK right after Exited (in the same
		// write, as a rule): read that end rather than cancel the call,
		// which would send RST_STREAM and make the server handle a
		// cancellation (a warm Run(true) took 5% longer so).
		if rerr := stream.RecvMsg(&m); rerr != nil && !errors.Is(rerr, io.EOF) {
			err = rerr
		}
	}
	return exited, c.wrongPort(err)
}

// Receive reads the events of a Run or Session with recv until Exited,
// writing output to the writers, and checks the stream's rules: Started
// first, output sequence numbers without gaps, Exited last. recv may
// return the same message each time (RecvMsg into one message, whose
// output buffer the codec then reuses): Receive keeps nothing of a message
// past the next recv but the Exited it returns.
func Receive[M interface{ GetEvent() *rexecv1.Event }](recv func() (M, error), stdout, stderr io.Writer) (*rexecv1.Exited, error) {
	var (
		seq     uint64
		started bool
	)
	for {
		m, err := recv()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("rexec: the stream ended without an exit status")
		}
		if err != nil {
			if started && status.Code(err) == codes.Unavailable {
				return nil, fmt.Errorf("%w: %w", ErrLostMidCommand, err)
			}
			return nil, err
		}
		started = true
		ev := m.GetEvent()
		var out *rexecv1.Output
		w, name := stdout, "stdout"
		switch k := ev.GetKind().(type) {
		case *rexecv1.Event_Started:
			continue
		case *rexecv1.Event_Stdout:
			out = k.Stdout
		case *rexecv1.Event_Stderr:
			out, w, name = k.Stderr, stderr, "stderr"
		case *rexecv1.Event_Exited:
			return k.Exited, nil
		default:
			return nil, fmt.Errorf("rexec: unknown event %T (a newer server?)", k)
		}
		if out.GetSeq() != seq+1 {
			return nil, fmt.Errorf("rexec: output sequence jumped from %d to %d", seq, out.GetSeq())
		}
		seq = out.GetSeq()
		if _, err := w.Write(out.GetData()); err != nil {
			return nil, fmt.Errorf("rexec: writing %s: %w", name, err)
		}
	}
}

// ExitStatus is the status a shell would report for e: the exit code, or
// 128+N when signal N killed the command. When rexec ended the command (its
// timeout, a shutdown) it is 128+N of the signal rexec sent, even if the
// command handled that signal and exited by itself: 143 for TERM, 137 for
// KILL.
func ExitStatus(e *rexecv1.Exited) int {
	if e.GetSentSignalNumber() > 0 {
		return 128 + int(e.GetSentSignalNumber())
	}
	if e.GetSignalNumber() > 0 {
		return 128 + int(e.GetSignalNumber())
	}
	return int(e.GetExitCode())
}
