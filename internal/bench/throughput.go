package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"time"
)

var throughputGroup = Group{
	Name:  "throughput",
	Title: "throughput: random bytes through stdout, sha256 checked",
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

func throughputRows(ctx context.Context, e *Env) ([]Row, error) {
	cfg := e.Cfg
	ts, err := e.Transports(ctx)
	if err != nil {
		return nil, err
	}
	d, _ := e.Daemon(ctx)
	file, sum, err := e.File()
	if err != nil {
		return nil, err
	}
	measure := func(run func(w io.Writer) error) (float64, error) { return measureStream(cfg.Size, sum, run) }
	proc := func(cmd *exec.Cmd) func(w io.Writer) error {
		return func(w io.Writer) error {
			cmd.Stdout = w
			return cmd.Run()
		}
	}
	const reps = 3
	size := fmt.Sprintf(" (%d MiB)", cfg.Size>>20)
	local, err := bestOf(reps, func() (float64, error) {
		return measure(proc(exec.Command("/bin/sh", "-c", "cat "+file+" | cat")))
	})
	if err != nil {
		return nil, err
	}
	rows := []Row{{Name: "local `cat | cat` (baseline)" + size, Value: gbps(local), Ratio: "1.00×"}}
	var ssh float64
	if sshd, _ := e.SSHD(ctx); sshd != nil {
		if ssh, err = bestOf(reps, func() (float64, error) {
			return measure(proc(sshd.Command(ctx, true, "cat", file)))
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
			return measure(func(w io.Writer) error {
				code, err := t.Run(ctx, []string{"cat", file}, w)
				if err == nil && code != 0 {
					err = fmt.Errorf("exit %d", code)
				}
				return err
			})
		})
		if err != nil {
			return rows, err
		}
		r := Row{Name: "rexec " + t.Name() + " (Go client)", Value: gbps(v), Ratio: ratio(v)}
		if ssh > 0 {
			want := map[bool]float64{true: 1.0, false: 1.15}[i == 0]
			r.Goal, r.Met = fmt.Sprintf("≥ %.2f× ssh", want), goal(v >= want*ssh)
		}
		rows = append(rows, r)
	}
	cli, err := bestOf(reps, func() (float64, error) {
		return measure(proc(exec.Command(filepath.Join(e.bin, "rexec"), "--addr", d.Addr,
			"--key-file", d.KeyFile, "run", "--", "cat", file)))
	})
	if err != nil {
		return rows, err
	}
	rows = append(rows, Row{Name: "`rexec run -- cat` (CLI process, gRPC)", Value: gbps(cli), Ratio: ratio(cli)})
	if ssh > 0 {
		rows = append(rows, Row{Name: "`ssh 127.0.0.1 cat` (multiplexed, aes128-gcm)", Value: gbps(ssh), Ratio: ratio(ssh)})
	}
	return rows, nil
}
