package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

const usageText = `usage: rexec-bench COMMAND [flags]

commands:
  all [--only GROUP,...] [--out FILE] [--size 1G] [--reps 200] [--cold-reps 40] [--slow-for 20s]
      [--echo-for 3s] [--sleepers 1000] [--no-ssh] [--soak-duration 10m] [--soak-callers 16]
        every group that is not heavy, or the groups --only names; rexec against local exec, its raw
        transport and OpenSSH. Without --only it rewrites BENCHMARKS.md; with --only it writes
        nothing unless --out names the report, and then replaces only those groups' tables.
        groups: %s
  slowreader [--size 1G] [--rate 10000000] [--duration 20s]
        server peak RSS while a large output streams to a slow reader
  soak [--duration 30s] [--callers 4] [--large 8388608] [--sample 5s]
        bounded mixed load (echo, short, large, cancel): errors, latency, server RSS and fds
  sink
        hash stdin (sha256) and print "BYTES HEX": the far end of the stdin rows
`

// Main runs the bench command line and returns its exit status.
func Main(args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(os.Stderr, usageText, groupNames(Groups()))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "all":
		err = allCmd(ctx, args[1:])
	case "slowreader":
		err = slowReaderCmd(ctx, args[1:])
	case "soak":
		err = soakCmd(ctx, args[1:])
	case "sink":
		err = sinkCmd(os.Stdin, os.Stdout)
	default:
		fmt.Fprintf(os.Stderr, usageText, groupNames(Groups()))
		return 2
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rexec-bench:", err)
		return 1
	}
	return 0
}

// moduleRoot is where go.mod is, found from the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s: run rexec-bench inside the rexec module", dir)
		}
	}
}

func binaries(ctx context.Context) (string, func(), error) {
	root, err := moduleRoot()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "rexec-bench-bin-")
	if err != nil {
		return "", nil, err
	}
	if err := BuildBinaries(ctx, root, dir); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// withDaemon builds the binaries, starts a daemon, runs f on it, and
// stops and removes everything after.
func withDaemon(ctx context.Context, f func(d *Daemon) error, flags ...string) error {
	bin, cleanup, err := binaries(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	d, err := StartDaemon(ctx, bin, flags...)
	if err != nil {
		return err
	}
	defer d.Stop()
	return f(d)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func slowReaderCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("slowreader", flag.ContinueOnError)
	size := fs.Int64("size", 1<<30, "bytes the command writes")
	rate := fs.Int64("rate", 10_000_000, "bytes per second the client reads")
	dur := fs.Duration("duration", 20*time.Second, "how long the client reads")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var r *SlowReaderResult
	if err := withDaemon(ctx, func(d *Daemon) (err error) {
		r, err = SlowReader(ctx, d, *size, *rate, *dur)
		return err
	}); err != nil {
		return err
	}
	fmt.Printf("slow reader on %s, %s: `head -c %d /dev/urandom` read at %.1f MB/s for %v\n",
		runtime.GOOS+"/"+runtime.GOARCH, runtime.Version(), *size, float64(*rate)/1e6, *dur)
	fmt.Printf("  read          %d bytes in %v (%.1f MB/s)\n", r.Read, r.Elapsed.Round(time.Millisecond), float64(r.Read)/r.Elapsed.Seconds()/1e6)
	fmt.Printf("  server RSS    %s before, %s highest sample during, %s peak (VmHWM)\n", mib(r.RSSStart), mib(r.RSSPeakDuring), mib(r.HWM))
	return nil
}

func allCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("all", flag.ContinueOnError)
	cfg := &Config{}
	fs.Int64Var(&cfg.Size, "size", 1<<30, "bytes of the throughput file")
	fs.IntVar(&cfg.Reps, "reps", 200, "warm-call repetitions")
	fs.IntVar(&cfg.ColdReps, "cold-reps", 40, "whole-process repetitions")
	fs.DurationVar(&cfg.SlowFor, "slow-for", 20*time.Second, "slow-reader duration")
	fs.DurationVar(&cfg.EchoFor, "echo-for", 3*time.Second, "each echo QPS measurement")
	fs.IntVar(&cfg.Sleepers, "sleepers", 1000, "concurrent `sleep 1` commands")
	fs.BoolVar(&cfg.NoSSH, "no-ssh", false, "skip the OpenSSH rows")
	fs.BoolVar(&cfg.Metrics, "metrics", false, "latency and echo groups: add rows with metrics on (rexecd --metrics-listen), interleaved with their twins")
	fs.StringVar(&cfg.TmpDir, "tmp", os.TempDir(), "where the throughput file goes")
	fs.DurationVar(&cfg.Soak.Duration, "soak-duration", 10*time.Minute, "soak group: how long callers start new calls")
	fs.IntVar(&cfg.Soak.Callers, "soak-callers", 16, "soak group: concurrent callers")
	fs.Int64Var(&cfg.Soak.LargeBytes, "soak-large", 8<<20, "soak group: bytes of a large output")
	fs.DurationVar(&cfg.Soak.SampleEvery, "soak-sample", 10*time.Second, "soak group: how often server RSS and fds are sampled")
	only := fs.String("only", "", "run only these groups (comma list): "+groupNames(Groups()))
	out := fs.String("out", "", "the report to update (default: BENCHMARKS.md without --only, none with it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	groups, err := selectGroups(*only)
	if err != nil {
		return err
	}
	if *only == "" && *out == "" {
		*out = "BENCHMARKS.md"
	}
	e := NewEnv(cfg, os.Stderr)
	defer e.Close()
	results := Run(ctx, e, groups)
	var rows []Row
	var errs []error
	for _, r := range results {
		rows = append(rows, r.Rows...)
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	Table(os.Stdout, rows)
	if *out != "" {
		if err := WriteReport(*out, "go run ./cmd/rexec-bench all "+strings.Join(args, " "), results); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
