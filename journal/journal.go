package journal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rexec/rexec/runner"
)

// Options configure a Journal. Zero fields take the defaults below.
type Options struct {
	// Dir holds one directory per execution (required).
	Dir string
	// MaxBytes bounds the journal of one execution (its records on disk). A
	// Resumable command's pipe blocks when its unacknowledged output reaches
	// it; other output past it evicts the oldest, counted. By default 64 MiB;
	// at least 1 MiB.
	MaxBytes int64
	// MaxTotal bounds all journals together: past it the oldest ended
	// executions are deleted, counted, and then running ones evict what they
	// may. By default 1 GiB.
	MaxTotal int64
	// Retain is how long an ended execution's journal is kept. By default 1h.
	Retain time.Duration
	// MaxEnded bounds how many ended executions are kept: past it the
	// oldest are deleted, counted. Without it a busy server kept every
	// short command for Retain, ~0.5 KiB of memory and a directory each:
	// 216,000 calls in a 10-minute soak took rexecd from 21 to 124 MiB. By
	// default 10,000.
	MaxEnded int
	// ReconnectGrace is how long a Resumable command runs on without a
	// client after its stream broke. By default 30s; negative means none (a
	// broken stream kills it at once, as for Call).
	ReconnectGrace time.Duration
	// LiveWindow bounds how far the output may run ahead of the stream
	// attached to it (the rest of the way, HTTP/2 flow control holds it).
	// It is memory a streaming command holds in the runner's buffers while
	// its stream lags; the command's pipe (1 MiB) buffers beyond it. By
	// default 512 KiB: against 1 MiB, a soak of 16 mixed callers had ~6 MB
	// less live heap, with as many calls and no fall in stdout throughput.
	LiveWindow int64
	// StdinWindow is how many stdin bytes the journal takes from an attached
	// client before its command reads them (StdinState.Window). By default
	// 1 MiB: 512 KiB held a bulk stdin (`cat f | rexec run
	// -- 'cat >/dev/null'`, 512 MiB, three runs interleaved) at 520–545 MB/s,
	// 1 MiB gave 585–628 and 2 MiB 610–649. It is memory: at most this much
	// is queued per command, so --max-concurrent × 1 MiB at the worst (a
	// soak of mixed callers streams output, not stdin: LiveWindow is what
	// its memory is made of).
	StdinWindow int
	// Logger gets the journal's own events (evictions, expiries, recovery).
	// By default slog.Default().
	Logger *slog.Logger
	// Now is the clock of start and end times. By default time.Now.
	Now func() time.Time
}

// MinMaxBytes is the smallest MaxBytes: a few segments of a few chunks.
const MinMaxBytes = 1 << 20

func (o *Options) setDefaults() {
	if o.MaxBytes == 0 {
		o.MaxBytes = 64 << 20
	}
	o.MaxBytes = max(o.MaxBytes, MinMaxBytes)
	if o.MaxTotal <= 0 {
		o.MaxTotal = 1 << 30
	}
	if o.Retain <= 0 {
		o.Retain = time.Hour
	}
	if o.MaxEnded <= 0 {
		o.MaxEnded = 10_000
	}
	switch {
	case o.ReconnectGrace == 0:
		o.ReconnectGrace = 30 * time.Second
	case o.ReconnectGrace < 0:
		o.ReconnectGrace = 0
	}
	if o.LiveWindow <= 0 {
		o.LiveWindow = 512 << 10
	}
	if o.StdinWindow <= 0 {
		o.StdinWindow = 1 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// segSize is the size at which an execution's journal starts a new
// segment: eviction frees a whole segment, so a quarter of the bound keeps
// what is held within a quarter of it.
func (o *Options) segSize() int64 { return max(o.MaxBytes/4, 64<<10) }

// Journal keeps executions and their output. It is safe for concurrent use.
type Journal struct {
	opts  Options
	log   *slog.Logger
	total atomic.Int64 // file bytes of every held journal

	mu      sync.Mutex
	execs   map[string]*Execution
	ended   []*Execution // by end time, oldest first
	running int
	idle    chan struct{} // closed while running == 0
	closed  bool
	stats   Stats

	stop   chan struct{}
	trim   chan struct{} // wakes background: more ended executions than MaxEnded
	spares spares        // directories made ahead for new executions
	bg     sync.WaitGroup
	lock   *os.File
}

// Stats count what the journal holds and what it dropped.
type Stats struct {
	Executions, Running int
	Bytes               int64
	// Deleted counts ended executions removed for the total bound, and
	// DeletedBytes their journals' bytes; Expired those removed after Retain;
	// Trimmed those removed for MaxEnded.
	Deleted, Expired, Trimmed int64
	DeletedBytes              int64
	// EvictedBytes and EvictedRecords count output evicted from the journals
	// of executions that went on (oldest first).
	EvictedBytes, EvictedRecords int64
	// LostWrites counts writes to disk that failed (the output stays in the
	// live stream; a later reader finds a gap).
	LostWrites int64
	// Recovered counts executions a restart found running: their server was
	// killed, and their end is the restart's inference.
	Recovered int64
	// Discarded counts directories found without a readable meta file.
	Discarded int64
}

// Caller is who asks: a key, and whether it may see every execution (its
// line lists admin).
type Caller struct {
	KeyID string
	All   bool
}

func (c Caller) sees(x *Execution) bool { return c.All || c.KeyID == x.owner }

// Open opens (or creates) the journal in opts.Dir. Executions a previous
// server left are kept: ended ones as they were, and those it left running
// (it was killed) as ended with reason shutdown.
func Open(opts Options) (*Journal, error) {
	if opts.Dir == "" {
		return nil, errors.New("journal: no directory")
	}
	opts.setDefaults()
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &Journal{
		opts: opts, log: opts.Logger.With("log", "journal"),
		execs: map[string]*Execution{}, idle: make(chan struct{}), stop: make(chan struct{}), lock: lock,
		trim: make(chan struct{}, 1), spares: spares{dir: filepath.Join(opts.Dir, spareDir)},
	}
	close(j.idle)
	err = j.openSpares()
	if err == nil {
		err = j.recover()
	}
	if err != nil {
		if lock != nil {
			unlockDir(lock)
		}
		return nil, err
	}
	j.sweep()
	j.trimEnded()
	j.bg.Add(1)
	go j.background()
	j.refillSpares()
	return j, nil
}

// Options returns the options in force, defaults filled in.
func (j *Journal) Options() Options { return j.opts }

// Close stops the journal's background work. Commands still running are
// not touched (the server ends them first); their journals end there, and
// the next Open records them as ended by a shutdown.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	j.mu.Unlock()
	close(j.stop)
	j.bg.Wait()
	if j.lock != nil {
		unlockDir(j.lock)
	}
	return nil
}

// Stats returns the counts so far.
func (j *Journal) Stats() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.stats
	s.Executions, s.Running, s.Bytes = len(j.execs), j.running, j.total.Load()
	return s
}

// Idle is closed while no execution runs: a shutdown waits for it.
func (j *Journal) Idle() <-chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.idle
}

// Lookup returns the execution id that c may see, or ErrNotFound.
func (j *Journal) Lookup(id string, c Caller) (*Execution, error) {
	j.mu.Lock()
	x := j.execs[id]
	j.mu.Unlock()
	if x == nil || !c.sees(x) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return x, nil
}

// List returns what c may see, newest first: the running executions, and
// with all the ended ones too; at most limit, and whether more matched.
func (j *Journal) List(c Caller, all bool, limit int) ([]Info, bool) {
	j.mu.Lock()
	xs := make([]*Execution, 0, len(j.execs))
	for _, x := range j.execs {
		if c.sees(x) {
			xs = append(xs, x)
		}
	}
	j.mu.Unlock()
	infos := make([]Info, 0, len(xs))
	for _, x := range xs {
		if in := x.Info(); all || in.Exit == nil {
			infos = append(infos, in)
		}
	}
	slices.SortFunc(infos, func(a, b Info) int {
		if c := b.Started.Compare(a.Started); c != 0 {
			return c
		}
		return cmpString(a.ID, b.ID)
	})
	if limit > 0 && len(infos) > limit {
		return infos[:limit], true
	}
	return infos, false
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// StartOptions say whose a command is and how long it lives.
type StartOptions struct {
	// Owner is the key id that starts it.
	Owner    string
	Lifetime Lifetime
	// Attach makes the caller's stream the first attachment (a Session's,
	// a Call Run's), returned by Start.
	Attach bool
	// Stdin is written to the command's live stdin first (Spec.OpenStdin),
	// counted in StdinState.Taken.
	Stdin []byte
	// DirectStdin leaves the command's live stdin to the caller
	// (Execution.Stdin), who writes it with back-pressure of its own (the
	// raw transport); attachments then have none.
	DirectStdin bool
}

// Start starts spec with r as an execution of the journal: its events go
// to the journal, and readers (the attachment, Logs) take them from there.
// ctx is the server's: cancelling it (a shutdown) ends the command. A Call
// or Resumable execution started with o.Attach returns its first
// attachment; a Resumable one without starts its reconnect grace at once.
func (j *Journal) Start(ctx context.Context, r *runner.Runner, spec runner.Spec, o StartOptions) (*Execution, *Attachment, error) {
	if o.Lifetime == Detached {
		spec.OpenStdin = false
	}
	cctx, cancel := context.WithCancelCause(ctx)
	p, err := r.Start(cctx, spec)
	if err != nil {
		cancel(nil)
		return nil, nil, err
	}
	now := j.opts.Now()
	x := &Execution{
		j: j, id: p.ID(), dir: filepath.Join(j.opts.Dir, p.ID()), owner: o.Owner,
		command: spec.Describe(), workdir: spec.Dir, lifetime: o.Lifetime, tty: spec.TTY != nil,
		started: now, p: p, cancel: cancel, done: make(chan struct{}),
		pid: p.Pid(), changed: make(chan struct{}),
	}
	x.log = outputLog{dir: x.dir, segSize: j.opts.segSize(), liveWindow: j.opts.LiveWindow}
	if err := j.takeDir(x.dir); err == nil {
		err = appendMeta(x.dir, x.metaLocked())
		if err != nil {
			j.log.Error("journal: cannot write an execution's meta file; its journal is not kept", "exec_id", x.id, "err", err)
		}
	} else {
		j.log.Error("journal: cannot make an execution's directory; its journal is not kept", "exec_id", x.id, "err", err)
	}
	if spec.OpenStdin && o.DirectStdin {
		x.direct = p.Stdin()
	} else if spec.OpenStdin {
		// A command that could not be executed has no stdin: what its
		// client sends is dropped, as a pipe whose reader is gone drops it.
		w := p.Stdin()
		x.stdin = &stdinPump{w: w, window: j.opts.StdinWindow, failed: w == nil}
		if len(o.Stdin) > 0 {
			x.stdin.queue = append(x.stdin.queue, o.Stdin)
			x.stdin.queued = len(o.Stdin)
		}
	}
	var a *Attachment
	x.mu.Lock()
	if o.Attach && o.Lifetime != Detached {
		a = x.attachLocked(0)
	} else if o.Lifetime == Resumable {
		x.startGraceLocked()
	}
	x.mu.Unlock()

	j.mu.Lock()
	j.execs[x.id] = x
	if j.running == 0 {
		j.idle = make(chan struct{})
	}
	j.running++
	j.mu.Unlock()

	context.AfterFunc(cctx, x.release)
	if x.stdin != nil {
		go x.pumpStdin()
	}
	go x.run()
	return x, a, nil
}

// ended moves x to the ended list; x has written its end.
func (j *Journal) endedExec(x *Execution) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.running--
	if j.running == 0 {
		close(j.idle)
	}
	if !x.gone.Load() {
		j.ended = append(j.ended, x)
		if len(j.ended) > j.opts.MaxEnded {
			select { // the background goroutine deletes the excess
			case j.trim <- struct{}{}:
			default:
			}
		}
	}
}

// trimEnded deletes the oldest ended executions past MaxEnded.
func (j *Journal) trimEnded() {
	j.mu.Lock()
	victims := j.popEndedLocked(func(*Execution) bool { return len(j.ended) > j.opts.MaxEnded }, &j.stats.Trimmed)
	j.mu.Unlock()
	for _, x := range victims {
		j.retireDir(x.dir)
	}
	if len(victims) > 0 {
		j.log.Debug("journal: deleted the oldest ended executions past the count bound (--retain-count)", "count", len(victims), "retain_count", j.opts.MaxEnded)
	}
}

// countEvicted adds an execution's evicted output to the totals.
func (j *Journal) countEvicted(bytes, records int64) {
	j.mu.Lock()
	j.stats.EvictedBytes += bytes
	j.stats.EvictedRecords += records
	j.mu.Unlock()
}

// evictEnded deletes ended executions, oldest first, until need more bytes
// fit in MaxTotal (or none is left). It returns how many it deleted.
func (j *Journal) evictEnded(need int64) int {
	j.mu.Lock()
	victims := j.popEndedLocked(func(x *Execution) bool {
		if j.total.Load()+need <= j.opts.MaxTotal {
			return false
		}
		j.stats.DeletedBytes += x.log.size
		return true
	}, &j.stats.Deleted)
	j.mu.Unlock()
	for _, x := range victims {
		j.log.Info("journal: deleted an ended execution's journal for the total bound (--journal-total)",
			"exec_id", x.id, "bytes", x.log.size, "ended", x.ended)
		j.retireDir(x.dir)
	}
	return len(victims)
}

// popEndedLocked takes the oldest ended executions as long as more says
// so of the oldest left, forgets them, and counts each in *n (j.mu held).
// The caller removes their directories, outside the lock.
func (j *Journal) popEndedLocked(more func(*Execution) bool, n *int64) []*Execution {
	var victims []*Execution
	for len(j.ended) > 0 && more(j.ended[0]) {
		x := j.ended[0]
		j.ended[0] = nil
		j.ended = j.ended[1:]
		j.forgetLocked(x)
		*n++
		victims = append(victims, x)
	}
	return victims
}

// forgetLocked drops x from the journal's books (j.mu held). x has ended,
// so its log no longer changes.
func (j *Journal) forgetLocked(x *Execution) {
	x.gone.Store(true)
	delete(j.execs, x.id)
	j.total.Add(-x.log.size)
}

// sweep deletes ended executions older than Retain.
func (j *Journal) sweep() {
	limit := j.opts.Now().Add(-j.opts.Retain)
	j.mu.Lock()
	victims := j.popEndedLocked(func(x *Execution) bool { return x.ended.Before(limit) }, &j.stats.Expired)
	j.mu.Unlock()
	for _, x := range victims {
		j.retireDir(x.dir)
	}
	if len(victims) > 0 {
		j.log.Info("journal: deleted ended executions past their retention (--retain)", "count", len(victims), "retain", j.opts.Retain)
	}
}

// background sweeps out ended executions past Retain.
func (j *Journal) background() {
	defer j.bg.Done()
	sweep := time.NewTicker(min(max(j.opts.Retain/4, 10*time.Millisecond), time.Minute))
	defer sweep.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-sweep.C:
			j.sweep()
		case <-j.trim:
			j.trimEnded()
		}
	}
}
