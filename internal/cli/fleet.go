package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/rexec/rexec/client/config"
	"github.com/rexec/rexec/client/fleet"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/argtext"
	"github.com/rexec/rexec/internal/cliflag"
)

// fleetFlags are the global flags that name several targets.
type fleetFlags struct {
	hosts          []string // -H, repeatable, each a comma list
	hostsFiles     []string // --hosts-file, repeatable
	window         int      // -f
	connectTimeout time.Duration
}

// used reports whether the targets come from -H or --hosts-file rather
// than --addr.
func (f *fleetFlags) used() bool { return len(f.hosts) > 0 || len(f.hostsFiles) > 0 }

// register adds the fleet flags to fs (the root's persistent flags).
func (f *fleetFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&f.hosts, "hosts", "H", nil, "targets instead of --addr: HOST[:PORT], node[01-20]:50051, a config host, @group, dns:///NAME:PORT (repeatable, comma lists)")
	fs.StringArrayVar(&f.hostsFiles, "hosts-file", nil, "targets one a line (# comments), as -H takes them (repeatable)")
	// -f is run's and echo's shorthand only (registerFanout): logs -f is
	// follow, as in tail and kubectl.
	fs.IntVar(&f.window, "fanout", 64, "with several targets: how many run at once (a sliding window)")
	f.connectTimeout = 10 * time.Second
	fs.Var(cliflag.Duration{D: &f.connectTimeout}, "connect-timeout", "with several targets: how long a target may take to start the command")
}

// registerFanout adds --fanout with its shorthand -f to a command that
// runs on several targets (run, echo); it stands for the global --fanout,
// which other commands' own -f would clash with.
func (f *fleetFlags) registerFanout(fs *pflag.FlagSet) {
	fs.IntVarP(&f.window, "fanout", "f", 64, "with several targets: how many run at once (a sliding window)")
}

// fleetOutput are run's and echo's flags for several targets.
type fleetOutput struct {
	gather     bool
	outputDir  string
	json       bool
	failedFile string
}

// targets resolves -H and --hosts-file with the config file. With one
// target it points the single-target flags at it (its address, and its
// config host's key and TLS files where no flag gave them), so that the
// command runs exactly as with --addr.
func (c *command) targets(ctx context.Context) ([]fleet.Target, error) {
	cfg, err := config.Load("", c.env.Getenv)
	if err != nil {
		return nil, err
	}
	r := &fleet.Resolver{Config: cfg}
	ts, err := r.Resolve(ctx, c.g.fleet.hosts, c.g.fleet.hostsFiles)
	if err != nil {
		return nil, fmt.Errorf("-H: %w", err)
	}
	if len(ts) == 1 {
		cr := c.dialer().Credentials(&ts[0])
		c.g.addr = ts[0].Addr
		c.g.keyFile, c.g.keyID = cr.KeyFile, cr.KeyID
		c.g.tls.caFile, c.g.tls.certFile, c.g.tls.keyFile, c.g.tls.serverName = cr.TLSCA, cr.TLSCert, cr.TLSKey, cr.TLSServerName
	}
	return ts, nil
}

// dialer makes the targets' clients: flags given on the command line win
// over a config host's settings, which win over the environment's.
func (c *command) dialer() *fleet.Dialer {
	if c.fleetDialer != nil {
		return c.fleetDialer
	}
	d := &fleet.Dialer{Defaults: fleet.Credentials{KeyFile: c.env.Getenv("REXEC_KEY_FILE")}}
	set := func(name, v string) string {
		if c.flagSet != nil && c.flagSet(name) {
			return v
		}
		return ""
	}
	d.Flags = fleet.Credentials{
		KeyFile: set("key-file", c.g.keyFile), KeyID: set("key-id", c.g.keyID),
		TLSCA: set("tls-ca", c.g.tls.caFile), TLSCert: set("tls-cert", c.g.tls.certFile), TLSKey: set("tls-key", c.g.tls.keyFile),
		TLSServerName: set("tls-server-name", c.g.tls.serverName),
	}
	c.fleetDialer = d
	return d
}

// output builds the Output for the flags; close prints what it gathered.
func (c *command) output(o fleetOutput) (fleet.Output, *fleet.JSON, func() error, error) {
	msgs := func(r *fleet.Result) []string {
		d := c.dialer()
		cr := d.Credentials(&r.Target)
		keyID := cr.KeyID
		if k, err := d.Key(&r.Target); err == nil {
			keyID = k.ID
		}
		return fleet.Messages(r, keyID, cr.UsesTLS(), c.g.fleet.connectTimeout)
	}
	none := func() error { return nil }
	switch {
	case o.gather && (o.json || o.outputDir != ""):
		return nil, nil, nil, errors.New("-b prints blocks for people; --json and --output-dir are for programs: give one")
	case o.gather:
		g := &fleet.Gather{Stdout: c.env.Stdout, Stderr: c.env.Stderr, Messages: msgs}
		return g, nil, g.Close, nil
	}
	var outs []fleet.Output
	closeAll := none
	if o.outputDir != "" {
		d, err := fleet.NewDir(o.outputDir)
		if err != nil {
			return nil, nil, nil, err
		}
		d.Messages = msgs
		outs, closeAll = append(outs, d), d.Close
	}
	var j *fleet.JSON
	if o.json {
		j = &fleet.JSON{W: c.env.Stdout, Messages: msgs}
		outs = append(outs, j)
	}
	if len(outs) == 0 {
		return &fleet.Lines{Stdout: c.env.Stdout, Stderr: c.env.Stderr, Messages: msgs}, nil, none, nil
	}
	return fleet.Tee(outs...), j, closeAll, nil
}

// runFleet runs the call on every target and prints the summary; it
// returns the run's exit status. call is fleet.Run's or fleet.Echo's.
func (c *command) runFleet(ts []fleet.Target, o fleetOutput, call func(ctx context.Context, ts []fleet.Target, out fleet.Output, opts fleet.Options) []*fleet.Result) int {
	switch {
	case c.g.fleet.window < 1:
		return c.fail(fmt.Errorf("-f %d: how many targets run at once is at least 1", c.g.fleet.window))
	case c.g.fleet.connectTimeout <= 0:
		return c.fail(fmt.Errorf("--connect-timeout %v: give a positive duration, such as 10s", c.g.fleet.connectTimeout))
	}
	d := c.dialer()
	if err := d.Prepare(ts); err != nil {
		return c.fail(err)
	}
	out, j, closeOut, err := c.output(o)
	if err != nil {
		return c.fail(err)
	}
	ctx, stop := interruptContext()
	defer stop()
	start := time.Now()
	results := call(ctx, ts, out, fleet.Options{Window: c.g.fleet.window, ConnectTimeout: c.g.fleet.connectTimeout, Dial: d.Dial})
	status := fleet.ExitStatus(ctx, results)
	sum := fleet.Summarize(results, status, time.Since(start), ctx.Err() != nil)
	if err := closeOut(); err != nil {
		fmt.Fprintln(c.env.Stderr, "rexec:", err)
		status = ExitFailure
	}
	if j != nil {
		j.Summary(sum)
	}
	for _, l := range sum.Lines() {
		fmt.Fprintln(c.env.Stderr, l)
	}
	if o.failedFile != "" {
		if err := fleet.WriteFailedFile(o.failedFile, results); err != nil {
			fmt.Fprintln(c.env.Stderr, "rexec:", err)
			status = ExitFailure
		}
	}
	return status
}

// runOnFleet is rexec run with several targets: no stdin (as -n), no -t,
// no --raw.
func (c *command) runOnFleet(ts []fleet.Target, req *rexecv1.RunRequest, o *runOpts) int {
	switch {
	case o.so.tty:
		return c.fail(fmt.Errorf("run: -t needs one target, and -H gave %d: a terminal cannot be shared", len(ts)))
	case o.stdin:
		return c.fail(fmt.Errorf("run: -i needs one target, and -H gave %d: stdin is not read on several (as -n)", len(ts)))
	case o.raw:
		return c.fail(fmt.Errorf("run: --raw needs one target, and -H gave %d: the fleet runs over gRPC", len(ts)))
	case o.detach:
		return c.fail(fmt.Errorf("run: -d needs one target, and -H gave %d: start each with its own rexec run -d", len(ts)))
	}
	if err := argtext.Check(req); err != nil {
		return c.fail(err)
	}
	return c.runFleet(ts, o.fleet, func(ctx context.Context, ts []fleet.Target, out fleet.Output, opts fleet.Options) []*fleet.Result {
		return fleet.Run(ctx, ts, req, out, opts)
	})
}

// echoOnFleet is rexec echo with several targets.
func (c *command) echoOnFleet(ts []fleet.Target, msg string, upper, stream, raw bool, o fleetOutput) int {
	if stream || raw {
		return c.fail(fmt.Errorf("echo: --stream and --raw need one target, and -H gave %d", len(ts)))
	}
	return c.runFleet(ts, o, func(ctx context.Context, ts []fleet.Target, out fleet.Output, opts fleet.Options) []*fleet.Result {
		return fleet.Echo(ctx, ts, msg, upper, out, opts)
	})
}

// interruptContext is cancelled on SIGINT, SIGTERM or SIGHUP, with the
// signal as its cause (fleet.Interrupted): every call in flight ends, the
// servers kill their commands' groups, and the run exits 128+N.
func interruptContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case s := <-ch:
			cancel(fleet.Interrupted{Signal: s.(syscall.Signal)})
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel(nil); <-done }
}

// register adds run's and echo's output flags for several targets.
func (o *fleetOutput) register(fs *pflag.FlagSet) {
	fs.BoolVarP(&o.gather, "gather", "b", false, "with several targets: print nothing until all end, then one block per set of identical results")
	fs.StringVar(&o.outputDir, "output-dir", "", "with several targets: write NAME.out, NAME.err and NAME.status into this directory")
	fs.BoolVar(&o.json, "json", false, "with several targets: one JSON record per target on stdout, then a summary")
	fs.StringVar(&o.failedFile, "failed-file", "", "with several targets: write the targets that did not exit 0 here, one a line")
}

// oneTarget points the single-target flags at -H's target when -H (or
// --hosts-file) is given, for a command that talks to one server. It
// returns false, with the exit status, when -H names several or none.
func (c *command) oneTarget(name string) (int, bool) {
	if !c.g.fleet.used() {
		return 0, true
	}
	ts, err := c.targets(context.Background())
	if err != nil {
		return c.fail(err), false
	}
	if len(ts) > 1 {
		return c.fail(fmt.Errorf("%s: talks to one server, and -H gave %d (run and echo take several)", name, len(ts))), false
	}
	return 0, true
}
