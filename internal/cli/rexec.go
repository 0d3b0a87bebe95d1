package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/rawsock"
)

// ExitFailure is the exit status when rexec itself fails (connection, auth,
// bad usage), as ssh uses 255.
const ExitFailure = 255

const usage = `usage: rexec [--addr HOST:PORT] [--raw-addr HOST:PORT] [--key-file FILE] [--key-id ID]
             [--tls-ca F [--tls-cert F --tls-key F]] COMMAND [ARGS]

commands:
  run [--timeout D] [--env K=V]... [--dir D] [--max-output N] [--limit NAME=VALUE]... [--usage]
      [-t] [-n] [--raw] -- CMD [ARG...]
        run CMD on the server; one word runs through /bin/sh -c, several are an exact argv;
        stdin streams to CMD (-n: no stdin), -t gives it a pseudo-terminal;
        --raw goes over the raw socket transport instead of gRPC (stdin streams too; no -t);
        --limit memory=512M, pids=N, cpu=1.5, nofile=N, fsize=1G: at most the key's;
        --usage prints what CMD used (CPU, peak memory and processes) on stderr
  shell
        a ">> " prompt: each line runs on the server, its status shown when nonzero
  echo [--upper] [--stream] [--raw] MSG...
        the classic echo, optionally upper-cased
  frames [--json] [--big N]
        the framing lab: the same messages over unframed TCP, framed TCP, UDP and gRPC
  token --method /rexec.v1.ExecService/Run
        print an authorization value for one grpcurl call (valid 60s, once)
  keygen [--id ID] [--scopes exec,session,echo,admin]
        print a new key line for a key file
  certs --dir DIR [--client-name NAME]
        write a throwaway CA, server and client certificate for TLS and mTLS

environment: REXEC_ADDR (default 127.0.0.1:50051), REXEC_RAW_ADDR (default 127.0.0.1:50052), REXEC_KEY_FILE
exit status: the remote command's; 128+N when signal N killed it; 255 when rexec itself failed
`

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

// register adds the global flags to fs with g's current values as defaults,
// so that a flag given before the command word survives the command's parse.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.addr, "addr", g.addr, "server address (HOST:PORT); $REXEC_ADDR")
	fs.StringVar(&g.keyFile, "key-file", g.keyFile, "key file; $REXEC_KEY_FILE, else ~/.config/rexec/keys")
	fs.StringVar(&g.keyID, "key-id", g.keyID, "which key of the file (default: the first)")
	fs.StringVar(&g.rawAddr, "raw-addr", g.rawAddr, "raw socket address (HOST:PORT), for --raw; $REXEC_RAW_ADDR")
	g.tls.register(fs)
}

// Rexec runs the rexec command line and returns its exit status.
func Rexec(args []string, env Env) int {
	var g globals
	fs := flag.NewFlagSet("rexec", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() { fmt.Fprint(env.Stderr, usage) }
	g.defaults(env)
	g.register(fs)
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if fs.NArg() == 0 {
		fmt.Fprint(env.Stderr, usage)
		return ExitFailure
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	c := &command{g: &g, env: env, name: cmd}
	switch cmd {
	case "run":
		return c.run(rest)
	case "shell":
		return c.shell(rest)
	case "echo":
		return c.echo(rest)
	case "token":
		return c.token(rest)
	case "keygen":
		return c.keygen(rest)
	case "frames":
		return c.frames(rest)
	case "certs":
		return c.certs(rest)
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
		return 0
	}
	return c.fail(fmt.Errorf("unknown command %q (run `rexec help`)", cmd))
}

func usageExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return ExitFailure
}

type command struct {
	g    *globals
	env  Env
	name string
	key  *interceptors.Key
	// usage: run --usage, print the command's usage on stderr at the end.
	usage bool
}

func (c *command) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("rexec "+c.name, flag.ContinueOnError)
	fs.SetOutput(c.env.Stderr)
	c.g.register(fs)
	return fs
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
	}
	msg := strings.TrimPrefix(st.Message(), "rexec: ")
	return fmt.Sprintf("rexec: %s (server said %s)", msg, st.Code())
}

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
	return client.New(c.g.addr, append(tlsOpts, client.WithKey(key))...)
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

// limitList collects --limit NAME=VALUE flags, in the key file's syntax.
type limitList struct{ l interceptors.Limits }

func (f *limitList) String() string { return "" }
func (f *limitList) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("%q is not NAME=VALUE (names: %s)", v, interceptors.LimitNames())
	}
	return f.l.SetLimit(name, value)
}

// proto is the request's Limits message, nil when no limit was given.
func (f *limitList) proto() *rexecv1.Limits {
	if f.l.IsZero() {
		return nil
	}
	return &rexecv1.Limits{MemoryBytes: uint64(f.l.Memory), Pids: uint64(f.l.Pids), MilliCpu: uint64(f.l.MilliCPU),
		Nofile: uint64(f.l.NoFile), FsizeBytes: uint64(f.l.FSize)}
}

// localeVars are the variables the client sends for the command's
// environment: Debian's ssh_config has `SendEnv LANG LC_*`. (The server
// starts commands with a login's environment, none of its own.)
var localeVars = []string{"LANG", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE", "LC_MONETARY",
	"LC_MESSAGES", "LC_PAPER", "LC_NAME", "LC_ADDRESS", "LC_TELEPHONE", "LC_MEASUREMENT", "LC_IDENTIFICATION"}

// localeEnv is the locale variables set in the client's environment, as
// KEY=VALUE entries; --env entries come after them and override them.
func localeEnv(getenv func(string) string) []string {
	var env []string
	for _, k := range localeVars {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

type envList []string

func (e *envList) String() string { return strings.Join(*e, ",") }
func (e *envList) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

func (c *command) run(args []string) int {
	fs := c.flags()
	timeout := fs.Duration("timeout", 0, "kill the command after this long (default: the server's maximum)")
	dir := fs.String("dir", "", "working directory on the server")
	maxOut := fs.Uint64("max-output", 0, "forward at most this many output bytes; the rest is counted (default: the server's maximum)")
	raw := fs.Bool("raw", false, "use the raw socket transport (--raw-addr) instead of gRPC")
	usage := fs.Bool("usage", false, "print what the command used (CPU time, peak memory, peak processes) on stderr at the end")
	var env envList
	fs.Var(&env, "env", "KEY=VALUE for the command's environment (repeatable); LANG and LC_* are sent as ssh's SendEnv does")
	var limits limitList
	fs.Var(&limits, "limit", "a resource limit, NAME=VALUE as in the key file: memory=512M, pids=N, cpu=1.5, nofile=N, fsize=1G (repeatable; at most the key's)")
	var so sessionOpts
	fs.BoolVar(&so.tty, "t", false, "run the command on a pseudo-terminal (Ctrl-C and every key go to it)")
	fs.BoolVar(&so.noStdin, "n", false, "do not read stdin: the command reads EOF (as ssh -n)")
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if fs.NArg() == 0 {
		return c.fail(errors.New("run: no command given: rexec run -- CMD [ARG...]"))
	}
	c.usage = *usage
	req := &rexecv1.RunRequest{Env: append(localeEnv(c.env.Getenv), env...), Dir: *dir, MaxOutputBytes: *maxOut, Limits: limits.proto()}
	if fs.NArg() == 1 {
		req.Shell = fs.Arg(0)
	} else {
		req.Argv = fs.Args()
	}
	if *timeout != 0 {
		req.Timeout = durationpb.New(*timeout)
	}
	switch {
	case *raw && so.tty:
		return c.fail(errors.New("run: -t needs gRPC: the raw transport has no terminal (drop --raw)"))
	case !*raw && (so.tty || !so.noStdin):
		// stdin (or a terminal) needs the Session RPC.
		cl, err := c.dial()
		if err != nil {
			return c.fail(err)
		}
		defer cl.Close()
		return c.session(cl, req, so)
	}
	// A plain Run over gRPC (no stdin), or the raw transport, where stdin
	// streams unless -n.
	var stdin io.Reader
	if *raw && !so.noStdin {
		stdin = c.env.Stdin
	}
	ctx, sig, stop := signalContext()
	defer stop()
	run, closeConn, err := c.dialRun(ctx, *raw, stdin)
	if err != nil {
		return c.fail(err)
	}
	defer closeConn()
	exited, err := run(ctx, req, c.env.Stdout, c.env.Stderr)
	if err != nil {
		if ctx.Err() != nil {
			// Our own signal ended the call: the server killed the command.
			return 128 + int(sig())
		}
		return c.fail(err)
	}
	return c.report(exited)
}

// report prints what the exit status alone does not say, and returns it.
func (c *command) report(e *rexecv1.Exited) int {
	switch {
	case e.GetTimedOut():
		fmt.Fprintf(c.env.Stderr, "rexec: command timed out after %v and was killed\n", e.GetDuration().AsDuration().Round(time.Millisecond))
	case e.GetReason() == rexecv1.EndReason_END_REASON_SHUTDOWN:
		fmt.Fprintln(c.env.Stderr, "rexec: the server shut down and killed the command")
	case e.GetReason() == rexecv1.EndReason_END_REASON_OOM:
		msg := e.GetMessage()
		if msg == "" {
			msg = "out of memory: the kernel's OOM killer ended the command at its memory limit"
		}
		fmt.Fprintf(c.env.Stderr, "rexec: %s\n", msg)
	}
	if e.GetDroppedBytes() > 0 {
		fmt.Fprintf(c.env.Stderr, "rexec: output budget reached: %d bytes dropped\n", e.GetDroppedBytes())
	}
	if e.GetOutputIncomplete() {
		fmt.Fprintln(c.env.Stderr, "rexec: the command exited but a background process held its output open; the rest was not read")
	}
	if c.usage {
		fmt.Fprintln(c.env.Stderr, usageLine(e))
	}
	return client.ExitStatus(e)
}

func (c *command) echo(args []string) int {
	fs := c.flags()
	upper := fs.Bool("upper", false, "ask the server to upper-case the echo")
	stream := fs.Bool("stream", false, "send each MSG as one message of an EchoStream")
	raw := fs.Bool("raw", false, "use the raw socket transport (--raw-addr) instead of gRPC")
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if *raw {
		ctx, _, stop := signalContext()
		defer stop()
		return c.echoRaw(ctx, fs.Args(), *upper, *stream)
	}
	cl, err := c.dial()
	if err != nil {
		return c.fail(err)
	}
	defer cl.Close()
	ctx, _, stop := signalContext()
	defer stop()
	if !*stream {
		out, err := cl.Echo(ctx, strings.Join(fs.Args(), " "), *upper)
		if err != nil {
			return c.fail(err)
		}
		fmt.Fprintln(c.env.Stdout, out)
		return 0
	}
	st, err := cl.EchoStream(ctx)
	if err != nil {
		return c.fail(err)
	}
	for _, m := range fs.Args() {
		if err := st.Send(&rexecv1.EchoStreamRequest{Message: m, Upper: *upper}); err != nil {
			break // Recv says why
		}
		resp, err := st.Recv()
		if err != nil {
			return c.fail(err)
		}
		fmt.Fprintln(c.env.Stdout, resp.GetMessage())
	}
	if err := st.CloseSend(); err != nil {
		return c.fail(err)
	}
	if _, err := st.Recv(); err != nil && !errors.Is(err, io.EOF) {
		return c.fail(err)
	}
	return 0
}

func (c *command) token(args []string) int {
	fs := c.flags()
	method := fs.String("method", "/rexec.v1.ExecService/Run", "the full method name the token is for")
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if !strings.HasPrefix(*method, "/") || strings.Count(*method, "/") != 2 {
		return c.fail(fmt.Errorf("token: --method %q is not a full method name like /rexec.v1.ExecService/Run", *method))
	}
	key, err := client.LoadKey(c.g.keyFile, c.g.keyID)
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintln(c.env.Stdout, interceptors.Mint(key, *method, time.Now()))
	return 0
}

func (c *command) keygen(args []string) int {
	fs := c.flags()
	id := fs.String("id", "default", "key id")
	scopes := fs.String("scopes", "", "comma-separated scopes (default: all): "+strings.Join(interceptors.AllScopes, ","))
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	var sc []string
	if *scopes != "" {
		sc = strings.Split(*scopes, ",")
	}
	k, err := interceptors.GenerateKey(*id, sc...)
	if err != nil {
		return c.fail(err)
	}
	if _, err := interceptors.ParseKeys([]byte(k.Line())); err != nil {
		return c.fail(err)
	}
	fmt.Fprintln(c.env.Stdout, k.Line())
	return 0
}
