package daemon

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rexec/rexec/files"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/cliflag"
	"github.com/rexec/rexec/internal/telemetry"
	"github.com/rexec/rexec/internal/version"
	"github.com/rexec/rexec/journal"
	"github.com/rexec/rexec/rawsock/rawserver"
	"github.com/rexec/rexec/runner"
)

// Exit statuses of rexecd.
const (
	exitFailed = 1 // it started and failed (a port taken, a bad key file)
	exitUsage  = 2 // the command line was wrong; nothing was started
)

// Rexecd runs the rexecd command line and returns its exit status: 0 after
// a graceful stop (or --help), 1 when serving failed, 2 for a usage error.
// getenv supplies the environment ($REXEC_KEY_FILE).
func Rexecd(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd := Command(stdout, stderr, getenv)
	cmd.SetArgs(append([]string{}, args...)) // never nil: cobra would read os.Args
	err := cmd.Execute()
	var ue *cliflag.UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, cliflag.Line(cmd, args, err))
		return exitUsage
	}
	fmt.Fprintln(stderr, "rexecd:", err)
	return exitFailed
}

// Command returns rexecd's command, which serves with RunDaemon once its
// flags are parsed; Rexecd runs it, documentation generators read it.
func Command(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	var cfg DaemonConfig
	cmd := &cobra.Command{
		Use:   "rexecd [flags]",
		Short: "Serve rexec: run commands for authenticated clients, over gRPC (and a raw socket)",
		Long: `rexecd serves rexec's ExecService, ExecutionService and EchoService over gRPC, with health
and reflection, every call authenticated by a token made from a key in its key file. With no key
file anywhere it creates one at ~/.config/rexec/keys (mode 0600) and says so.

Every command's output goes to a journal under --state-dir, bounded by --journal-max per
execution, --journal-total and --retain: a client whose connection breaks resumes its command
within --reconnect-grace, detached commands (rexec run -d) outlive their call, and rexec ps and
rexec logs read them, also after a restart.

Signals: SIGTERM or SIGINT stops taking calls, gives running commands --shutdown-grace, then
kills them and exits 0; a second one stops at once. SIGHUP reloads the key file (a bad file
keeps the old keys, and the log says why).

Durations are Go durations (30s, 1.5m, 1h30m) or a number of seconds.`,
		Example: `  rexecd                                                  # 127.0.0.1:50051, the default key file
  rexecd --raw-listen 127.0.0.1:50052                     # also the raw socket transport
  rexecd --listen 0.0.0.0:50051 --tls-cert certs/server.crt --tls-key certs/server.key \
         --tls-client-ca certs/ca.crt                     # mTLS on every address (rexec certs makes these)
  rexecd --listen 127.0.0.1:0 --addr-file addr            # a free port, written to ./addr
  rexecd --metrics-listen 127.0.0.1:9464                  # Prometheus metrics at http://127.0.0.1:9464/metrics
  rexecd --metrics-listen 127.0.0.1:9464 --pprof          # also Go's profiles: go tool pprof http://127.0.0.1:9464/debug/pprof/heap
  rexecd --otlp-endpoint http://127.0.0.1:4317            # a trace span per call, to an OTLP collector
  sudo rexecd --require-user --cgroups require            # every key has user=; every command a cgroup
  rexecd --state-dir /var/lib/rexec --retain 24h          # keep ended executions' journals a day
  rexecd --reconnect-grace 0                              # a broken connection kills its command at once`,
		Version:       version.String(),
		Args:          cliflag.NoArgs("rexecd takes flags only"),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
				return cliflag.Usagef(cmd, "--log-format %q: want text or json", cfg.LogFormat)
			}
			if cfg.Skew <= interceptors.TokenReuse {
				// rexec's client presents one token for up to TokenReuse.
				return cliflag.Usagef(cmd, "--skew %v: give more than %v (rexec's client presents one token for up to %v)", cfg.Skew, interceptors.TokenReuse, interceptors.TokenReuse)
			}
			if err := checkJournalFlags(cmd, &cfg); err != nil {
				return err
			}
			for _, n := range cfg.Names {
				if err := interceptors.CheckName(n); err != nil {
					return cliflag.Usagef(cmd, "--name: %v", err)
				}
			}
			if cfg.Pprof && cfg.MetricsListen == "" {
				return cliflag.Usagef(cmd, "--pprof needs --metrics-listen: the profiles are served on the metrics listener")
			}
			if cfg.OTLPEndpoint != "" {
				if err := telemetry.CheckEndpoint(cfg.OTLPEndpoint); err != nil {
					return cliflag.Usagef(cmd, "--otlp-endpoint %q: %v", cfg.OTLPEndpoint, err)
				}
			}
			return RunDaemon(cfg, stderr)
		},
	}
	cmd.CompletionOptions.DisableDefaultCmd = true
	cmd.SetVersionTemplate("rexecd {{.Version}}\n")
	cmd.SetFlagErrorFunc(cliflag.FlagError)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	registerFlags(cmd, &cfg, getenv)
	return cmd
}

// registerFlags binds rexecd's flags to cfg, with their defaults.
func registerFlags(cmd *cobra.Command, cfg *DaemonConfig, getenv func(string) string) {
	fs := cmd.Flags()
	dur := func(p *time.Duration, name string, def time.Duration, usage string) {
		*p = def
		fs.Var(cliflag.Duration{D: p}, name, usage)
	}
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:50051", "gRPC address to listen on")
	fs.StringVar(&cfg.KeyFile, "keys", getenv("REXEC_KEY_FILE"), "key file; $REXEC_KEY_FILE, else ~/.config/rexec/keys (created on first start)")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log format: text or json")
	fs.TextVar(&cfg.LogLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	fs.IntVar(&cfg.Runner.MaxConcurrent, "max-concurrent", 64, "commands running at once; more get ResourceExhausted")
	cfg.MemoryLimit = -1
	fs.Var(cliflag.Size{N: &cfg.MemoryLimit, Auto: true}, "memory-limit", "soft limit of rexecd's memory (Go's GOMEMLIMIT), like 256M: past it the GC runs more often; auto: $GOMEMLIMIT, else 24M + 256K per --max-concurrent (40M at 64); 0: none")
	dur(&cfg.Runner.KillGrace, "kill-grace", 3*time.Second, "time between SIGTERM and SIGKILL to a cancelled command's group")
	dur(&cfg.Runner.DrainGrace, "drain-grace", 2*time.Second, "how long to read output after a command exits while a descendant holds it open")
	dur(&cfg.Runner.MaxTimeout, "max-timeout", 24*time.Hour, "longest (and default) command timeout")
	fs.Int64Var(&cfg.Runner.MaxOutput, "max-output", 1<<40, "largest (and default) output budget of a command, in bytes")
	dur(&cfg.ShutdownGrace, "shutdown-grace", 10*time.Second, "on SIGTERM/SIGINT, how long running commands may go on before they are killed")
	fs.BoolVar(&cfg.AuthAdmin, "auth-admin", false, "close health and reflection to calls without an admin-scoped token")
	dur(&cfg.Skew, "skew", 60*time.Second, "how far a token's time may be from the server's clock (over 10s)")
	cfg.TLS.register(fs)
	fs.StringVar(&cfg.AddrFile, "addr-file", "", "write the bound address to this file once listening (for --listen with port 0)")
	fs.StringVar(&cfg.RawListen, "raw-listen", "", "also serve the raw socket transport on this address, e.g. 127.0.0.1:50052 (default: off)")
	fs.StringVar(&cfg.RawAddrFile, "raw-addr-file", "", "write the raw listener's bound address to this file")
	dur(&cfg.RawIdleTimeout, "raw-idle-timeout", rawserver.DefaultIdleTimeout, "close a raw connection that runs no command for this long (0: never)")
	fs.StringVar(&cfg.StateDir, "state-dir", files.DefaultStateDir(), "what rexecd keeps across restarts: the journal of executions (in journal/) and partial uploads of keys without root= (in partial/); $XDG_STATE_HOME/rexec, else ~/.local/state/rexec")
	fs.Int64Var(&cfg.Journal.MaxBytes, "journal-max", 64<<20, "bytes of journal per execution; past them a resumable command without its client blocks, a detached one's oldest output is evicted (0: no journal, every command ends with its call)")
	fs.Int64Var(&cfg.Journal.MaxTotal, "journal-total", 1<<30, "bytes of all journals; past them the oldest ended executions are deleted")
	dur(&cfg.Journal.Retain, "retain", time.Hour, "how long an ended execution's journal is kept")
	fs.IntVar(&cfg.Journal.MaxEnded, "retain-count", 10_000, "how many ended executions are kept; past it the oldest are deleted")
	dur(&cfg.Journal.ReconnectGrace, "reconnect-grace", 30*time.Second, "how long a resumable command runs on after its client's connection broke (0: it is killed at once)")
	dur(&cfg.Files.PartialTTL, "partial-ttl", 24*time.Hour, "how long a partial upload is kept after its last byte")
	dur(&cfg.Files.Checkpoint, "upload-checkpoint", 5*time.Second, "how often a running upload saves its state: a killed rexecd loses at most this much of it")
	fs.StringArrayVar(&cfg.Names, "name", nil, "a name clients dial this server by, HOST or HOST:PORT, besides its own addresses and host name: a load balancer's (repeatable). Servers that share a name share their tokens")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "serve Prometheus metrics over HTTP at this address's /metrics, e.g. 127.0.0.1:9464 (default: off)")
	fs.StringVar(&cfg.MetricsAddrFile, "metrics-addr-file", "", "write the metrics listener's bound address to this file")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "also serve Go's runtime profiles (heap, goroutine, CPU) at the metrics listener's /debug/pprof/; needs --metrics-listen")
	fs.StringVar(&cfg.OTLPEndpoint, "otlp-endpoint", "", "export a trace span per call to this OTLP/gRPC collector, e.g. http://127.0.0.1:4317 (default: off)")
	cfg.Runner.Cgroups = runner.CgroupsAuto
	fs.Var(cgroupMode{&cfg.Runner.Cgroups}, "cgroups", "a cgroup per command: auto (where rexecd may create them; else process groups, logged), off, or require (refuse to start without)")
	fs.StringVar(&cfg.Runner.CgroupParent, "cgroup-parent", "rexec", "the cgroup the commands' cgroups go under, created if needed: absolute (/rexec), or relative to rexecd's own cgroup")
	fs.Var(nameList{&cfg.Runner.EnvFromDaemon}, "env-from-daemon", "NAME[,NAME...]: variables of rexecd's environment every command gets too (commands start with a login's environment, none of rexecd's)")
	fs.BoolVar(&cfg.RequireUser, "require-user", false, "refuse a key file in which a key that may run commands (exec, session) has no user=")
}

// cgroupMode is --cgroups.
type cgroupMode struct{ m *runner.CgroupMode }

func (c cgroupMode) String() string {
	if c.m == nil {
		return ""
	}
	return string(*c.m)
}
func (c cgroupMode) Type() string { return "auto|off|require" }
func (c cgroupMode) Set(v string) error {
	switch m := runner.CgroupMode(v); m {
	case runner.CgroupsAuto, runner.CgroupsOff, runner.CgroupsRequire:
		*c.m = m
		return nil
	}
	return fmt.Errorf("%q: want auto, off or require", v)
}

// nameList is --env-from-daemon: comma-separated variable names, repeatable.
type nameList struct{ names *[]string }

func (n nameList) String() string {
	if n.names == nil {
		return ""
	}
	return strings.Join(*n.names, ",")
}
func (n nameList) Type() string { return "NAME[,NAME...]" }
func (n nameList) Set(v string) error {
	for _, name := range strings.Split(v, ",") {
		if name == "" || strings.ContainsAny(name, "= \x00") {
			return fmt.Errorf("%q is not a variable name", name)
		}
		*n.names = append(*n.names, name)
	}
	return nil
}

// checkJournalFlags refuses journal bounds that cannot work, and turns a
// zero grace into the journal's "none".
func checkJournalFlags(cmd *cobra.Command, cfg *DaemonConfig) error {
	j := &cfg.Journal
	switch {
	case j.MaxBytes < 0 || (j.MaxBytes > 0 && j.MaxBytes < journal.MinMaxBytes):
		return cliflag.Usagef(cmd, "--journal-max %d: want 0 (no journal) or at least %d bytes (1 MiB)", j.MaxBytes, journal.MinMaxBytes)
	case j.MaxBytes > 0 && j.MaxTotal < j.MaxBytes:
		return cliflag.Usagef(cmd, "--journal-total %d is less than --journal-max %d: raise it", j.MaxTotal, j.MaxBytes)
	case j.Retain <= 0:
		return cliflag.Usagef(cmd, "--retain %v: want a positive duration", j.Retain)
	case j.MaxEnded <= 0:
		return cliflag.Usagef(cmd, "--retain-count %d: want at least 1", j.MaxEnded)
	case cfg.StateDir == "" && j.MaxBytes > 0:
		return cliflag.Usagef(cmd, "--state-dir is empty: give a directory, or --journal-max 0 for no journal")
	}
	if j.ReconnectGrace == 0 {
		j.ReconnectGrace = -1 // the journal's "none"
	}
	return nil
}
