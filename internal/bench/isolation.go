package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

var isolationGroup = Group{
	Name:  "isolation",
	Title: "what a cgroup per command costs (rexecd --cgroups off vs require, interleaved)",
	Run:   isolationRows,
}

// isolationRows measures the same calls against two daemons, one that puts
// every command in a cgroup of its own and one that does not, in
// interleaved rounds so that both see the same moments of a shared
// machine; then 1,000 concurrent `sleep 1` with cgroups.
func isolationRows(ctx context.Context, e *Env) ([]Row, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("needs root: only root (or a delegated cgroup) may create cgroups")
	}
	cfg := e.Cfg
	off, err := e.StartDaemon(ctx, "--cgroups", "off")
	if err != nil {
		return nil, err
	}
	on, err := e.StartDaemon(ctx, "--cgroups", "require")
	if err != nil {
		return nil, fmt.Errorf("rexecd --cgroups require: %w", err)
	}
	var clients [2]*client.Client
	for i, d := range []*Daemon{off, on} {
		c, err := d.Client()
		if err != nil {
			return nil, err
		}
		defer c.Close()
		clients[i] = c
	}
	runTrue := func(c *client.Client) error {
		ex, err := c.Run(ctx, &rexecv1.RunRequest{Argv: []string{"true"}}, io.Discard, io.Discard)
		if err == nil && ex.GetExitCode() != 0 {
			err = fmt.Errorf("exit %d", ex.GetExitCode())
		}
		return err
	}
	var warm [2]Sample
	const round = 20
	for done := 0; done < max(cfg.Reps, 2*round); done += round {
		// Each side goes first in as many rounds as the other.
		for _, i := range firstThen(done / round) {
			c := clients[i]
			if done == 0 {
				for range round { // warm the connection, the server, its pool of cgroups
					if err := runTrue(c); err != nil {
						return nil, err
					}
				}
			}
			s, err := Time(round, func() error { return runTrue(c) })
			if err != nil {
				return nil, err
			}
			warm[i] = append(warm[i], s...)
		}
	}
	rexec := filepath.Join(e.bin, "rexec")
	var cold [2]Sample
	for n := range max(cfg.ColdReps, 2) {
		for _, i := range firstThen(n) {
			d := []*Daemon{off, on}[i]
			s, err := Time(1, func() error {
				return exec.Command(rexec, "--addr", d.Addr, "--key-file", d.KeyFile, "run", "--", "true").Run()
			})
			if err != nil {
				return nil, fmt.Errorf("rexec run -- true: %w", err)
			}
			cold[i] = append(cold[i], s...)
		}
	}
	ratio := func(s [2]Sample) float64 { return float64(s[1].Median()) / float64(s[0].Median()) }
	rows := []Row{
		{Name: "warm `Run(true)`, gRPC, process groups only (baseline)", Median: warm[0].Median(), P99: warm[0].P99(), Ratio: "1.00×"},
		{Name: "warm `Run(true)`, gRPC, a cgroup per command", Median: warm[1].Median(), P99: warm[1].P99(),
			Ratio: fmt.Sprintf("%.2f× without", ratio(warm)), Goal: "≤ 1.2× without", Met: goal(ratio(warm) <= 1.2)},
		{Name: "cold `rexec run -- true`, process groups only", Median: cold[0].Median(), P99: cold[0].P99(), Ratio: "1.00×"},
		{Name: "cold `rexec run -- true`, a cgroup per command", Median: cold[1].Median(), P99: cold[1].P99(),
			Ratio: fmt.Sprintf("%.2f× without", ratio(cold))},
	}
	sleepers, err := cgroupSleepers(ctx, e, cfg.Sleepers)
	return append(rows, sleepers...), err
}

// cgroupSleepers runs n `sleep 1` at once on a rexecd with a cgroup per
// command and --max-concurrent 1024, and checks every exit and output.
func cgroupSleepers(ctx context.Context, e *Env, n int) ([]Row, error) {
	wall, hwm, bad, err := remoteSleepers(ctx, e, n, true, "--cgroups", "require", "--max-concurrent", fmt.Sprint(max(n+24, 1024)))
	if err != nil {
		return nil, err
	}
	return []Row{
		{Name: fmt.Sprintf("%d concurrent `sleep 1`, a cgroup each (--max-concurrent 1024): wall time, every exit and output exact", n),
			Value: fmt.Sprintf("%.2f s (%d wrong)", wall.Seconds(), bad), Goal: "all exact", Met: goal(bad == 0)},
		{Name: "server peak RSS (VmHWM) in that run", Value: mib(hwm)},
	}, nil
}

// firstThen is the order of the two sides in round n: each goes first in
// every other round.
func firstThen(n int) [2]int {
	if n%2 == 1 {
		return [2]int{1, 0}
	}
	return [2]int{0, 1}
}
