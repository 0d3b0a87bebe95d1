package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/netfault"
)

var durableGroup = Group{
	Name:  "durable",
	Title: "durable executions: the journal's cost, resume after a reset, memory of ended executions",
	Run:   durableRows,
}

func durableRows(ctx context.Context, e *Env) ([]Row, error) {
	rows, err := journalThroughputRows(ctx, e)
	if err != nil {
		return rows, err
	}
	r, err := resumeLatencyRows(ctx, e)
	rows = append(rows, r...)
	if err != nil {
		return rows, err
	}
	r, err = endedMemoryRows(ctx, e)
	return append(rows, r...), err
}

// journalThroughputRows streams the bench file (1 GiB by default) through
// stdout from a rexecd without a journal and one with, alternately, best of
// three each: a plain Run (lifetime call) and what `rexec run -n` does (a
// resumable Run read by Attach, acknowledging as it writes).
func journalThroughputRows(ctx context.Context, e *Env) ([]Row, error) {
	file, sum, err := e.File()
	if err != nil {
		return nil, err
	}
	off, err := e.StartDaemon(ctx, "--journal-max", "0")
	if err != nil {
		return nil, err
	}
	on, err := e.StartDaemon(ctx)
	if err != nil {
		return nil, err
	}
	type way struct {
		name string
		d    *Daemon
		run  func(c *client.Client) func(ctx context.Context, req *rexecv1.RunRequest, stdout, stderr io.Writer) (*rexecv1.Exited, error)
		best float64
	}
	plain := func(c *client.Client) func(context.Context, *rexecv1.RunRequest, io.Writer, io.Writer) (*rexecv1.Exited, error) {
		return c.Run
	}
	resumable := func(c *client.Client) func(context.Context, *rexecv1.RunRequest, io.Writer, io.Writer) (*rexecv1.Exited, error) {
		return func(ctx context.Context, req *rexecv1.RunRequest, stdout, stderr io.Writer) (*rexecv1.Exited, error) {
			return c.RunResumable(ctx, req, stdout, stderr, client.ResumeOptions{})
		}
	}
	ways := []*way{
		{name: "journal off (--journal-max 0), Run (baseline)", d: off, run: plain},
		{name: "journal on, Run (lifetime call)", d: on, run: plain},
		{name: "journal on, resumable: Run then Attach with acks (rexec run -n)", d: on, run: resumable},
	}
	clients := map[*Daemon]*client.Client{}
	for _, w := range ways {
		if clients[w.d] == nil {
			c, err := w.d.Client()
			if err != nil {
				return nil, err
			}
			defer c.Close()
			clients[w.d] = c
		}
	}
	const reps = 3
	for range reps {
		for _, w := range ways {
			run := w.run(clients[w.d])
			v, err := measureStream(e.Cfg.Size, sum, func(out io.Writer) error {
				ex, err := run(ctx, &rexecv1.RunRequest{Argv: []string{"cat", file}}, out, io.Discard)
				if err == nil && ex.GetExitCode() != 0 {
					err = fmt.Errorf("exit %v", ex)
				}
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", w.name, err)
			}
			w.best = max(w.best, v)
		}
	}
	base := ways[0].best
	rows := []Row{{Name: fmt.Sprintf("%s, %d MiB", ways[0].name, e.Cfg.Size>>20), Value: gbps(base), Ratio: "1.00×"}}
	for _, w := range ways[1:] {
		r := w.best / base
		rows = append(rows, Row{Name: w.name, Value: gbps(w.best), Ratio: fmt.Sprintf("%.2f× off", r),
			Goal: "≥ 0.90× off", Met: goal(r >= 0.9)})
	}
	return rows, nil
}

// resumeLatencyRows measures, through a loopback proxy that resets the
// connection mid-stream and refuses new ones for a while, the time from
// the proxy restoring the path to the first resumed byte; and a cold
// attach of the same run through the same proxy (a new connection, auth,
// Attach, the first byte). The goal per resume: the redial backoff then in
// force (its wait is at most 1.2× the interval, with jitter) plus 2× the
// median cold attach.
func resumeLatencyRows(ctx context.Context, e *Env) ([]Row, error) {
	d, err := e.StartDaemon(ctx)
	if err != nil {
		return nil, err
	}
	p, err := netfault.Start(d.Addr)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	c, err := client.New(p.Addr(), client.WithKey(d.Key), client.WithAuthority(d.Addr))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// A steady stream that lasts the whole measurement.
	const rounds = 10
	cmd := "while :; do echo 0123456789abcdef0123456789abcdef; sleep 0.001; done"
	w := &firstByte{}
	var (
		mu       sync.Mutex
		attempts []int
	)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	var id atomic.Value
	go func() {
		_, err := c.RunResumable(runCtx, &rexecv1.RunRequest{Shell: cmd}, w, io.Discard, client.ResumeOptions{
			OnResume: func(r client.Resumed) {
				id.Store(r.ExecutionID)
				mu.Lock()
				attempts = append(attempts, r.Attempts)
				mu.Unlock()
			},
		})
		errc <- err
	}()
	if !w.wait(10 * time.Second) {
		return nil, fmt.Errorf("no output from the stream")
	}
	var resumed []time.Duration
	var goals []time.Duration
	hold := 300 * time.Millisecond
	for range rounds {
		p.Reset()
		time.Sleep(hold)
		w.arm()
		restored := time.Now()
		p.Restore()
		if !w.wait(10 * time.Second) {
			return nil, fmt.Errorf("no byte within 10s of restoring the path")
		}
		resumed = append(resumed, w.at().Sub(restored))
		time.Sleep(100 * time.Millisecond)
	}
	// Cold attaches of the same run, through the same proxy.
	exID, _ := id.Load().(string)
	var cold []time.Duration
	for range rounds {
		start := time.Now()
		cc, err := client.New(p.Addr(), client.WithKey(d.Key), client.WithAuthority(d.Addr))
		if err != nil {
			return nil, err
		}
		fb := &firstByte{}
		fb.arm()
		actx, cancel := context.WithCancel(ctx)
		s, err := cc.Attach(actx, exID, 0, nil, client.ResumeOptions{})
		if err == nil {
			go func() { _, _ = s.Wait(fb, io.Discard) }()
			if !fb.wait(10 * time.Second) {
				err = fmt.Errorf("no byte from a cold attach")
			}
		}
		took := fb.at().Sub(start)
		// Hand the stream back to the resumable run: it is taken over.
		cancel()
		cc.Close()
		if err != nil {
			return nil, err
		}
		cold = append(cold, took)
	}
	stop()
	<-errc // the cold attaches took its stream over: Aborted
	kc, err := client.New(p.Addr(), client.WithKey(d.Key), client.WithAuthority(d.Addr))
	if err == nil {
		_, _ = kc.Kill(ctx, exID, rexecv1.Signal_SIGNAL_UNSPECIFIED)
		kc.Close()
	}
	slices.Sort(cold)
	coldMed := cold[len(cold)/2]
	met := 0
	mu.Lock()
	for i, r := range resumed {
		n := 1
		if i < len(attempts) {
			n = attempts[i]
		}
		g := time.Duration(1.2*float64(backoffBefore(n))) + 2*coldMed
		goals = append(goals, g)
		if r <= g {
			met++
		}
	}
	mu.Unlock()
	sorted := slices.Clone(resumed)
	slices.Sort(sorted)
	slices.Sort(goals)
	return []Row{
		{Name: fmt.Sprintf("cold attach through the proxy: connect, auth, Attach, first byte (%d runs)", rounds),
			Median: coldMed, P99: cold[len(cold)-1]},
		{Name: fmt.Sprintf("reset, %v refused, restored: restore to the first resumed byte (%d resets)", hold, rounds),
			Median: sorted[len(sorted)/2], P99: sorted[len(sorted)-1],
			Goal: fmt.Sprintf("each ≤ backoff + 2× cold (%v median)", goals[len(goals)/2].Round(time.Millisecond)),
			Met:  goal(met == len(resumed)), Note: fmt.Sprintf("%d of %d met", met, len(resumed))},
	}, nil
}

// backoffBefore is the longest wait before attempt n of a resume with the
// client's default backoff (none before the first).
func backoffBefore(n int) time.Duration {
	b := 100 * time.Millisecond
	for i := 2; i < n; i++ {
		b = min(time.Duration(float64(b)*1.6), 2*time.Second)
	}
	if n <= 1 {
		return 0
	}
	return b
}

// firstByte notes when the first write after arm arrives.
type firstByte struct {
	mu    sync.Mutex
	armed bool
	t     time.Time
	got   chan struct{}
}

func (f *firstByte) arm() {
	f.mu.Lock()
	f.armed, f.got = true, make(chan struct{})
	f.mu.Unlock()
}

func (f *firstByte) Write(b []byte) (int, error) {
	f.mu.Lock()
	if f.got == nil {
		f.armed, f.got = true, make(chan struct{})
	}
	if f.armed {
		f.armed, f.t = false, time.Now()
		close(f.got)
	}
	f.mu.Unlock()
	return len(b), nil
}

func (f *firstByte) wait(d time.Duration) bool {
	f.mu.Lock()
	if f.got == nil {
		f.got = make(chan struct{})
		f.armed = true
	}
	ch := f.got
	f.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

func (f *firstByte) at() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

// endedMemoryRows runs 1,000 short commands (4 KiB of output each) and
// reads rexecd's RSS with them all ended and in the journal; then restarts
// it on the same state directory and reads it again, the 1,000 recovered
// from disk.
func endedMemoryRows(ctx context.Context, e *Env) ([]Row, error) {
	state, err := os.MkdirTemp(e.Cfg.TmpDir, "rexec-bench-state-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(state)
	d, err := e.StartDaemon(ctx, "--state-dir", state)
	if err != nil {
		return nil, err
	}
	c, err := d.Client()
	if err != nil {
		return nil, err
	}
	const n, callers = 1000, 16
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		ferr atomic.Value
	)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= n {
				ex, err := c.Run(ctx, &rexecv1.RunRequest{Shell: "head -c 4096 /dev/zero"}, io.Discard, io.Discard)
				if err == nil && ex.GetStdoutBytes() != 4096 {
					err = fmt.Errorf("run: %v", ex)
				}
				if err != nil {
					ferr.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	c.Close()
	if err, _ := ferr.Load().(error); err != nil {
		return nil, err
	}
	time.Sleep(time.Second) // the last ends are written
	rss, hwm, err := Memory(d.Pid())
	if err != nil {
		return nil, err
	}
	d.Stop()
	d2, err := e.StartDaemon(ctx, "--state-dir", state)
	if err != nil {
		return nil, err
	}
	c2, err := d2.Client()
	if err != nil {
		return nil, err
	}
	defer c2.Close()
	list, err := c2.ListExecutions(ctx, true, n)
	if err != nil {
		return nil, err
	}
	if len(list.GetExecutions()) != n {
		return nil, fmt.Errorf("after the restart: %d executions listed, want %d", len(list.GetExecutions()), n)
	}
	rss2, _, err := Memory(d2.Pid())
	if err != nil {
		return nil, err
	}
	return []Row{
		{Name: "rexecd RSS, 1,000 ended executions in the journal (4 KiB output each)", Value: fmt.Sprintf("%s (%s peak)", mib(rss), mib(hwm)),
			Goal: "≤ 64 MiB", Met: goal(rss <= 64<<20)},
		{Name: "rexecd RSS after a restart, the 1,000 read back from disk and listed", Value: mib(rss2),
			Goal: "≤ 64 MiB", Met: goal(rss2 <= 64<<20)},
	}, nil
}
