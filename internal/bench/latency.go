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
	Title: "latency of `true`: warm calls against local os/exec, cold CLI processes against a Go hello-world",
	Run:   latencyRows,
}

func latencyRows(ctx context.Context, e *Env) ([]Row, error) {
	cfg := e.Cfg
	ts, err := e.Transports(ctx)
	if err != nil {
		return nil, err
	}
	d, _ := e.Daemon(ctx)
	hello, err := e.Hello(ctx)
	if err != nil {
		return nil, err
	}

	// Warm: one call after another on one connection, each transport's
	// call and a local os/exec in turn (local, gRPC, raw, local, …), so
	// that the machine's drift falls on all alike.
	warm := []func() error{func() error { return exec.Command("/bin/sh", "-c", "true").Run() }}
	for _, t := range ts {
		warm = append(warm, func() error {
			code, err := t.Run(ctx, []string{"true"}, io.Discard)
			if err == nil && code != 0 {
				err = fmt.Errorf("exit %d", code)
			}
			return err
		})
	}
	if _, err := Interleave(20, warm); err != nil { // warm the connections, the server, the page cache
		return nil, err
	}
	ws, err := Interleave(cfg.Reps, warm)
	if err != nil {
		return nil, err
	}
	local := ws[0].Median()
	rows := []Row{{Name: "local os/exec `sh -c true` (warm baseline)", Median: local, P99: ws[0].P99(), Ratio: "1.00×"}}
	for i, t := range ts {
		s := ws[i+1]
		r := Row{Name: fmt.Sprintf("rexec %s `Run(true)`, warm connection, with auth", t.Name()), Median: s.Median(), P99: s.P99(),
			Ratio: fmt.Sprintf("%.2f× local", float64(s.Median())/float64(local))}
		limit := map[bool]float64{true: 1.2, false: 1.1}[t.Name() == "gRPC"]
		r.Goal, r.Met = fmt.Sprintf("≤ %.1f× local", limit), goal(float64(s.Median()) <= limit*float64(local))
		rows = append(rows, r)
	}
	if cfg.Metrics {
		mrows, err := metricsLatencyRows(ctx, e)
		rows = append(rows, mrows...)
		if err != nil {
			return rows, err
		}
	}

	// Cold: whole processes, each kind in turn.
	rexec := func(args ...string) func() error {
		return func() error { return runQuiet(d.CLI(ctx, e.bin, args...)) }
	}
	cold := []func() error{
		func() error { return runQuiet(exec.CommandContext(ctx, hello)) },
		func() error { return runQuiet(exec.CommandContext(ctx, filepath.Join(e.bin, "rexec"), "help")) },
		rexec("run", "-n", "--", "true"),
		rexec("run", "--", "true"),
	}
	if _, err := Interleave(3, cold); err != nil {
		return rows, err
	}
	cs, err := Interleave(cfg.ColdReps, cold)
	if err != nil {
		return rows, fmt.Errorf("cold: %w", err)
	}
	base := cs[0].Median()
	vsHello := func(s Sample) string { return fmt.Sprintf("%.2f× hello", float64(s.Median())/float64(base)) }
	rows = append(rows,
		Row{Name: "a Go hello-world process (cold baseline, built by the bench)", Median: base, P99: cs[0].P99(), Ratio: "1.00×"},
		Row{Name: "`rexec help` (the CLI's start alone, no call)", Median: cs[1].Median(), P99: cs[1].P99(), Ratio: vsHello(cs[1])})
	for i, name := range []string{"`rexec run -n -- true`, whole CLI process (cold: new connection)", "`rexec run -- true` (stdin /dev/null), whole CLI process"} {
		s := cs[i+2]
		rows = append(rows, Row{Name: name, Median: s.Median(), P99: s.P99(), Ratio: vsHello(s),
			Goal: "≤ 2.5× hello", Met: goal(float64(s.Median()) <= 2.5*float64(base))})
	}

	sshd, skip := e.SSHD(ctx)
	if sshd == nil {
		return append(rows, Row{Name: "ssh rows", Note: "skipped: " + skip}), nil
	}
	ss, err := Interleave(max(cfg.ColdReps/4, 5), []func() error{
		func() error { return runQuiet(sshd.Command(ctx, false, "true")) },
		func() error { return runQuiet(sshd.Command(ctx, true, "true")) },
	})
	if err != nil {
		return rows, fmt.Errorf("ssh true: %w", err)
	}
	runN := cs[2].Median()
	for i, name := range []string{"`ssh 127.0.0.1 true` (cold: new connection)", "`ssh 127.0.0.1 true` (ControlMaster, multiplexed)"} {
		rows = append(rows, Row{Name: name, Median: ss[i].Median(), P99: ss[i].P99(),
			Ratio: fmt.Sprintf("%s; %.0f× `rexec run -n`", vsHello(ss[i]), float64(ss[i].Median())/float64(runN))})
	}
	return rows, nil
}

// runQuiet runs cmd with its output discarded, and says what it printed on
// stderr when it fails.
func runQuiet(cmd *exec.Cmd) error {
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", cmd.Args[0], err, lastLine(out))
	}
	return nil
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
