package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rexec/rexec/files"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/version"
	"github.com/rexec/rexec/journal"
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
	// Files configures the file service (--state-dir, --partial-ttl,
	// --upload-checkpoint).
	Files files.Config
	// Names are more names a token's :authority may give for this server
	// (--name, repeatable): what clients dial through a load balancer or a
	// port mapping.
	Names []string
	// MetricsListen, when set, serves Prometheus metrics over HTTP there;
	// empty (the default) leaves them off. MetricsAddrFile is AddrFile's
	// twin for it.
	MetricsListen, MetricsAddrFile string
	// Pprof also serves the runtime's profiles (net/http/pprof) at
	// /debug/pprof/ on the metrics listener; it needs MetricsListen.
	Pprof bool
	// OTLPEndpoint, when set, exports a span per call to this OTLP/gRPC
	// collector (http://HOST:4317 or https://…); empty: no tracing.
	OTLPEndpoint string
	// MemoryLimit is the Go runtime's soft memory limit
	// (debug.SetMemoryLimit), in bytes: -1 works it out (memoryLimit), 0
	// sets none.
	MemoryLimit int64
	// StateDir holds what rexecd keeps across restarts: the journal of
	// executions in StateDir/journal, the file service's partial uploads
	// in StateDir/partial.
	StateDir string
	// Journal bounds the journal (its Dir and Logger are filled in);
	// MaxBytes 0 keeps none: every command ends with its call.
	Journal journal.Options
}

// openJournal opens the journal under the state directory, unless
// --journal-max 0 turned it off.
func openJournal(cfg DaemonConfig, log *slog.Logger) (*journal.Journal, error) {
	if cfg.Journal.MaxBytes == 0 {
		log.Info("no journal (--journal-max 0): every command ends with its call; no resume, detach, ps or logs")
		return nil, nil
	}
	jo := cfg.Journal
	jo.Dir = filepath.Join(cfg.StateDir, "journal")
	jo.Logger = log
	j, err := journal.Open(jo)
	if err != nil {
		return nil, fmt.Errorf("journal (--state-dir %s): %w", cfg.StateDir, err)
	}
	st := j.Stats()
	o := j.Options()
	log.Info("journal open", "dir", jo.Dir, "executions", st.Executions, "bytes", st.Bytes, "recovered", st.Recovered,
		"journal_max", o.MaxBytes, "journal_total", o.MaxTotal, "retain", o.Retain, "retain_count", o.MaxEnded, "reconnect_grace", o.ReconnectGrace)
	return j, nil
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
		euid: os.Geteuid(), canSetUID: runner.CanSetUID()}
	if err := reload.refuse(keys); err != nil {
		return err
	}
	reload.started(keys)
	obs, err := startObservability(context.Background(), cfg)
	if err != nil {
		return err
	}
	defer obs.close(log) // last: the metrics are served until the shutdown is done
	cfg.Runner.Audit = log.With("log", "audit")
	cfg.Runner.Observer = obs.runnerObserver()
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
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if err := cfg.TLS.checkListener(cfg.Listen, lis.Addr()); err != nil {
		lis.Close()
		return err
	}
	if err := obs.serveMetrics(cfg, run, log); err != nil {
		lis.Close()
		return err
	}
	jrnl, err := openJournal(cfg, log)
	if err != nil {
		lis.Close()
		return err
	}
	if jrnl != nil {
		defer jrnl.Close()
	}
	cfg.Files.StateDir = cfg.StateDir
	cfg.Files.Audit, cfg.Files.Logger = cfg.Runner.Audit, log
	srv := server.New(server.Config{
		Files:         &cfg.Files,
		Verifier:      interceptors.NewVerifier(ring, interceptors.VerifierOptions{Skew: cfg.Skew, Names: cfg.Names}),
		Runner:        run,
		Logger:        log,
		AuthAdmin:     cfg.AuthAdmin,
		Creds:         creds,
		Observe:       obs.serverOptions(),
		OnAuthFailure: obs.onAuthFailure(),
		Journal:       jrnl,
	})
	raw, err := startRawDaemon(cfg, ring, run, jrnl, obs.rawObserver(), log)
	if err != nil {
		lis.Close()
		return err
	}
	defer raw.stop() // on every return; after a graceful shutdown it has nothing left to do
	memLimit := setMemoryLimit(cfg.MemoryLimit, run.Options().MaxConcurrent)
	log.Info("rexecd listening", "grpc", lis.Addr().String(), cfg.TLS.logAttrs(), "keys", keyPath, "key_count", ring.Len(),
		"max_concurrent", run.Options().MaxConcurrent, "memory_limit", memLimit, "version", version.String())
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
