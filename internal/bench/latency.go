package bench

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
)

var latencyGroup = Group{
	Name:  "latency",
	Title: "latency of `true`",
	Run:   latencyRows,
}

func latencyRows(ctx context.Context, e *Env) ([]Row, error) {
	cfg := e.Cfg
	ts, err := e.Transports(ctx)
	if err != nil {
		return nil, err
	}
	d, _ := e.Daemon(ctx)
	local, err := Time(cfg.Reps, func() error { return exec.Command("/bin/sh", "-c", "true").Run() })
	if err != nil {
		return nil, err
	}
	base := local.Median()
	rows := []Row{{Name: "local os/exec `sh -c true` (baseline)", Median: base, P99: local.P99(), Ratio: "1.00×"}}
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
		r := Row{Name: "rexec " + t.Name() + " warm connection, with auth", Median: s.Median(), P99: s.P99(),
			Ratio: fmt.Sprintf("%.2f× local", float64(s.Median())/float64(base))}
		if i == 0 {
			r.Goal, r.Met = "≤ 1.2× local", goal(float64(s.Median()) <= 1.2*float64(base))
		}
		rows = append(rows, r)
	}
	if cfg.Metrics {
		mrows, err := metricsLatencyRows(ctx, e)
		rows = append(rows, mrows...)
		if err != nil {
			return rows, err
		}
	}
	rexec := filepath.Join(e.bin, "rexec")
	cold, err := Time(cfg.ColdReps, func() error {
		return exec.Command(rexec, "--addr", d.Addr, "--key-file", d.KeyFile, "run", "--", "true").Run()
	})
	if err != nil {
		return rows, fmt.Errorf("rexec run -- true: %w", err)
	}
	coldRow := Row{Name: "`rexec run -- true`, whole CLI process (cold)", Median: cold.Median(), P99: cold.P99(),
		Ratio: fmt.Sprintf("%.2f× local", float64(cold.Median())/float64(base))}
	sshd, skip := e.SSHD(ctx)
	if sshd == nil {
		coldRow.Note = "ssh rows skipped: " + skip
		return append(rows, coldRow), nil
	}
	sshCold, err := Time(max(cfg.ColdReps/2, 5), func() error { return sshd.Command(ctx, false, "true").Run() })
	if err != nil {
		return rows, fmt.Errorf("ssh true: %w", err)
	}
	sshMux, err := Time(cfg.ColdReps, func() error { return sshd.Command(ctx, true, "true").Run() })
	if err != nil {
		return rows, fmt.Errorf("ssh mux true: %w", err)
	}
	speedup := float64(sshCold.Median()) / float64(cold.Median())
	coldRow.Ratio += fmt.Sprintf("; %.0f× faster than ssh cold", speedup)
	coldRow.Goal, coldRow.Met = "≥ 75× faster than ssh cold", goal(speedup >= 75)
	rows = append(rows, coldRow,
		Row{Name: "`ssh 127.0.0.1 true` (cold: new connection)", Median: sshCold.Median(), P99: sshCold.P99(),
			Ratio: fmt.Sprintf("%.1f× local", float64(sshCold.Median())/float64(base))},
		Row{Name: "`ssh 127.0.0.1 true` (ControlMaster, multiplexed)", Median: sshMux.Median(), P99: sshMux.P99(),
			Ratio: fmt.Sprintf("%.1f× local", float64(sshMux.Median())/float64(base))})
	return rows, nil
}

// metricsLatencyRows times `true` on two fresh rexecd, one with
// --metrics-listen, per transport, in rounds that alternate between the two
// (each first in half of them) so that the machine's drift falls on both:
// what metrics cost a call and its command. (Against the shared rexecd,
// warmed by the rows before, a second one without metrics came out 4–12%
// slower: both sides are fresh here.)
func metricsLatencyRows(ctx context.Context, e *Env) ([]Row, error) {
	var sides [2][]Transport // without metrics, with
	defer func() {
		for _, ts := range sides {
			for _, t := range ts {
				t.Close()
			}
		}
	}()
	for i, flags := range [][]string{nil, {"--metrics-listen", "127.0.0.1:0"}} {
		d, err := e.StartDaemon(ctx, flags...)
		if err != nil {
			return nil, err
		}
		c, err := d.Client()
		if err != nil {
			return nil, err
		}
		sides[i] = append(sides[i], clientTransport{"gRPC", c.Run, c.Close})
		extra, err := extraTransports(ctx, d)
		if err != nil {
			return nil, err
		}
		sides[i] = append(sides[i], extra...)
	}
	runTrue := func(t Transport) func() error {
		return func() error {
			code, err := t.Run(ctx, []string{"true"}, io.Discard)
			if err == nil && code != 0 {
				err = fmt.Errorf("exit %d", code)
			}
			return err
		}
	}
	var rows []Row
	for i := range sides[0] {
		plain, metered := sides[0][i], sides[1][i]
		for range 20 { // warm the connections and the servers
			if err := runTrue(plain)(); err != nil {
				return rows, err
			}
			if err := runTrue(metered)(); err != nil {
				return rows, err
			}
		}
		const rounds = 10
		var off, on Sample
		for r := range rounds {
			// Each side goes first in half of the rounds.
			first, second, fs, ss := runTrue(plain), runTrue(metered), &off, &on
			if r%2 == 1 {
				first, second, fs, ss = second, first, ss, fs
			}
			s, err := Time(e.Cfg.Reps/rounds, first)
			if err != nil {
				return rows, err
			}
			*fs = append(*fs, s...)
			if s, err = Time(e.Cfg.Reps/rounds, second); err != nil {
				return rows, err
			}
			*ss = append(*ss, s...)
		}
		rows = append(rows,
			Row{Name: "rexec " + plain.Name() + " warm connection, metrics off (interleaved)", Median: off.Median(), P99: off.P99()},
			Row{Name: "rexec " + plain.Name() + " warm connection, metrics on (interleaved)", Median: on.Median(), P99: on.P99(),
				Ratio: fmt.Sprintf("%.2f× metrics off", float64(on.Median())/float64(off.Median()))})
	}
	return rows, nil
}
