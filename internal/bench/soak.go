package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/testenv"
)

// SoakOptions bound a soak run. Zero fields take the defaults below.
type SoakOptions struct {
	// Duration is how long callers start new calls. By default 30s.
	Duration time.Duration
	// Callers is how many goroutines call at once. By default 4.
	Callers int
	// LargeBytes is the size of a large output. By default 8 MiB.
	LargeBytes int64
	// SampleEvery is how often the server's RSS and fds are sampled. By
	// default every 5s.
	SampleEvery time.Duration
}

// Soak's call kinds, in the order each caller cycles through them: echoes
// and short commands most, then a large output and a cancelled command.
var soakCycle = []string{"echo", "short", "echo", "short", "echo", "short", "large", "short", "cancel", "short"}

// SoakSample is one reading of the server's resources.
type SoakSample struct {
	At  time.Duration // since the soak began
	RSS int64
	FDs int
}

// SoakKind is what one kind of call did.
type SoakKind struct {
	Calls, Errors int
	P50, P99, Max time.Duration
}

// SoakResult is what a soak run measured.
type SoakResult struct {
	Elapsed time.Duration
	Calls   int
	Errors  int
	// FirstErrors are up to 10 error messages, for the report.
	FirstErrors []string
	Kinds       map[string]*SoakKind
	Samples     []SoakSample
	// RSSSlope is bytes per minute and FDSlope fds per minute, least squares
	// over the samples.
	RSSSlope, FDSlope float64
	// LateRSSSlope and LateFDSlope fit the second half of the samples only,
	// after the warm-up (pools, HTTP/2 windows, GC target) has settled.
	LateRSSSlope, LateFDSlope float64
	// Children is the number of the server's child processes left after the
	// run beyond those it had before it (its guard): every command's group
	// should be gone.
	Children int
}

// Soak drives a bounded mixed load at d for o.Duration: echo, short
// commands with known exit codes and output, large outputs whose byte count
// is checked, and commands cancelled after they started. Every wrong exit
// code, output or status counts as an error. It samples the server's RSS and
// open fds as it goes.
func Soak(ctx context.Context, d *Daemon, o SoakOptions) (*SoakResult, error) {
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	if o.Callers <= 0 {
		o.Callers = 4
	}
	if o.LargeBytes <= 0 {
		o.LargeBytes = 8 << 20
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = 5 * time.Second
	}
	c, err := d.Client()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// One call first, so that the connection is up before the first sample.
	if _, err := c.Echo(ctx, "warm", false); err != nil {
		return nil, fmt.Errorf("first echo: %w", err)
	}

	res := &SoakResult{Kinds: map[string]*SoakKind{}}
	idleChildren := len(testenv.ChildPIDs(d.Pid()))
	start := time.Now()
	sample := func() error {
		rss, _, err := Memory(d.Pid())
		if err != nil {
			return err
		}
		fds, err := OpenFDs(d.Pid())
		if err != nil {
			return err
		}
		res.Samples = append(res.Samples, SoakSample{At: time.Since(start), RSS: rss, FDs: fds})
		return nil
	}
	if err := sample(); err != nil {
		return nil, err
	}

	runCtx, stop := context.WithTimeout(ctx, o.Duration)
	defer stop()
	var (
		mu   sync.Mutex
		lats = map[string][]time.Duration{}
	)
	record := func(kind string, took time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		k := res.Kinds[kind]
		if k == nil {
			k = &SoakKind{}
			res.Kinds[kind] = k
		}
		k.Calls++
		res.Calls++
		lats[kind] = append(lats[kind], took)
		if err != nil {
			k.Errors++
			res.Errors++
			if len(res.FirstErrors) < 10 {
				res.FirstErrors = append(res.FirstErrors, kind+": "+err.Error())
			}
		}
	}
	var wg sync.WaitGroup
	for i := range o.Callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := i; runCtx.Err() == nil; n++ {
				kind := soakCycle[n%len(soakCycle)]
				// Calls get their own context: the end of the run must not
				// turn a call in flight into an error.
				callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
				t0 := time.Now()
				err := soakCall(callCtx, c.Exec(), kind, n, o.LargeBytes, func(m string) (string, error) { return c.Echo(callCtx, m, true) })
				took := time.Since(t0)
				cancel()
				if ctx.Err() != nil { // the whole run was interrupted
					return
				}
				record(kind, took, err)
			}
		}()
	}
	ticker := time.NewTicker(o.SampleEvery)
	defer ticker.Stop()
	var sampleErr error
sampling:
	for {
		select {
		case <-runCtx.Done():
			break sampling
		case <-ticker.C:
			if err := sample(); err != nil && sampleErr == nil {
				sampleErr = err
			}
		}
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	if sampleErr != nil {
		return nil, sampleErr
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// A cancelled command's group is killed within the kill grace; give it
	// that long before counting what is left, then take the last sample.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		res.Children = len(testenv.ChildPIDs(d.Pid())) - idleChildren
		if res.Children <= 0 || time.Now().After(deadline) {
			break
		}
	}
	if err := sample(); err != nil {
		return nil, err
	}
	for kind, l := range lats {
		slices.Sort(l)
		k := res.Kinds[kind]
		k.P50, k.P99, k.Max = percentile(l, 0.50), percentile(l, 0.99), l[len(l)-1]
	}
	res.RSSSlope = slopePerMinute(res.Samples, func(s SoakSample) float64 { return float64(s.RSS) })
	res.FDSlope = slopePerMinute(res.Samples, func(s SoakSample) float64 { return float64(s.FDs) })
	late := res.Samples[len(res.Samples)/2:]
	res.LateRSSSlope = slopePerMinute(late, func(s SoakSample) float64 { return float64(s.RSS) })
	res.LateFDSlope = slopePerMinute(late, func(s SoakSample) float64 { return float64(s.FDs) })
	return res, nil
}

// soakCall makes one call of kind and checks everything it returns.
func soakCall(ctx context.Context, c rexecv1.ExecServiceClient, kind string, n int, large int64, echo func(string) (string, error)) error {
	switch kind {
	case "echo":
		msg := "soak " + strconv.Itoa(n)
		got, err := echo(msg)
		if err != nil {
			return err
		}
		if got != strings.ToUpper(msg) {
			return fmt.Errorf("echo %q came back %q", msg, got)
		}
		return nil
	case "short":
		code := (n / 2) % 256 // short calls fall on odd n: halve so every code comes up
		want := fmt.Sprintf("out %d\n", n)
		ex, out, err := runAll(ctx, c, &rexecv1.RunRequest{Shell: fmt.Sprintf("echo out %d; echo err >&2; exit %d", n, code)})
		if err != nil {
			return err
		}
		if ex.GetExitCode() != int32(code) || out != want {
			return fmt.Errorf("short #%d: exit %d stdout %q, want %d %q", n, ex.GetExitCode(), out, code, want)
		}
		return nil
	case "large":
		ex, err := runCount(ctx, c, &rexecv1.RunRequest{Shell: fmt.Sprintf("head -c %d /dev/zero", large)}, large)
		if err != nil {
			return err
		}
		if ex.GetExitCode() != 0 || ex.GetStdoutBytes() != uint64(large) {
			return fmt.Errorf("large: exit %d, server read %d bytes, want 0 and %d", ex.GetExitCode(), ex.GetStdoutBytes(), large)
		}
		return nil
	case "cancel":
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		st, err := c.Run(ctx, &rexecv1.RunRequest{Shell: "sleep 300 & echo up; wait"})
		if err != nil {
			return err
		}
		for range 2 { // Started, then "up": the background sleep runs
			if _, err := st.Recv(); err != nil {
				return fmt.Errorf("cancel: before cancelling: %w", err)
			}
		}
		cancel()
		if _, err := st.Recv(); status.Code(err) != codes.Canceled {
			return fmt.Errorf("cancel: after cancelling: %v, want Canceled", err)
		}
		return nil
	}
	return fmt.Errorf("unknown kind %q", kind)
}

// runAll runs req and returns Exited and the whole stdout.
func runAll(ctx context.Context, c rexecv1.ExecServiceClient, req *rexecv1.RunRequest) (*rexecv1.Exited, string, error) {
	st, err := c.Run(ctx, req)
	if err != nil {
		return nil, "", err
	}
	var out strings.Builder
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil, "", errors.New("stream ended without exited")
		}
		if err != nil {
			return nil, "", err
		}
		out.Write(m.GetEvent().GetStdout().GetData())
		if ex := m.GetEvent().GetExited(); ex != nil {
			return ex, out.String(), nil
		}
	}
}

// runCount runs req and checks that exactly want stdout bytes arrive.
func runCount(ctx context.Context, c rexecv1.ExecServiceClient, req *rexecv1.RunRequest, want int64) (*rexecv1.Exited, error) {
	st, err := c.Run(ctx, req)
	if err != nil {
		return nil, err
	}
	var got int64
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("stream ended without exited")
		}
		if err != nil {
			return nil, err
		}
		got += int64(len(m.GetEvent().GetStdout().GetData()))
		if ex := m.GetEvent().GetExited(); ex != nil {
			if got != want {
				return nil, fmt.Errorf("received %d stdout bytes, want %d", got, want)
			}
			return ex, nil
		}
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

// slopePerMinute fits y = a + b·t (t in minutes) by least squares and returns b.
func slopePerMinute(s []SoakSample, y func(SoakSample) float64) float64 {
	if len(s) < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for _, p := range s {
		x := p.At.Minutes()
		sx += x
		sy += y(p)
		sxx += x * x
		sxy += x * y(p)
	}
	n := float64(len(s))
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// Print writes the soak report as a table.
func (r *SoakResult) Print(w io.Writer, o SoakOptions) {
	fmt.Fprintf(w, "soak: %v, %d callers, large output %s\n", r.Elapsed.Round(time.Second), o.Callers, mib(o.LargeBytes))
	fmt.Fprintf(w, "  calls %d, errors %d\n", r.Calls, r.Errors)
	fmt.Fprintf(w, "  %-7s %8s %7s %10s %10s %10s\n", "kind", "calls", "errors", "p50", "p99", "max")
	kinds := make([]string, 0, len(r.Kinds))
	for k := range r.Kinds {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, name := range kinds {
		k := r.Kinds[name]
		fmt.Fprintf(w, "  %-7s %8d %7d %10v %10v %10v\n", name, k.Calls, k.Errors,
			k.P50.Round(10*time.Microsecond), k.P99.Round(10*time.Microsecond), k.Max.Round(10*time.Microsecond))
	}
	if n := len(r.Samples); n > 0 {
		first, last := r.Samples[0], r.Samples[n-1]
		minRSS, maxRSS := first.RSS, first.RSS
		minFD, maxFD := first.FDs, first.FDs
		for _, s := range r.Samples {
			minRSS, maxRSS = min(minRSS, s.RSS), max(maxRSS, s.RSS)
			minFD, maxFD = min(minFD, s.FDs), max(maxFD, s.FDs)
		}
		fmt.Fprintf(w, "  server RSS  start %s, end %s, min %s, max %s, slope %+.3f MiB/min, second half %+.3f MiB/min (%d samples)\n",
			mib(first.RSS), mib(last.RSS), mib(minRSS), mib(maxRSS), r.RSSSlope/(1<<20), r.LateRSSSlope/(1<<20), n)
		fmt.Fprintf(w, "  server fds  start %d, end %d, min %d, max %d, slope %+.3f /min, second half %+.3f /min\n",
			first.FDs, last.FDs, minFD, maxFD, r.FDSlope, r.LateFDSlope)
	}
	fmt.Fprintf(w, "  server child processes left after the run: %d\n", r.Children)
	for _, e := range r.FirstErrors {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
}

func soakCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	var o SoakOptions
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "how long callers start new calls")
	fs.IntVar(&o.Callers, "callers", 4, "concurrent callers")
	fs.Int64Var(&o.LargeBytes, "large", 8<<20, "bytes of a large output")
	fs.DurationVar(&o.SampleEvery, "sample", 5*time.Second, "how often server RSS and fds are sampled")
	daemonFlags := fs.String("daemon-flags", "", "more rexecd flags, space-separated (e.g. \"--metrics-listen 127.0.0.1:0 --metrics-addr-file F --pprof\" to profile it while it runs)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var res *SoakResult
	if err := withDaemon(ctx, func(d *Daemon) (err error) {
		res, err = Soak(ctx, d, o)
		return err
	}, strings.Fields(*daemonFlags)...); err != nil {
		return err
	}
	fmt.Printf("%s/%s, %s, %d CPUs\n", runtime.GOOS, runtime.GOARCH, runtime.Version(), runtime.NumCPU())
	res.Print(os.Stdout, o)
	if res.Errors > 0 || res.Children > 0 {
		return fmt.Errorf("%d errors, %d child processes left", res.Errors, res.Children)
	}
	return nil
}
