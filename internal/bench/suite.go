package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/runner"
	"github.com/rexec/rexec/server"
)

// Row is one line of the table.
type Row struct {
	Group, Name string
	Median, P99 time.Duration // latency rows
	Value       string        // other rows: "1.21 GB/s", "20.6 MiB", "48k QPS"
	Ratio       string        // against the group's baseline
	Goal        string
	Met         int // 1 met, -1 not met, 0 no goal
	Note        string
}

// Config sizes the suite.
type Config struct {
	Size     int64         // bytes of the throughput file
	Reps     int           // warm-call repetitions
	ColdReps int           // whole-process repetitions
	SlowFor  time.Duration // slow-reader duration
	EchoFor  time.Duration // each echo QPS measurement
	Sleepers int           // concurrent `sleep 1` commands
	NoSSH    bool
	Only     string // run only the groups whose step name contains this
	TmpDir   string
	daemon   *Daemon
	bin      string
	sshd     *SSHD
	sshSkip  string
	fileSum  []byte
	file     string
}

// Transport is a way to run a command and stream its stdout, for the
// latency and throughput rows.
type Transport interface {
	Name() string
	// Run runs argv (or a shell line when len(argv)==1) and writes stdout to w.
	Run(ctx context.Context, argv []string, w io.Writer) (exit int, err error)
	Close() error
}

// clientTransport is a Transport over any client whose Run has the shape
// that the gRPC client and the raw socket client share.
type clientTransport struct {
	name  string
	run   func(ctx context.Context, req *rexecv1.RunRequest, stdout, stderr io.Writer) (*rexecv1.Exited, error)
	close func() error
}

func (t clientTransport) Name() string { return t.name }
func (t clientTransport) Close() error { return t.close() }
func (t clientTransport) Run(ctx context.Context, argv []string, w io.Writer) (int, error) {
	req := &rexecv1.RunRequest{Argv: argv}
	if len(argv) == 1 {
		req = &rexecv1.RunRequest{Shell: argv[0]}
	}
	ex, err := t.run(ctx, req, w, io.Discard)
	if err != nil {
		return 0, err
	}
	return client.ExitStatus(ex), nil
}

// Run runs the whole suite and returns the rows.
func Run(ctx context.Context, cfg *Config, log io.Writer) ([]Row, error) {
	var rows []Row
	step := func(name string, f func() ([]Row, error)) error {
		fmt.Fprintf(log, "… %s\n", name)
		r, err := f()
		rows = append(rows, r...)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	bin, cleanup, err := binaries(ctx)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	cfg.bin = bin
	if cfg.daemon, err = StartDaemon(ctx, bin); err != nil {
		return nil, err
	}
	defer cfg.daemon.Stop()
	c, err := cfg.daemon.Client()
	if err != nil {
		return nil, err
	}
	extra, err := extraTransports(ctx, cfg.daemon)
	if err != nil {
		return nil, err
	}
	transports := append([]Transport{clientTransport{"gRPC", c.Run, c.Close}}, extra...)
	defer func() {
		for _, t := range transports {
			t.Close()
		}
	}()
	if !cfg.NoSSH {
		if err := EnsureOpenSSH(ctx); err != nil {
			cfg.sshSkip = err.Error()
		} else if cfg.sshd, err = StartSSHD(ctx); err != nil {
			cfg.sshSkip = err.Error()
		} else {
			defer cfg.sshd.Stop()
			if err := cfg.sshd.StartMaster(ctx); err != nil {
				cfg.sshSkip = err.Error()
			}
		}
	} else {
		cfg.sshSkip = "--no-ssh"
	}
	for _, s := range []struct {
		name string
		f    func() ([]Row, error)
	}{
		{"latency of true", func() ([]Row, error) { return latencyRows(ctx, cfg, transports) }},
		{"throughput", func() ([]Row, error) { return throughputRows(ctx, cfg, transports) }},
		{"echo", func() ([]Row, error) { return echoRows(ctx, cfg) }},
		{"concurrent sleepers", func() ([]Row, error) { return sleeperRows(ctx, cfg) }},
		{"slow reader", func() ([]Row, error) { return slowRows(ctx, cfg) }},
	} {
		if cfg.Only != "" && !strings.Contains(s.name, cfg.Only) {
			continue
		}
		if err := step(s.name, s.f); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

func goal(ok bool) int {
	if ok {
		return 1
	}
	return -1
}

func latencyRows(ctx context.Context, cfg *Config, ts []Transport) ([]Row, error) {
	const g = "latency of `true`"
	local, err := Time(cfg.Reps, func() error { return exec.Command("/bin/sh", "-c", "true").Run() })
	if err != nil {
		return nil, err
	}
	base := local.Median()
	rows := []Row{{Group: g, Name: "local os/exec `sh -c true` (baseline)", Median: base, P99: local.P99(), Ratio: "1.00×"}}
	for i, t := range ts {
		for range 20 { // warm the connection and the server
			if _, err := t.Run(ctx, []string{"true"}, io.Discard); err != nil {
				return rows, err
			}
		}
		s, err := Time(cfg.Reps, func() error {
			code, err := t.Run(ctx, []string{"true"}, io.Discard)
			if err == nil && code != 0 {
				err = fmt.Errorf("exit %d", code)
			}
			return err
		})
		if err != nil {
			return rows, err
		}
		r := Row{Group: g, Name: "rexec " + t.Name() + " warm connection, with auth", Median: s.Median(), P99: s.P99(),
			Ratio: fmt.Sprintf("%.2f× local", float64(s.Median())/float64(base))}
		if i == 0 {
			r.Goal, r.Met = "≤ 1.2× local", goal(float64(s.Median()) <= 1.2*float64(base))
		}
		rows = append(rows, r)
	}
	rexec := filepath.Join(cfg.bin, "rexec")
	cold, err := Time(cfg.ColdReps, func() error {
		return exec.Command(rexec, "--addr", cfg.daemon.Addr, "--key-file", cfg.daemon.KeyFile, "run", "--", "true").Run()
	})
	if err != nil {
		return rows, fmt.Errorf("rexec run -- true: %w", err)
	}
	coldRow := Row{Group: g, Name: "`rexec run -- true`, whole CLI process (cold)", Median: cold.Median(), P99: cold.P99(),
		Ratio: fmt.Sprintf("%.2f× local", float64(cold.Median())/float64(base))}
	if cfg.sshSkip != "" {
		coldRow.Note = "ssh rows skipped: " + cfg.sshSkip
		return append(rows, coldRow), nil
	}
	sshCold, err := Time(max(cfg.ColdReps/2, 5), func() error { return cfg.sshd.Command(ctx, false, "true").Run() })
	if err != nil {
		return rows, fmt.Errorf("ssh true: %w", err)
	}
	sshMux, err := Time(cfg.ColdReps, func() error { return cfg.sshd.Command(ctx, true, "true").Run() })
	if err != nil {
		return rows, fmt.Errorf("ssh mux true: %w", err)
	}
	speedup := float64(sshCold.Median()) / float64(cold.Median())
	coldRow.Ratio += fmt.Sprintf("; %.0f× faster than ssh cold", speedup)
	coldRow.Goal, coldRow.Met = "≥ 75× faster than ssh cold", goal(speedup >= 75)
	rows = append(rows, coldRow,
		Row{Group: g, Name: "`ssh 127.0.0.1 true` (cold: new connection)", Median: sshCold.Median(), P99: sshCold.P99(),
			Ratio: fmt.Sprintf("%.1f× local", float64(sshCold.Median())/float64(base))},
		Row{Group: g, Name: "`ssh 127.0.0.1 true` (ControlMaster, multiplexed)", Median: sshMux.Median(), P99: sshMux.P99(),
			Ratio: fmt.Sprintf("%.1f× local", float64(sshMux.Median())/float64(base))})
	return rows, nil
}

// measureStream times one transfer of the file into an async hasher and
// checks its sha256; it returns bytes per second.
func measureStream(cfg *Config, run func(w io.Writer) error) (float64, error) {
	h := newAsyncHasher()
	start := time.Now()
	err := run(h)
	sum, n := h.Sum()
	el := time.Since(start)
	if err != nil {
		return 0, err
	}
	if !bytes.Equal(sum, cfg.fileSum) || n != cfg.Size {
		return 0, fmt.Errorf("integrity: got %d bytes with another sha256", n)
	}
	return float64(n) / el.Seconds(), nil
}

func bestOf(n int, f func() (float64, error)) (float64, error) {
	best := 0.0
	for range n {
		v, err := f()
		if err != nil {
			return 0, err
		}
		best = max(best, v)
	}
	return best, nil
}

func gbps(v float64) string { return fmt.Sprintf("%.2f GB/s", v/1e9) }

func throughputRows(ctx context.Context, cfg *Config, ts []Transport) ([]Row, error) {
	g := fmt.Sprintf("throughput: %d MiB of random bytes through stdout, sha256 checked", cfg.Size>>20)
	cfg.file = filepath.Join(cfg.TmpDir, fmt.Sprintf("rexec-bench-%d.bin", cfg.Size))
	var err error
	if cfg.fileSum, err = RandomFile(cfg.file, cfg.Size); err != nil {
		return nil, err
	}
	proc := func(cmd *exec.Cmd) func(w io.Writer) error {
		return func(w io.Writer) error {
			cmd.Stdout = w
			return cmd.Run()
		}
	}
	const reps = 3
	local, err := bestOf(reps, func() (float64, error) {
		return measureStream(cfg, proc(exec.Command("/bin/sh", "-c", "cat "+cfg.file+" | cat")))
	})
	if err != nil {
		return nil, err
	}
	rows := []Row{{Group: g, Name: "local `cat | cat` (baseline)", Value: gbps(local), Ratio: "1.00×"}}
	var ssh float64
	if cfg.sshSkip == "" {
		if ssh, err = bestOf(reps, func() (float64, error) {
			return measureStream(cfg, proc(cfg.sshd.Command(ctx, true, "cat", cfg.file)))
		}); err != nil {
			return rows, err
		}
	}
	ratio := func(v float64) string {
		s := fmt.Sprintf("%.2f× local", v/local)
		if ssh > 0 {
			s += fmt.Sprintf("; %.2f× ssh", v/ssh)
		}
		return s
	}
	for i, t := range ts {
		v, err := bestOf(reps, func() (float64, error) {
			return measureStream(cfg, func(w io.Writer) error {
				code, err := t.Run(ctx, []string{"cat", cfg.file}, w)
				if err == nil && code != 0 {
					err = fmt.Errorf("exit %d", code)
				}
				return err
			})
		})
		if err != nil {
			return rows, err
		}
		r := Row{Group: g, Name: "rexec " + t.Name() + " (Go client)", Value: gbps(v), Ratio: ratio(v)}
		if ssh > 0 {
			want := map[bool]float64{true: 1.0, false: 1.15}[i == 0]
			r.Goal, r.Met = fmt.Sprintf("≥ %.2f× ssh", want), goal(v >= want*ssh)
		}
		rows = append(rows, r)
	}
	cli, err := bestOf(reps, func() (float64, error) {
		return measureStream(cfg, proc(exec.Command(filepath.Join(cfg.bin, "rexec"), "--addr", cfg.daemon.Addr,
			"--key-file", cfg.daemon.KeyFile, "run", "--", "cat", cfg.file)))
	})
	if err != nil {
		return rows, err
	}
	rows = append(rows, Row{Group: g, Name: "`rexec run -- cat` (CLI process, gRPC)", Value: gbps(cli), Ratio: ratio(cli)})
	if ssh > 0 {
		rows = append(rows, Row{Group: g, Name: "`ssh 127.0.0.1 cat` (multiplexed, aes128-gcm)", Value: gbps(ssh), Ratio: ratio(ssh)})
	}
	return rows, nil
}

// echoServer starts an in-process server, with or without auth, for the
// echo rows: the only difference between the two is the auth interceptor.
func echoServer(noAuth bool) (addr string, key *interceptors.Key, stop func(), err error) {
	key, err = interceptors.GenerateKey("bench")
	if err != nil {
		return "", nil, nil, err
	}
	cfg := server.Config{
		Runner: runner.New(runner.Options{}),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		NoAuth: noAuth,
	}
	if !noAuth {
		cfg.Verifier = interceptors.NewVerifier(interceptors.NewKeyRing([]*interceptors.Key{key}), interceptors.VerifierOptions{})
	}
	srv := server.New(cfg)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	return lis.Addr().String(), key, func() { srv.Stop(); <-done }, nil
}

// echoLoad runs callers goroutines calling Echo for d; it returns QPS and
// the latency sample.
func echoLoad(ctx context.Context, c *client.Client, callers int, d time.Duration) (float64, Sample, error) {
	var (
		mu   sync.Mutex
		all  Sample
		werr error
		wg   sync.WaitGroup
	)
	start := time.Now()
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s Sample
			for time.Since(start) < d {
				t := time.Now()
				if _, err := c.Echo(ctx, "hello", false); err != nil {
					mu.Lock()
					werr = err
					mu.Unlock()
					return
				}
				s = append(s, time.Since(t))
			}
			mu.Lock()
			all = append(all, s...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return float64(len(all)) / time.Since(start).Seconds(), all, werr
}

func echoRows(ctx context.Context, cfg *Config) ([]Row, error) {
	const g = "unary Echo (in-process servers, one connection each; auth and no-auth rounds interleaved)"
	type side struct {
		c    *client.Client
		stop func()
		n    float64
		s    Sample
	}
	var rows []Row
	for _, callers := range []int{1, 16} {
		var sides [2]*side // 0: no auth, 1: HMAC auth
		for i, noAuth := range []bool{true, false} {
			addr, key, stop, err := echoServer(noAuth)
			if err != nil {
				return rows, err
			}
			defer stop()
			opts := []client.Option{}
			if !noAuth {
				opts = append(opts, client.WithKey(key))
			}
			c, err := client.New(addr, opts...)
			if err != nil {
				return rows, err
			}
			defer c.Close()
			if _, _, err := echoLoad(ctx, c, callers, 200*time.Millisecond); err != nil { // warm up
				return rows, err
			}
			sides[i] = &side{c: c, stop: stop}
		}
		// Alternate short rounds so that the machine's drift falls on both.
		const rounds = 10
		for range rounds {
			for _, sd := range sides {
				q, smp, err := echoLoad(ctx, sd.c, callers, cfg.EchoFor/rounds)
				if err != nil {
					return rows, err
				}
				sd.n += q / rounds
				sd.s = append(sd.s, smp...)
			}
		}
		ratio := sides[1].n / sides[0].n
		rows = append(rows,
			Row{Group: g, Name: fmt.Sprintf("%d caller(s), no auth", callers), Median: sides[0].s.Median(), P99: sides[0].s.P99(), Value: fmt.Sprintf("%.0f QPS", sides[0].n)},
			Row{Group: g, Name: fmt.Sprintf("%d caller(s), HMAC auth", callers), Median: sides[1].s.Median(), P99: sides[1].s.P99(), Value: fmt.Sprintf("%.0f QPS", sides[1].n),
				Ratio: fmt.Sprintf("%.2f× no-auth QPS", ratio), Goal: "≥ 0.9× no-auth QPS", Met: goal(ratio >= 0.9)})
	}
	return rows, nil
}

func sleeperRows(ctx context.Context, cfg *Config) ([]Row, error) {
	g := fmt.Sprintf("%d concurrent `sleep 1` (one connection)", cfg.Sleepers)
	// Baseline: the same commands started by this process with os/exec,
	// output read from a pipe; no rexec. On a machine where creating a
	// process is slow, this bounds the rexec row.
	localWall, err := localSleepers(cfg.Sleepers)
	if err != nil {
		return nil, err
	}
	d, err := StartDaemon(ctx, cfg.bin, "--max-concurrent", fmt.Sprint(cfg.Sleepers+64))
	if err != nil {
		return nil, err
	}
	defer d.Stop()
	c, err := d.Client()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Echo(ctx, "warm", false); err != nil {
		return nil, err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		bad  int
		ferr error
	)
	start := time.Now()
	for i := range cfg.Sleepers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			ex, err := c.Run(ctx, &rexecv1.RunRequest{Shell: fmt.Sprintf("sleep 1; echo %d", i)}, &out, io.Discard)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ferr = err
				bad++
			} else if ex.GetExitCode() != 0 || out.String() != fmt.Sprintf("%d\n", i) {
				bad++
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	_, hwm, _ := Memory(d.Pid())
	if ferr != nil {
		return nil, fmt.Errorf("%d of %d failed, e.g. %w", bad, cfg.Sleepers, ferr)
	}
	return []Row{
		{Group: g, Name: "local os/exec, the same commands (baseline)", Value: fmt.Sprintf("%.2f s", localWall.Seconds()), Ratio: "1.00×"},
		{Group: g, Name: "rexec gRPC: wall time, every exit code and output exact", Value: fmt.Sprintf("%.2f s (%d wrong)", wall.Seconds(), bad),
			Ratio: fmt.Sprintf("%.2f× local", wall.Seconds()/localWall.Seconds()),
			Goal:  "≤ 3 s, all exact", Met: goal(wall <= 3*time.Second && bad == 0)},
		{Group: g, Name: "server peak RSS (VmHWM)", Value: mib(hwm), Goal: "≤ 256 MiB", Met: goal(hwm <= 256<<20)},
	}, nil
}

func slowRows(ctx context.Context, cfg *Config) ([]Row, error) {
	g := "server memory while a large output streams to a slow reader"
	d, err := StartDaemon(ctx, cfg.bin)
	if err != nil {
		return nil, err
	}
	defer d.Stop()
	r, err := SlowReader(ctx, d, 1<<30, 10_000_000, cfg.SlowFor)
	if err != nil {
		return nil, err
	}
	return []Row{{Group: g, Name: fmt.Sprintf("`head -c 1G /dev/urandom`, client reading 10 MB/s for %v", cfg.SlowFor),
		Value: fmt.Sprintf("%s peak RSS (%s at start)", mib(r.HWM), mib(r.RSSStart)), Goal: "≤ 32 MiB", Met: goal(r.HWM <= 32<<20)}}, nil
}

// localSleepers starts n `sleep 1; echo i` commands at once with os/exec
// and waits for all, checking each output; it returns the wall time.
func localSleepers(n int) (time.Duration, error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ferr error
	)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := exec.Command("/bin/sh", "-c", fmt.Sprintf("sleep 1; echo %d", i)).Output()
			if err == nil && string(out) != fmt.Sprintf("%d\n", i) {
				err = fmt.Errorf("local sleeper %d printed %q", i, out)
			}
			if err != nil {
				mu.Lock()
				ferr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return time.Since(start), ferr
}
