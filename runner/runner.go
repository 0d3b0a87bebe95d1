package runner

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Domain errors. The transports map them to their own wire (gRPC codes, raw
// error frames); the runner never speaks either.
var (
	// ErrTooManyCommands is returned by Start when Options.MaxConcurrent
	// commands are already running. Nothing queues: the caller may retry.
	ErrTooManyCommands = errors.New("too many commands running")
	// ErrShutdown is the cancel cause a server gives the contexts of its
	// commands when it is shutting down; Start returns it once that happened.
	ErrShutdown = errors.New("server is shutting down")
	// ErrTimeout is the cancel cause of a command whose timeout passed.
	ErrTimeout = errors.New("command timed out")
	// ErrTooManyForOwner is returned by Start when Spec.OwnerMax commands of
	// Spec.Owner (a key) already run. Nothing queues: the caller may retry.
	ErrTooManyForOwner = errors.New("too many commands of this key running")
	// ErrDisconnected is the cancel cause of a command whose client's stream
	// broke and that no client took up again within the reconnect grace.
	ErrDisconnected = errors.New("no client reconnected within the reconnect grace")
)

// CgroupMode says whether a Runner puts each command in a cgroup.
type CgroupMode string

// The cgroup modes.
const (
	// CgroupsOff runs commands in process groups only, with rlimits.
	CgroupsOff CgroupMode = "off"
	// CgroupsAuto uses cgroups where this process may create them, and
	// falls back to process groups (logging once what is missing) where not.
	CgroupsAuto CgroupMode = "auto"
	// CgroupsRequire is CgroupsAuto that does not fall back: New then runs
	// no command (Start returns the reason), for a server that must not run
	// commands unconfined.
	CgroupsRequire CgroupMode = "require"
)

// Options configure a Runner. Zero fields take the defaults below.
type Options struct {
	// MaxConcurrent bounds the commands running at once. By default 64.
	MaxConcurrent int
	// KillGrace is the time between SIGTERM and SIGKILL to a cancelled
	// command's process group. By default 3s.
	KillGrace time.Duration
	// DrainGrace is how long output is still read after the command exited
	// while something it started holds the pipes open. By default 2s.
	DrainGrace time.Duration
	// MaxTimeout caps (and is the default of) a command's timeout. By default 24h.
	MaxTimeout time.Duration
	// MaxOutput caps (and is the default of) a command's output budget, in
	// bytes. By default 1 TiB: in effect, no budget unless a request sets one.
	MaxOutput int64
	// ChunkSize is the size of one output read. By default 128 KiB (the
	// benchmarks: 32 KiB chunks moved half as much per CPU second). A buffer
	// is taken only once the pipe has data, so idle commands hold none.
	ChunkSize int
	// PipeSize is the kernel buffer asked for the stdout pipe (F_SETPIPE_SZ),
	// so a fast writer and the pump exchange fewer, larger reads, and for the
	// stdin pipe, so that a stdin message is written whole while the command
	// reads the last one. By default
	// 1 MiB; a refusal (the limits in /proc/sys/fs/pipe-*) keeps the
	// kernel's 64 KiB. Note that for a user without CAP_SYS_RESOURCE the
	// kernel counts every pipe's size against pipe-user-pages-soft (64 MiB):
	// past it, that user's new pipes get a small buffer.
	PipeSize int
	// MaxEnv bounds the number of env entries of a spec. By default 256.
	MaxEnv int
	// MaxArgBytes bounds the bytes of the shell string, of argv and of env,
	// each. By default 128 KiB (Linux's own limit on one argument is 128 KiB).
	MaxArgBytes int
	// Audit, when set, gets one line as each command starts and one as it
	// ends. By default there is no audit log.
	Audit *slog.Logger
	// Guard, when set, is told of every command's process group, so that
	// the groups are killed even if this process dies by SIGKILL. By
	// default there is none: a SIGKILLed server orphans its commands.
	Guard *Guard
	// Cgroups says whether each command runs in a cgroup of its own (see
	// CgroupMode). By default CgroupsOff; rexecd's default is CgroupsAuto.
	Cgroups CgroupMode
	// CgroupParent is the cgroup the commands' cgroups are made under,
	// created if needed: an absolute path in the cgroup hierarchy
	// ("/rexec"), or a relative one, under this process's own cgroup (in
	// each hierarchy of the hybrid layout). By default "rexec".
	CgroupParent string
	// EnvFromDaemon names variables of this process's environment that
	// every command gets too (a command otherwise starts with a login's
	// environment, none of the server's). By default none.
	EnvFromDaemon []string
	// Logger gets the one line that says how commands are isolated (and,
	// without cgroups, what is missing). By default slog.Default().
	Logger *slog.Logger
	// LookupUser resolves Spec.User. By default the host's user database
	// (os/user: /etc/passwd and /etc/group, or NSS with cgo).
	LookupUser func(name string) (*Account, error)
	// Observer, when set, is told of every command's start and end and of
	// every refused start (observer.go). By default there is none.
	Observer Observer
}

func (o *Options) setDefaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.KillGrace, 3*time.Second)
	def(&o.DrainGrace, 2*time.Second)
	def(&o.MaxTimeout, 24*time.Hour)
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 64
	}
	if o.MaxOutput <= 0 {
		o.MaxOutput = 1 << 40
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = 128 << 10
	}
	if o.PipeSize == 0 {
		o.PipeSize = 1 << 20
	}
	if o.MaxEnv <= 0 {
		o.MaxEnv = 256
	}
	if o.MaxArgBytes <= 0 {
		o.MaxArgBytes = 128 << 10
	}
	if o.Cgroups == "" {
		o.Cgroups = CgroupsOff
	}
	if o.CgroupParent == "" {
		o.CgroupParent = "rexec"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LookupUser == nil {
		o.LookupUser = LookupAccount
	}
}

// Runner starts commands within its limits. It is safe for concurrent use.
type Runner struct {
	opts  Options
	slots chan struct{}
	bufs  sync.Pool

	// self is the account this process runs as: the login of commands
	// without Spec.User. passEnv holds Options.EnvFromDaemon's entries.
	self    *Account
	passEnv []string
	// canSetUID: this process may start commands as other users.
	canSetUID bool

	// cg is the cgroup layer, nil when commands run without cgroups;
	// iso says which, and noCgroups why not.
	cg        *cgroups
	iso       Isolation
	noCgroups error

	owners sync.Map // Spec.Owner → *atomic.Int64: its commands running
}

// Isolation says how a Runner isolates its commands.
type Isolation struct {
	// Cgroups: each command runs in a cgroup of its own.
	Cgroups bool
	// Mode names the layout: "cgroup v2", "cgroup v2 + v1 memory,pids,cpu
	// (hybrid)", or "process groups".
	Mode string
	// Dir is the runner's directory in the cgroup v2 hierarchy, under
	// Options.CgroupParent; empty without cgroups.
	Dir string
	// Limits lists the cgroup limits the kernel enforces here (memory,
	// pids, cpu); rlimits (nofile, fsize) work in every mode.
	Limits []string
	// Missing says what is missing, for the log: why there are no
	// cgroups, or which controllers are not available.
	Missing string
}

// New returns a Runner with opts (zero fields take their defaults).
//
// The first New (or StartGuard) of a process marks every descriptor from 3
// up close-on-exec, so that commands inherit only stdin, stdout and stderr
// (and their terminal), not what the server itself inherited open.
//
// With Options.Cgroups other than CgroupsOff, New sets up the cgroups (see
// Isolation) and logs one line saying how commands are isolated; call
// Close when done, which removes them.
func New(opts Options) *Runner {
	closeInheritedOnExec()
	opts.setDefaults()
	r := &Runner{
		opts:      opts,
		slots:     make(chan struct{}, opts.MaxConcurrent),
		self:      currentAccount(),
		passEnv:   passThrough(opts.EnvFromDaemon),
		canSetUID: CanSetUID(),
	}
	r.bufs.New = func() any { b := make([]byte, opts.ChunkSize); return &b }
	r.setupIsolation()
	return r
}

// Isolation says how commands are isolated.
func (r *Runner) Isolation() Isolation { return r.iso }

// Close removes the runner's cgroups (a command still running is killed).
// Without cgroups it does nothing. Call it once the commands have ended.
func (r *Runner) Close() error {
	if r.cg == nil {
		return nil
	}
	return r.cg.close()
}

// Options returns the options in force, defaults filled in.
func (r *Runner) Options() Options { return r.opts }

// Running reports how many commands hold a slot now.
func (r *Runner) Running() int { return len(r.slots) }

// waitIdle waits until no command holds a slot, or at most d. A command
// frees its slot once its group is killed and reaped and its end is in the
// audit log, whether or not its client still reads.
func (r *Runner) waitIdle(d time.Duration) {
	for deadline := time.Now().Add(d); len(r.slots) > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

// Stream names an output stream.
type Stream uint8

// The output streams.
const (
	Stdout Stream = 1
	Stderr Stream = 2
)

func (s Stream) String() string {
	if s == Stderr {
		return "stderr"
	}
	return "stdout"
}

// Sink receives a command's events, from one goroutine (Wait's), in order:
// Started (unless the command could not be executed), Output chunks, then
// Exited. An error from the sink (its peer went away) cancels the command.
// Output's data is only valid during the call.
//
// A sink may block (a client that reads slowly, or not at all): the command's
// pipe then fills and the command blocks in write, but its timeout, its
// cancellation and its kills act all the same, and once it has ended the
// runner frees its slot before Exited is sent.
type Sink interface {
	Started(execID string, pid int) error
	Output(s Stream, seq uint64, data []byte) error
	Exited(r *Result) error
}

// Reason says why a command ended.
type Reason uint8

// The reasons a command ends.
const (
	ReasonExited Reason = iota + 1
	ReasonTimeout
	ReasonCancelled
	ReasonShutdown
	// ReasonOOM: the kernel's OOM killer ended the command at its memory
	// limit (Result.Message names it). SentSignal is KILL.
	ReasonOOM
	// ReasonDisconnected: the command's stream broke and no client came back
	// within the reconnect grace. Numbered as the API's END_REASON_DISCONNECTED,
	// like the others.
	ReasonDisconnected Reason = 16
)

func (r Reason) String() string {
	switch r {
	case ReasonExited:
		return "exited"
	case ReasonTimeout:
		return "timeout"
	case ReasonCancelled:
		return "cancelled"
	case ReasonShutdown:
		return "shutdown"
	case ReasonOOM:
		return "oom"
	case ReasonDisconnected:
		return "disconnected"
	}
	return "unknown"
}

func reasonOf(cause error) Reason {
	switch {
	case errors.Is(cause, ErrTimeout):
		return ReasonTimeout
	case errors.Is(cause, ErrShutdown):
		return ReasonShutdown
	case errors.Is(cause, ErrDisconnected):
		return ReasonDisconnected
	}
	return ReasonCancelled
}

// Result is how a command ended. A nonzero exit is data, not an error.
type Result struct {
	ExecID string
	Pid    int
	// ExitCode is the exit status, or -1 when a signal killed the command.
	ExitCode int
	// Signal is the number of the signal that killed it, or 0.
	Signal int
	// SignalName is Signal's short name ("TERM"), or "".
	SignalName string
	// SentSignal is the signal rexec sent to end the command (TERM, or KILL
	// when TERM was not enough) for its Reason (a timeout, a cancelled call,
	// a shutdown), or 0 when the command ended by itself. A shell reports
	// 128+SentSignal for such a command even when it handled the signal and
	// exited by itself.
	SentSignal int
	// SentSignalName is SentSignal's short name ("TERM"), or "".
	SentSignalName string
	Reason         Reason
	// Duration is the wall time from the start to the leader's exit (the
	// drain after it is not counted).
	Duration time.Duration
	// OutputIncomplete: not all output was read. Either the command exited
	// but something it started held the output open past DrainGrace (the
	// group was killed), or rexec ended the command while its client read
	// nothing for a DrainGrace, or a terminal was hung up with output unread.
	OutputIncomplete bool
	// StdoutBytes and StderrBytes count what was read, forwarded or not;
	// Dropped counts what was read past the output budget and not forwarded.
	StdoutBytes, StderrBytes, Dropped int64
	// Unread counts the bytes left in the pipes (or the terminal) when the
	// runner stopped reading them (see OutputIncomplete): a lower bound of
	// what was lost, for the audit log.
	Unread int64
	// Usage is what the command consumed.
	Usage Usage
	// Limits are the limits the command ran under (Spec.Limits).
	Limits Limits
	// Message says in words why rexec or the kernel ended the command,
	// when that is not plain (an OOM kill names the limit); else "".
	Message string
}

// TimedOut reports whether the command was killed for its timeout.
func (r *Result) TimedOut() bool { return r.Reason == ReasonTimeout }

func newExecID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
