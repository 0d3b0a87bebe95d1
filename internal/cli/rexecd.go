package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/rawsock"
	"github.com/rexec/rexec/runner"
	"github.com/rexec/rexec/server"
)

// DaemonConfig is rexecd's configuration, from flags and environment.
type DaemonConfig struct {
	Listen        string
	KeyFile       string
	LogFormat     string
	LogLevel      slog.Level
	Runner        runner.Options
	ShutdownGrace time.Duration
	AuthAdmin     bool
	Skew          time.Duration
	TLS           DaemonTLS
	// AddrFile, when set, gets the bound address once listening (for scripts
	// that listen on port 0).
	AddrFile string
	// Ready, when set, is called with the bound address once listening.
	Ready func(addr net.Addr)
	// Signals, when set, replaces the process's SIGINT/SIGTERM/SIGHUP.
	Signals <-chan os.Signal
	// RawListen is the raw socket transport's address; empty (the default)
	// leaves it off. RawAddrFile is AddrFile's twin for it.
	RawListen, RawAddrFile string
	// RawIdleTimeout closes a raw connection that runs no command for this
	// long; 0 never does.
	RawIdleTimeout time.Duration
	// RequireUser refuses a key file with a key that may run commands but
	// has no user= (--require-user).
	RequireUser bool
}

// Rexecd runs the rexecd command line and returns its exit status.
func Rexecd(args []string, env Env) int {
	cfg, err := parseDaemonFlags(args, env)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(env.Stderr, "rexecd:", err)
		return 2
	}
	if err := RunDaemon(cfg, env.Stderr); err != nil {
		fmt.Fprintln(env.Stderr, "rexecd:", err)
		return 1
	}
	return 0
}

func parseDaemonFlags(args []string, env Env) (DaemonConfig, error) {
	var cfg DaemonConfig
	fs := flag.NewFlagSet("rexecd", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:50051", "gRPC address to listen on")
	fs.StringVar(&cfg.KeyFile, "keys", env.Getenv("REXEC_KEY_FILE"), "key file; $REXEC_KEY_FILE, else ~/.config/rexec/keys (created on first start)")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log format: text or json")
	fs.TextVar(&cfg.LogLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	fs.IntVar(&cfg.Runner.MaxConcurrent, "max-concurrent", 64, "commands running at once; more get ResourceExhausted")
	fs.DurationVar(&cfg.Runner.KillGrace, "kill-grace", 3*time.Second, "time between SIGTERM and SIGKILL to a cancelled command's group")
	fs.DurationVar(&cfg.Runner.DrainGrace, "drain-grace", 2*time.Second, "how long to read output after a command exits while a descendant holds it open")
	fs.DurationVar(&cfg.Runner.MaxTimeout, "max-timeout", 24*time.Hour, "longest (and default) command timeout")
	fs.Int64Var(&cfg.Runner.MaxOutput, "max-output", 1<<40, "largest (and default) output budget of a command, in bytes")
	fs.DurationVar(&cfg.ShutdownGrace, "shutdown-grace", 10*time.Second, "on SIGTERM/SIGINT, how long running commands may go on before they are killed")
	fs.BoolVar(&cfg.AuthAdmin, "auth-admin", false, "close health and reflection to calls without an admin-scoped token")
	fs.DurationVar(&cfg.Skew, "skew", 60*time.Second, "how far a token's time may be from the server's clock")
	cfg.TLS.register(fs)
	fs.StringVar(&cfg.AddrFile, "addr-file", "", "write the bound address to this file once listening (for --listen with port 0)")
	fs.StringVar(&cfg.RawListen, "raw-listen", "", "also serve the raw socket transport on this address, e.g. 127.0.0.1:50052 (default: off)")
	fs.StringVar(&cfg.RawAddrFile, "raw-addr-file", "", "write the raw listener's bound address to this file")
	fs.DurationVar(&cfg.RawIdleTimeout, "raw-idle-timeout", rawsock.DefaultIdleTimeout, "close a raw connection that runs no command for this long (0: never)")
	cgroups := fs.String("cgroups", string(runner.CgroupsAuto), "a cgroup per command: auto (where rexecd may create them; else process groups, logged), off, or require (refuse to start without)")
	fs.StringVar(&cfg.Runner.CgroupParent, "cgroup-parent", "rexec", "the cgroup the commands' cgroups go under, created if needed: absolute (/rexec), or relative to rexecd's own cgroup")
	fs.Func("env-from-daemon", "NAME[,NAME...]: variables of rexecd's environment every command gets too (commands start with a login's environment, none of rexecd's)", func(v string) error {
		for _, n := range strings.Split(v, ",") {
			if n == "" || strings.ContainsAny(n, "= \x00") {
				return fmt.Errorf("%q is not a variable name", n)
			}
			cfg.Runner.EnvFromDaemon = append(cfg.Runner.EnvFromDaemon, n)
		}
		return nil
	})
	fs.BoolVar(&cfg.RequireUser, "require-user", false, "refuse a key file in which a key that may run commands (exec, session) has no user=")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (flags only; see rexecd -h)", fs.Arg(0))
	}
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		return cfg, fmt.Errorf("--log-format %q: want text or json", cfg.LogFormat)
	}
	switch m := runner.CgroupMode(*cgroups); m {
	case runner.CgroupsAuto, runner.CgroupsOff, runner.CgroupsRequire:
		cfg.Runner.Cgroups = m
	default:
		return cfg, fmt.Errorf("--cgroups %q: want auto, off or require", *cgroups)
	}
	return cfg, nil
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// loadServerKeys reads the key file; with no file given anywhere it creates
// one at the default path first, and says so.
func loadServerKeys(path string, log *slog.Logger) (string, []*interceptors.Key, error) {
	if path == "" {
		def, err := interceptors.DefaultKeyPath()
		if err != nil {
			return "", nil, err
		}
		path = def
		created, err := interceptors.EnsureKeyFile(path)
		if err != nil {
			return "", nil, fmt.Errorf("creating key file %s: %w", path, err)
		}
		if created {
			log.Info("created a key file with one new key; clients on this machine find it by default", "path", path)
		}
	}
	keys, err := interceptors.LoadKeyFile(path)
	return path, keys, err
}

// RunDaemon serves until the first SIGINT or SIGTERM, then shuts down
// gracefully; a second signal stops at once. SIGHUP reloads the key file
// and the TLS files.
func RunDaemon(cfg DaemonConfig, logOut io.Writer) error {
	log := newLogger(logOut, cfg.LogFormat, cfg.LogLevel)
	// Signals first: one that arrives while starting must still mean a
	// graceful stop, not Go's default exit.
	sigs := cfg.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		defer signal.Stop(ch)
		sigs = ch
	}
	keyPath, keys, err := loadServerKeys(cfg.KeyFile, log)
	if err != nil {
		return err
	}
	ring := interceptors.NewKeyRing(keys)
	creds, certs, err := cfg.TLS.creds()
	if err != nil {
		return err
	}
	reload := &reloader{keyPath: keyPath, ring: ring, tls: certs, log: log, requireUser: cfg.RequireUser,
		euid: os.Geteuid(), canSetUID: canSetUID()}
	if err := reload.refuse(keys); err != nil {
		return err
	}
	reload.started(keys)
	cfg.Runner.Audit = log.With("log", "audit")
	// The guard kills the commands' groups even if rexecd dies by SIGKILL.
	if guard, err := runner.StartGuard(); err != nil {
		log.Warn("no command guard: a SIGKILLed rexecd would orphan its commands", "err", err)
	} else {
		defer guard.Close()
		cfg.Runner.Guard = guard
	}
	cfg.Runner.Logger = log
	run := runner.New(cfg.Runner)
	defer run.Close()
	if iso := run.Isolation(); cfg.Runner.Cgroups == runner.CgroupsRequire && !iso.Cgroups {
		return fmt.Errorf("--cgroups require: commands cannot have cgroups here: %s", iso.Missing)
	}
	srv := server.New(server.Config{
		Verifier:  interceptors.NewVerifier(ring, interceptors.VerifierOptions{Skew: cfg.Skew}),
		Runner:    run,
		Logger:    log,
		AuthAdmin: cfg.AuthAdmin,
		Creds:     creds,
	})
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if err := cfg.TLS.checkListener(cfg.Listen, lis.Addr()); err != nil {
		lis.Close()
		return err
	}
	raw, err := startRawDaemon(cfg, ring, run, log)
	if err != nil {
		lis.Close()
		return err
	}
	defer raw.stop() // on every return; after a graceful shutdown it has nothing left to do
	log.Info("rexecd listening", "grpc", lis.Addr().String(), cfg.TLS.logAttrs(), "keys", keyPath, "key_count", ring.Len(),
		"max_concurrent", run.Options().MaxConcurrent)
	if cfg.AddrFile != "" {
		if err := os.WriteFile(cfg.AddrFile, []byte(lis.Addr().String()), 0o644); err != nil {
			lis.Close()
			return fmt.Errorf("--addr-file: %w", err)
		}
	}
	if cfg.Ready != nil {
		cfg.Ready(lis.Addr())
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	for {
		select {
		case err := <-served:
			return err
		case s := <-sigs:
			if s == syscall.SIGHUP {
				reload.reload()
				continue
			}
			log.Info("shutting down: no new calls; running commands have a grace", "signal", s.String(), "grace", cfg.ShutdownGrace)
			stopped := make(chan struct{})
			go func() { raw.shutdown(srv, cfg.ShutdownGrace); close(stopped) }()
			for {
				select {
				case <-stopped:
					<-served
					log.Info("stopped")
					return nil
				case s := <-sigs:
					if s != syscall.SIGHUP {
						log.Info("second signal: stopping now", "signal", s.String())
						srv.Stop()
						raw.stop()
					}
				}
			}
		}
	}
}
