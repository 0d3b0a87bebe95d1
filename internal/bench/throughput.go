package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
)

var throughputGroup = Group{
	Name:  "throughput",
	Title: "throughput: random bytes through stdout and through stdin, sha256 checked",
	Run:   throughputRows,
}

// measureStream times one transfer of the file into an async hasher and
// checks its size and sha256 against want; it returns bytes per second.
func measureStream(size int64, want []byte, run func(w io.Writer) error) (float64, error) {
	h := newAsyncHasher()
	start := time.Now()
	err := run(h)
	sum, n := h.Sum()
	el := time.Since(start)
	if err != nil {
		return 0, err
	}
	if !bytes.Equal(sum, want) || n != size {
		return 0, fmt.Errorf("integrity: got %d bytes with another sha256", n)
	}
	return float64(n) / el.Seconds(), nil
}

func gbps(v float64) string { return fmt.Sprintf("%.2f GB/s", v/1e9) }

// readOut runs cmd with its stdout on a pipe that this process reads in
// large reads into w: every process row pays the same reader, which is
// never the slowest part (os/exec's own copy reads 32 KiB at a time).
func readOut(cmd *exec.Cmd, w io.Writer) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pr.Close()
	cmd.Stdout = pw
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return err
	}
	_, cerr := io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{pr}, make([]byte, sinkReadSize))
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w: %s", cmd.Args[0], err, bytes.TrimSpace(stderr.Bytes()))
	}
	return cerr
}

// pipeIn runs `cat file | cmd`, where cmd ends in the sink, and checks what
// the sink says it got; it returns bytes per second.
func pipeIn(cmd *exec.Cmd, file string, size int64, want []byte) (float64, error) {
	cat := exec.Command("cat", file)
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	var out, stderr bytes.Buffer
	cat.Stdout, cmd.Stdin, cmd.Stdout, cmd.Stderr = pw, pr, &out, &stderr
	start := time.Now()
	if err := cat.Start(); err != nil {
		pr.Close()
		pw.Close()
		return 0, err
	}
	err = cmd.Start()
	pr.Close()
	pw.Close()
	if err != nil {
		_ = cat.Process.Kill()
		_ = cat.Wait()
		return 0, err
	}
	werr := cmd.Wait()
	cerr := cat.Wait()
	el := time.Since(start)
	if werr != nil {
		return 0, fmt.Errorf("%s: %w: %s", cmd.Args[0], werr, bytes.TrimSpace(stderr.Bytes()))
	}
	if cerr != nil {
		return 0, fmt.Errorf("cat: %w", cerr)
	}
	if err := checkSink(out.Bytes(), size, want); err != nil {
		return 0, err
	}
	return float64(size) / el.Seconds(), nil
}

// flow is one way of moving the file, measured once per round.
type flow struct {
	key  string
	name string
	run  func() (float64, error)
	best float64
}

func throughputRows(ctx context.Context, e *Env) ([]Row, error) {
	cfg := e.Cfg
	ts, err := e.Transports(ctx)
	if err != nil {
		return nil, err
	}
	d, _ := e.Daemon(ctx)
	td, err := e.TLSDaemon(ctx)
	if err != nil {
		return nil, err
	}
	file, sum, err := e.File()
	if err != nil {
		return nil, err
	}
	sink, err := sinkArgv()
	if err != nil {
		return nil, err
	}
	out := func(run func(w io.Writer) error) func() (float64, error) {
		return func() (float64, error) { return measureStream(cfg.Size, sum, run) }
	}
	proc := func(mk func() *exec.Cmd) func() (float64, error) {
		return out(func(w io.Writer) error { return readOut(mk(), w) })
	}
	in := func(mk func() *exec.Cmd) func() (float64, error) {
		return func() (float64, error) { return pipeIn(mk(), file, cfg.Size, sum) }
	}
	cli := func(args ...string) func() *exec.Cmd {
		return func() *exec.Cmd { return d.CLI(ctx, e.bin, args...) }
	}
	tlsCLI := func(args ...string) func() *exec.Cmd {
		return func() *exec.Cmd { return td.CLI(ctx, e.bin, args...) }
	}
	catArgv := []string{"cat", file}
	flows := []*flow{
		{key: "local-out", name: "local pipe `cat f | cat` (stdout baseline)", run: proc(func() *exec.Cmd { return exec.Command("/bin/sh", "-c", "cat \"$0\" | cat", file) })},
		{key: "local-in", name: "local pipe `cat f | sink` (stdin baseline)", run: in(func() *exec.Cmd { return exec.Command(sink[0], sink[1:]...) })},
	}
	for _, t := range ts {
		flows = append(flows, &flow{key: t.Name(), name: "rexec " + t.Name() + " (Go client): `cat f`", run: out(func(w io.Writer) error {
			code, err := t.Run(ctx, catArgv, w)
			if err == nil && code != 0 {
				err = fmt.Errorf("exit %d", code)
			}
			return err
		})})
	}
	flows = append(flows,
		&flow{key: "cli-raw-out", name: "`rexec run --raw -n -- cat f` (CLI, raw)", run: proc(cli(append([]string{"run", "--raw", "-n", "--"}, catArgv...)...))},
		&flow{key: "cli-out", name: "`rexec run -n -- cat f` (CLI, gRPC)", run: proc(cli(append([]string{"run", "-n", "--"}, catArgv...)...))},
		&flow{key: "tls-out", name: "`rexec --tls-… run -n -- cat f` (CLI, gRPC, TLS 1.3 mTLS)", run: proc(tlsCLI(append([]string{"run", "-n", "--"}, catArgv...)...))},
		&flow{key: "cli-raw-in", name: "`cat f | rexec run --raw -- sink` (CLI, raw)", run: in(cli(append([]string{"run", "--raw", "--"}, sink...)...))},
		&flow{key: "cli-in", name: "`cat f | rexec run -- sink` (CLI, gRPC)", run: in(cli(append([]string{"run", "--"}, sink...)...))},
		&flow{key: "tls-in", name: "`cat f | rexec --tls-… run -- sink` (CLI, gRPC, TLS 1.3 mTLS)", run: in(tlsCLI(append([]string{"run", "--"}, sink...)...))},
	)
	sshd, skip := e.SSHD(ctx)
	if sshd != nil {
		flows = append(flows,
			&flow{key: "ssh-out", name: "`ssh host cat f` (multiplexed, aes128-gcm)", run: proc(func() *exec.Cmd { return sshd.Command(ctx, true, catArgv...) })},
			&flow{key: "ssh-in", name: "`cat f | ssh host sink` (multiplexed, aes128-gcm)", run: in(func() *exec.Cmd { return sshd.Command(ctx, true, sink...) })},
		)
	}
	// Every flow once per round, in turn, so that a shared machine's drift
	// falls on all of them alike; the best of the rounds counts.
	const rounds = 3
	for range rounds {
		for _, f := range flows {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			v, err := f.run()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.name, err)
			}
			f.best = max(f.best, v)
		}
	}
	return throughputTable(flows, cfg.Size, skip), nil
}

// throughputTable lays the flows out, stdout first and then stdin, each
// against its direction's local pipe and ssh, with the goals.
func throughputTable(flows []*flow, size int64, sshSkip string) []Row {
	by := map[string]float64{}
	for _, f := range flows {
		by[f.key] = f.best
	}
	ratio := func(v float64, in bool) string {
		local, ssh := by["local-out"], by["ssh-out"]
		if in {
			local, ssh = by["local-in"], by["ssh-in"]
		}
		s := fmt.Sprintf("%.2f× local pipe", v/local)
		if ssh > 0 {
			s += fmt.Sprintf("; %.2f× ssh", v/ssh)
		}
		return s
	}
	// With TLS, against ssh (which always encrypts): 1.5× ssh, or 0.8× the
	// local pipe where ssh itself runs so near the pipe that 1.5× ssh would
	// be beyond it — whichever is lower.
	tlsGoal := func(r *Row, v float64, in bool) {
		local, ssh := by["local-out"], by["ssh-out"]
		if in {
			local, ssh = by["local-in"], by["ssh-in"]
		}
		if ssh == 0 {
			return
		}
		if 1.5*ssh <= 0.8*local {
			r.Goal, r.Met = "≥ 1.5× ssh", goal(v >= 1.5*ssh)
		} else {
			r.Goal, r.Met = "≥ 0.8× local pipe (1.5× ssh is beyond it)", goal(v >= 0.8*local)
		}
	}
	var rows []Row
	add := func(key string, in bool, extra func(r *Row, v float64)) {
		for _, f := range flows {
			if f.key != key {
				continue
			}
			r := Row{Name: f.name, Value: gbps(f.best), Ratio: ratio(f.best, in)}
			if extra != nil {
				extra(&r, f.best)
			}
			rows = append(rows, r)
		}
	}
	rows = append(rows, Row{Name: fmt.Sprintf("%d MiB of random bytes, best of 3 rounds; every flow once a round, in turn", size>>20)})
	add("local-out", false, nil)
	add("ssh-out", false, nil)
	add("raw socket", false, func(r *Row, v float64) {
		r.Goal, r.Met = "≥ 0.75× local pipe", goal(v >= 0.75*by["local-out"])
	})
	add("gRPC", false, nil)
	add("cli-raw-out", false, func(r *Row, v float64) {
		r.Ratio += fmt.Sprintf("; %.2f× raw Go client", v/by["raw socket"])
	})
	add("cli-out", false, func(r *Row, v float64) {
		rr := v / by["raw socket"]
		r.Ratio += fmt.Sprintf("; %.2f× raw Go client; %.2f× CLI raw", rr, v/by["cli-raw-out"])
		r.Goal, r.Met = "≥ 0.8× raw Go client", goal(rr >= 0.8)
	})
	add("tls-out", false, func(r *Row, v float64) { tlsGoal(r, v, false) })
	add("local-in", true, nil)
	add("ssh-in", true, nil)
	add("cli-raw-in", true, nil)
	add("cli-in", true, func(r *Row, v float64) {
		rr := v / by["cli-out"]
		r.Ratio += fmt.Sprintf("; %.2f× its stdout (CLI, gRPC)", rr)
		r.Goal, r.Met = "≥ 0.8× rexec's stdout", goal(rr >= 0.8)
	})
	add("tls-in", true, func(r *Row, v float64) { tlsGoal(r, v, true) })
	if sshSkip != "" {
		rows = append(rows, Row{Name: "ssh rows", Note: "skipped: " + sshSkip})
	}
	return rows
}
