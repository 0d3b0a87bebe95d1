package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// A Group is one table of BENCHMARKS.md. Its rows are measured together in
// one run, so every ratio inside it compares figures of the same moment;
// BENCHMARKS.md keeps each group's latest table with the date and command
// that measured it, so a run of some groups updates only theirs.
type Group struct {
	// Name selects the group with --only (e.g. "latency").
	Name string
	// Title heads the group's table.
	Title string
	// Heavy groups (long soaks, fleet-scale runs) are not part of a plain
	// `all`: they run only when --only names them.
	Heavy bool
	// Run measures the group's rows. Rows returned with an error are kept
	// in the printout but the group's table in BENCHMARKS.md is not replaced.
	Run func(ctx context.Context, e *Env) ([]Row, error)
}

// Groups is every group, in the order of BENCHMARKS.md. A capability that
// adds rows adds its group here, in a file of its own.
func Groups() []Group {
	return []Group{
		latencyGroup,
		throughputGroup,
		echoGroup,
		sleepersGroup,
		slowReaderGroup,
		filesGroup,
		fleetGroup,
		fleet1000Group,
		durableGroup,
		soakGroup,
		isolationGroup,
	}
}

// selectGroups returns the groups that only names (a comma list of group
// names), or every group that is not heavy when only is empty.
func selectGroups(only string) ([]Group, error) {
	all := Groups()
	if only == "" {
		return slices.DeleteFunc(all, func(g Group) bool { return g.Heavy }), nil
	}
	var picked []Group
	for _, name := range strings.Split(only, ",") {
		i := slices.IndexFunc(all, func(g Group) bool { return g.Name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, fmt.Errorf("--only %q: no group of that name (groups: %s)", name, groupNames(all))
		}
		picked = append(picked, all[i])
	}
	return picked, nil
}

func groupNames(gs []Group) string {
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = g.Name
		if g.Heavy {
			names[i] += " (heavy: --only)"
		}
	}
	return strings.Join(names, ", ")
}

// Config sizes the measurements; flags fill it. Zero fields are not
// defaults: the flags give every default.
type Config struct {
	Size     int64         // bytes of the throughput file
	Reps     int           // warm-call repetitions
	ColdReps int           // whole-process repetitions
	SlowFor  time.Duration // slow-reader duration
	EchoFor  time.Duration // each echo QPS measurement
	Sleepers int           // concurrent `sleep 1` commands
	NoSSH    bool
	TmpDir   string
	// Metrics adds rows with rexec's metrics on, each measured in rounds
	// alternating with its twin without: the latency group's on a second
	// rexecd with --metrics-listen, the echo group's on in-process servers
	// with the metrics interceptors and observer.
	Metrics bool
	Soak    SoakOptions
}

// Env is what the groups of one run share. Its resources are made on first
// use, so a run of one group starts only what that group needs, and closed
// by Close.
type Env struct {
	Cfg *Config
	Log io.Writer

	mu      sync.Mutex
	closers []func()

	bin     string
	daemon  *Daemon
	ts      []Transport
	sshd    *SSHD
	sshSkip string
	sshDone bool
	file    string
	fileSum []byte
	hello   string
	tls     *TLSDaemon
}

// NewEnv returns an Env for cfg that logs progress to log.
func NewEnv(cfg *Config, log io.Writer) *Env { return &Env{Cfg: cfg, Log: log} }

// Close stops and removes what the groups started, last first.
func (e *Env) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

func (e *Env) onClose(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closers = append(e.closers, f)
}

// Bin returns the directory of freshly built rexec and rexecd binaries.
func (e *Env) Bin(ctx context.Context) (string, error) {
	if e.bin != "" {
		return e.bin, nil
	}
	bin, cleanup, err := binaries(ctx)
	if err != nil {
		return "", err
	}
	e.onClose(cleanup)
	e.bin = bin
	return bin, nil
}

// StartDaemon starts a rexecd of its own with flags, stopped by Close.
func (e *Env) StartDaemon(ctx context.Context, flags ...string) (*Daemon, error) {
	bin, err := e.Bin(ctx)
	if err != nil {
		return nil, err
	}
	d, err := StartDaemon(ctx, bin, flags...)
	if err != nil {
		return nil, err
	}
	e.onClose(d.Stop)
	return d, nil
}

// Daemon returns the run's shared rexecd, with default flags.
func (e *Env) Daemon(ctx context.Context) (*Daemon, error) {
	if e.daemon != nil {
		return e.daemon, nil
	}
	d, err := e.StartDaemon(ctx)
	if err != nil {
		return nil, err
	}
	e.daemon = d
	return d, nil
}

// Transports returns gRPC and the raw socket on the shared daemon, each on
// one warm connection.
func (e *Env) Transports(ctx context.Context) ([]Transport, error) {
	if e.ts != nil {
		return e.ts, nil
	}
	d, err := e.Daemon(ctx)
	if err != nil {
		return nil, err
	}
	c, err := d.Client()
	if err != nil {
		return nil, err
	}
	extra, err := extraTransports(ctx, d)
	if err != nil {
		c.Close()
		return nil, err
	}
	e.ts = append([]Transport{clientTransport{"gRPC", c.Run, c.Close}}, extra...)
	e.onClose(func() {
		for _, t := range e.ts {
			t.Close()
		}
	})
	return e.ts, nil
}

// SSHD returns the loopback sshd with its ControlMaster up, or nil and the
// reason the ssh rows are skipped.
func (e *Env) SSHD(ctx context.Context) (*SSHD, string) {
	if e.sshDone {
		return e.sshd, e.sshSkip
	}
	e.sshDone = true
	if e.Cfg.NoSSH {
		e.sshSkip = "--no-ssh"
		return nil, e.sshSkip
	}
	if err := EnsureOpenSSH(ctx); err != nil {
		e.sshSkip = err.Error()
		return nil, e.sshSkip
	}
	s, err := StartSSHD(ctx)
	if err != nil {
		e.sshSkip = err.Error()
		return nil, e.sshSkip
	}
	e.onClose(s.Stop)
	if err := s.StartMaster(ctx); err != nil {
		e.sshSkip = err.Error()
		return nil, e.sshSkip
	}
	e.sshd = s
	return s, ""
}

// File returns the path and sha256 of a file of Cfg.Size random bytes,
// removed by Close.
func (e *Env) File() (string, []byte, error) {
	if e.file != "" {
		return e.file, e.fileSum, nil
	}
	path := fmt.Sprintf("%s/rexec-bench-%d.bin", e.Cfg.TmpDir, e.Cfg.Size)
	sum, err := RandomFile(path, e.Cfg.Size)
	if err != nil {
		return "", nil, err
	}
	e.onClose(func() { os.Remove(path) })
	e.file, e.fileSum = path, sum
	return path, sum, nil
}

// GroupResult is one group's rows from one run.
type GroupResult struct {
	Group Group
	Rows  []Row
	Err   error
}

// Run measures groups one after another on one Env and returns each
// group's rows; a group that fails does not stop the others.
func Run(ctx context.Context, e *Env, groups []Group) []GroupResult {
	var res []GroupResult
	for _, g := range groups {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(e.Log, "… %s\n", g.Name)
		rows, err := g.Run(ctx, e)
		for i := range rows {
			rows[i].Group = g.Title
		}
		if err != nil {
			err = fmt.Errorf("%s: %w", g.Name, err)
			fmt.Fprintln(e.Log, "rexec-bench:", err)
		}
		res = append(res, GroupResult{Group: g, Rows: rows, Err: err})
	}
	return res
}
