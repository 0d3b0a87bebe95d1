package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

var sleepersGroup = Group{
	Name:  "sleepers",
	Title: "concurrent `sleep 1` (one connection)",
	Run:   sleeperRows,
}

func sleeperRows(ctx context.Context, e *Env) ([]Row, error) {
	cfg := e.Cfg
	// Baseline: the same commands started by this process with os/exec,
	// output read from a pipe; no rexec. On a machine where creating a
	// process is slow, this bounds the rexec row.
	localWall, err := localSleepers(cfg.Sleepers)
	if err != nil {
		return nil, err
	}
	wall, hwm, bad, err := remoteSleepers(ctx, e, cfg.Sleepers, false, "--max-concurrent", fmt.Sprint(cfg.Sleepers+64))
	if err != nil {
		return nil, err
	}
	return []Row{
		{Name: fmt.Sprintf("local os/exec, the same %d commands (baseline)", cfg.Sleepers), Value: fmt.Sprintf("%.2f s", localWall.Seconds()), Ratio: "1.00×"},
		{Name: "rexec gRPC: wall time, every exit code and output exact", Value: fmt.Sprintf("%.2f s (%d wrong)", wall.Seconds(), bad),
			Ratio: fmt.Sprintf("%.2f× local", wall.Seconds()/localWall.Seconds()),
			Goal:  "≤ 3 s, all exact", Met: goal(wall <= 3*time.Second && bad == 0)},
		{Name: "server peak RSS (VmHWM)", Value: mib(hwm), Goal: "≤ 256 MiB", Met: goal(hwm <= 256<<20)},
	}, nil
}

// remoteSleepers starts a rexecd with flags and runs n `sleep 1; echo i`
// on it at once over one connection. It returns the wall time, the
// server's peak RSS and how many ended wrong: not exit 0 with their own
// output, or (inCgroup) without a cgroup's usage.
func remoteSleepers(ctx context.Context, e *Env, n int, inCgroup bool, flags ...string) (wall time.Duration, hwm int64, bad int, err error) {
	d, err := e.StartDaemon(ctx, flags...)
	if err != nil {
		return 0, 0, 0, err
	}
	c, err := d.Client()
	if err != nil {
		return 0, 0, 0, err
	}
	defer c.Close()
	if _, err := c.Echo(ctx, "warm", false); err != nil {
		return 0, 0, 0, err
	}
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
			var out bytes.Buffer
			ex, err := c.Run(ctx, &rexecv1.RunRequest{Shell: fmt.Sprintf("sleep 1; echo %d", i)}, &out, io.Discard)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				ferr = err
				bad++
			case ex.GetExitCode() != 0 || out.String() != fmt.Sprintf("%d\n", i) || inCgroup && !ex.GetUsage().GetCgroup():
				bad++
			}
		}()
	}
	wg.Wait()
	wall = time.Since(start)
	_, hwm, _ = Memory(d.Pid())
	if ferr != nil {
		return 0, 0, bad, fmt.Errorf("%d of %d failed, e.g. %w", bad, n, ferr)
	}
	return wall, hwm, bad, nil
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
