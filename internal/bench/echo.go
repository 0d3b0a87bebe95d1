package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/rexec/rexec/client"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/telemetry"
	"github.com/rexec/rexec/runner"
	"github.com/rexec/rexec/server"
)

var echoGroup = Group{
	Name:  "echo",
	Title: "unary Echo (in-process servers, one connection each; auth and no-auth rounds interleaved)",
	Run:   echoRows,
}

// echoServer starts an in-process server, with or without auth, for the
// echo rows: the only difference between the two is the auth interceptor.
func echoServer(noAuth, metrics bool) (addr string, key *interceptors.Key, stop func(), err error) {
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
	if metrics { // as rexecd --metrics-listen sets them up
		m := telemetry.NewMetrics("bench")
		cfg.Runner = runner.New(runner.Options{Observer: telemetry.NewObserver(m)})
		cfg.Observe, cfg.OnAuthFailure = m.ServerOptions(), m.GRPCAuthFailure
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

func echoRows(ctx context.Context, e *Env) ([]Row, error) {
	cfg := e.Cfg
	type side struct {
		c    *client.Client
		stop func()
		n    float64
		s    Sample
	}
	var rows []Row
	for _, callers := range []int{1, 16} {
		sides := []*side{nil, nil} // 0: no auth, 1: HMAC auth, 2: HMAC auth and metrics (--metrics)
		kinds := []struct{ noAuth, metrics bool }{{true, false}, {false, false}}
		if cfg.Metrics {
			kinds = append(kinds, struct{ noAuth, metrics bool }{false, true})
			sides = append(sides, nil)
		}
		for i, k := range kinds {
			noAuth := k.noAuth
			addr, key, stop, err := echoServer(noAuth, k.metrics)
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
		// Short rounds, every side once a round, each first in as many rounds
		// as the others, so that the machine's drift falls on all alike. A
		// ratio is the median of the rounds' ratios: on a shared machine a
		// stall lands in one round and moves one ratio, not the result.
		const rounds = 30
		ratios := make([][]float64, len(sides)) // [i]: side i against side i-1
		for r := range rounds {
			q := make([]float64, len(sides))
			for j := range sides {
				k := (j + r) % len(sides)
				sd := sides[k]
				v, smp, err := echoLoad(ctx, sd.c, callers, cfg.EchoFor/rounds)
				if err != nil {
					return rows, err
				}
				q[k] = v
				sd.n += v / rounds
				sd.s = append(sd.s, smp...)
			}
			for i := 1; i < len(sides); i++ {
				ratios[i] = append(ratios[i], q[i]/q[i-1])
			}
		}
		median := func(i int) (float64, string) {
			slices.Sort(ratios[i])
			return ratios[i][rounds/2], fmt.Sprintf("median of %d rounds; %.2f–%.2f", rounds, ratios[i][rounds/4], ratios[i][3*rounds/4])
		}
		ratio, spread := median(1)
		rows = append(rows,
			Row{Name: fmt.Sprintf("%d caller(s), no auth", callers), Median: sides[0].s.Median(), P99: sides[0].s.P99(), Value: fmt.Sprintf("%.0f QPS", sides[0].n)},
			Row{Name: fmt.Sprintf("%d caller(s), HMAC auth", callers), Median: sides[1].s.Median(), P99: sides[1].s.P99(), Value: fmt.Sprintf("%.0f QPS", sides[1].n),
				Ratio: fmt.Sprintf("%.2f× no-auth QPS (%s)", ratio, spread), Goal: "≥ 0.95× no-auth QPS", Met: goal(ratio >= 0.95)})
		if cfg.Metrics {
			mr, mspread := median(2)
			rows = append(rows, Row{Name: fmt.Sprintf("%d caller(s), HMAC auth, metrics on", callers), Median: sides[2].s.Median(),
				P99: sides[2].s.P99(), Value: fmt.Sprintf("%.0f QPS", sides[2].n), Ratio: fmt.Sprintf("%.2f× HMAC auth QPS (%s)", mr, mspread)})
		}
	}
	return rows, nil
}
