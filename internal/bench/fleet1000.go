package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/tlsconfig"
	"github.com/rexec/rexec/runner"
	"github.com/rexec/rexec/server"
)

var fleet1000Group = Group{
	Name:  "fleet-1000",
	Title: "fleet: `true` on 1,000 in-process targets, mTLS: the spawn floor and the client's memory",
	Run:   fleet1000Rows,
}

const (
	bigFleet   = 1000
	bigWindow  = 64
	perTarget  = 256 << 10 // the client memory goal, per target in flight
	spawnShell = "/bin/sh"
)

// inProcessFleet starts n rexec servers in this process, each on its own
// loopback port, with mTLS and the fleet's key, and returns their
// addresses. Close stops them.
func inProcessFleet(e *Env, f *fleetEnv, n int) ([]string, error) {
	cfg, err := tlsconfig.Server(f.certs.ServerCert, f.certs.ServerKey, f.certs.CACert)
	if err != nil {
		return nil, err
	}
	creds := credentials.NewTLS(cfg)
	ring := interceptors.NewKeyRing([]*interceptors.Key{f.key})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	addrs := make([]string, n)
	for i := range addrs {
		srv := server.New(server.Config{
			Verifier: interceptors.NewVerifier(ring, interceptors.VerifierOptions{}),
			Runner:   runner.New(runner.Options{}),
			Logger:   quiet,
			Creds:    creds,
		})
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(lis) }()
		e.onClose(func() { srv.Stop(); <-done })
		addrs[i] = lis.Addr().String()
	}
	return addrs, nil
}

// spawnFloor runs n `sh -c true` with os/exec, window at a time: what the
// same commands cost on this machine without rexec.
func spawnFloor(n, window int) (time.Duration, error) {
	slots := make(chan struct{}, window)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	start := time.Now()
	for range n {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			if err := exec.Command(spawnShell, "-c", "true").Run(); err != nil {
				mu.Lock()
				first = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return time.Since(start), first
}

func fleet1000Rows(ctx context.Context, e *Env) ([]Row, error) {
	f, err := newFleetEnv(ctx, e)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(e.Log, "  starting %d in-process servers (mTLS)\n", bigFleet)
	addrs, err := inProcessFleet(e, f, bigFleet)
	if err != nil {
		return nil, err
	}
	hosts, err := f.hostsFile("hosts-1000", addrs)
	if err != nil {
		return nil, err
	}
	// Warm: the first run pays for page cache and the servers' first
	// connections.
	if _, _, _, err := fleetRun(f.rexecCmd(ctx, "--hosts-file", hosts, "run", "--", "true"), 0); err != nil {
		return nil, err
	}
	const reps = 3
	var floorCPU Sample
	floor, err := medianOf(reps, func() (time.Duration, error) {
		before := selfCPU()
		d, err := spawnFloor(bigFleet, bigWindow)
		floorCPU = append(floorCPU, selfCPU()-before)
		return d, err
	})
	if err != nil {
		return nil, err
	}
	// CPU, to say what bounds the wall time: the client's (rexec's own
	// rusage) and the servers' (this process's, the commands' spawns
	// included), per target, from the median run.
	var clientCPU, serverCPU Sample
	wall, err := medianOf(reps, func() (time.Duration, error) {
		before := selfCPU()
		d, _, cpu, err := fleetRun(f.rexecCmd(ctx, "--hosts-file", hosts, "-f", fmt.Sprint(bigWindow), "run", "--", "true"), 0)
		serverCPU = append(serverCPU, selfCPU()-before)
		clientCPU = append(clientCPU, cpu)
		return d, err
	})
	if err != nil {
		return nil, err
	}
	// Memory: every target in flight at once (-f 1000), running `sleep 1`
	// so that they are, against one target. The peak is the process's own
	// VmHWM, read while it runs: wait4's ru_maxrss would count this
	// process's pages, which the child shares until it execs.
	var one, all int64
	for range reps {
		m, _, err := peakRSS(f.rexecCmd(ctx, "--addr", addrs[0], "run", "-n", "--", "sleep 1"))
		if err != nil {
			return nil, err
		}
		one = max(one, m)
	}
	var allWall time.Duration
	for range reps {
		// A long connect timeout: this run measures memory, and this one
		// process starts all 1,000 commands at once.
		m, d, err := peakRSS(f.rexecCmd(ctx, "--hosts-file", hosts, "-f", fmt.Sprint(bigFleet), "--connect-timeout", "2m", "run", "--", "sleep 1"))
		if err != nil {
			return nil, err
		}
		all = max(all, m)
		allWall = d
	}
	growth := (all - one) / bigFleet
	return []Row{
		{Name: fmt.Sprintf("local os/exec, the same %d `sh -c true`, %d at a time (spawn floor)", bigFleet, bigWindow), Value: secs(floor), Ratio: "1.00×"},
		{Name: fmt.Sprintf("`rexec --hosts-file (%d) -f %d run -- true`", bigFleet, bigWindow), Value: secs(wall),
			Ratio: fmt.Sprintf("%.2f× floor", wall.Seconds()/floor.Seconds()), Goal: "≤ 2× floor", Met: goal(wall.Seconds() <= 2*floor.Seconds()),
			Note: "bound by 1,000 mTLS handshakes on each side (about 0.5 ms of CPU each, ECDSA P-256 and X25519MLKEM768, profiled) on top of the spawns, on 2 cores"},
		{Name: "CPU per target: the spawn floor / the client (rexec) / the servers (this process, spawns included)",
			Value: fmt.Sprintf("%.2f / %.2f / %.2f ms", ms1000(floorCPU.Median()), ms1000(clientCPU.Median()), ms1000(serverCPU.Median()))},
		{Name: fmt.Sprintf("`sleep 1` on the same, -f %d: all in flight", bigFleet), Value: secs(allWall)},
		{Name: "client peak RSS: one target / 1,000 in flight", Value: fmt.Sprintf("%s / %s", mib(one), mib(all))},
		{Name: "client memory per target in flight, TLS included ((peak − one) / 1,000)", Value: fmt.Sprintf("%.0f KiB", float64(growth)/1024),
			Goal: "≤ 256 KiB", Met: goal(growth <= perTarget)},
	}, nil
}

// peakRSS runs cmd (exit 0 expected) and returns its peak resident set
// (VmHWM, polled every 5 ms while it runs) and its wall time.
func peakRSS(cmd *exec.Cmd) (int64, time.Duration, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var peak int64
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, hwm, err := Memory(cmd.Process.Pid); err == nil {
			peak = max(peak, hwm)
		}
		select {
		case err := <-done:
			if err != nil {
				return peak, 0, fmt.Errorf("%v: %s", err, summaryOf(stderr.String()))
			}
			return peak, time.Since(start), nil
		case <-tick.C:
		}
	}
}

// selfCPU is this process's CPU time so far, with its reaped children's.
func selfCPU() time.Duration {
	var self, kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	return time.Duration(self.Utime.Nano() + self.Stime.Nano() + kids.Utime.Nano() + kids.Stime.Nano())
}

// ms1000 is d spread over the 1,000 targets, in milliseconds.
func ms1000(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / bigFleet }
