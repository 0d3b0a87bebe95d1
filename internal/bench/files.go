package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rexec/rexec/client"
	"github.com/rexec/rexec/internal/tlsconfig"
)

var filesGroup = Group{
	Name:  "files",
	Title: "files: `rexec cp` of random bytes with mTLS, against `cp` + `sync`, scp and sftp, one filesystem",
	Run:   filesRows,
}

// filesEnv is what the files rows share: a daemon with mTLS, the client's
// certificate files, and a directory for the copies on the file's
// filesystem.
type filesEnv struct {
	e     *Env
	d     *Daemon
	certs *tlsconfig.Files
	dir   string
	src   string
	sum   []byte
	size  int64
}

func (f *filesEnv) rexec(ctx context.Context, args ...string) *exec.Cmd {
	base := []string{"--addr", f.d.Addr, "--key-file", f.d.KeyFile,
		"--tls-ca", f.certs.CACert, "--tls-cert", f.certs.ClientCert, "--tls-key", f.certs.ClientKey}
	return exec.CommandContext(ctx, filepath.Join(f.e.bin, "rexec"), append(base, args...)...)
}

// timeCopy runs one copy to dst (removed first), checks dst's size and
// sha256 afterwards (not timed), and returns bytes per second.
func (f *filesEnv) timeCopy(dst string, run func() error) (float64, error) {
	os.Remove(dst)
	start := time.Now()
	if err := run(); err != nil {
		return 0, err
	}
	el := time.Since(start)
	if err := checkFile(dst, f.size, f.sum); err != nil {
		return 0, err
	}
	os.Remove(dst)
	return float64(f.size) / el.Seconds(), nil
}

func checkFile(p string, size int64, want []byte) error {
	fh, err := os.Open(p)
	if err != nil {
		return err
	}
	defer fh.Close()
	h := sha256.New()
	n, err := io.Copy(h, fh)
	if err != nil {
		return err
	}
	if n != size || !bytes.Equal(h.Sum(nil), want) {
		return fmt.Errorf("integrity: %s has %d bytes with another sha256", p, n)
	}
	return nil
}

func runCmd(cmd *exec.Cmd) error {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args[:min(3, len(cmd.Args))], " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func filesRows(ctx context.Context, e *Env) ([]Row, error) {
	src, sum, err := e.File()
	if err != nil {
		return nil, err
	}
	if _, err := e.Bin(ctx); err != nil {
		return nil, err
	}
	dir, certs, err := e.certDir("rexec-bench-files-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir) // its copies are large: gone before the next group, not at the run's end
	// The daemon's partial uploads on the file's filesystem too (a key
	// without a root keeps them in --state-dir).
	tlsFlags := []string{"--tls-cert", certs.ServerCert, "--tls-key", certs.ServerKey, "--tls-client-ca", certs.CACert,
		"--state-dir", filepath.Join(dir, "state")}
	d, err := e.StartDaemon(ctx, tlsFlags...)
	if err != nil {
		return nil, err
	}
	f := &filesEnv{e: e, d: d, certs: certs, dir: dir, src: src, sum: sum, size: e.Cfg.Size}
	fsName := filesystemOf(dir)
	const reps = 3
	dst := filepath.Join(dir, "copy")

	// Every way of copying, each rep in turn, so that a shared machine's
	// load falls on all of them alike; the best of reps counts.
	type way struct {
		name string
		run  func() error
		best float64
	}
	sftp := func(sshd *SSHD, batch string) error {
		cmd := sshd.FileCommand(ctx, "sftp", "-b", "-", "127.0.0.1")
		cmd.Stdin = strings.NewReader(batch)
		return runCmd(cmd)
	}
	ways := []*way{
		{name: "local", run: func() error {
			return runCmd(exec.CommandContext(ctx, "sh", "-c", `cp "$1" "$2" && sync "$2"`, "sh", src, dst))
		}},
		{name: "up", run: func() error { return runCmd(f.rexec(ctx, "cp", "--progress", "none", src, ":"+dst)) }},
		{name: "down", run: func() error { return runCmd(f.rexec(ctx, "cp", "--progress", "none", ":"+src, dst)) }},
	}
	sshd, skip := e.SSHD(ctx)
	if sshd != nil {
		remote := "127.0.0.1:"
		ways = append(ways,
			&way{name: "scp up", run: func() error { return runCmd(sshd.FileCommand(ctx, "scp", src, remote+dst)) }},
			&way{name: "scp down", run: func() error { return runCmd(sshd.FileCommand(ctx, "scp", remote+src, dst)) }},
			&way{name: "sftp up", run: func() error { return sftp(sshd, fmt.Sprintf("put %q %q\n", src, dst)) }},
			&way{name: "sftp down", run: func() error { return sftp(sshd, fmt.Sprintf("get %q %q\n", src, dst)) }},
		)
	}
	for range reps {
		for _, w := range ways {
			v, err := f.timeCopy(dst, w.run)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", w.name, err)
			}
			w.best = max(w.best, v)
		}
	}
	best := map[string]float64{}
	for _, w := range ways {
		best[w.name] = w.best
	}
	local, up, down := best["local"], best["up"], best["down"]
	scpUp, scpDown, sftpUp, sftpDown := best["scp up"], best["scp down"], best["sftp up"], best["sftp down"]
	size := fmt.Sprintf("%d MiB", f.size>>20)
	rows := []Row{{Name: fmt.Sprintf("local `cp` then `sync` of the copy (baseline): %s, %s", size, fsName), Value: gbps(local), Ratio: "1.00×"}}
	ratio := func(v, scp float64) string {
		s := fmt.Sprintf("%.2f× local", v/local)
		if scp > 0 {
			s += fmt.Sprintf("; %.2f× scp", v/scp)
		}
		return s
	}
	goalRow := func(name string, v, scp float64) Row {
		r := Row{Name: name, Value: gbps(v), Ratio: ratio(v, scp)}
		if scp > 0 {
			r.Goal = "≥ 1.5× scp (or ≥ 0.8× local), and ≥ 0.35× local"
			r.Met = goal((v >= 1.5*scp || v >= 0.8*local) && v >= 0.35*local)
		} else {
			r.Goal, r.Met = "≥ 0.35× local", goal(v >= 0.35*local)
		}
		return r
	}
	rows = append(rows,
		goalRow("`rexec cp FILE :DST` upload (CLI process, mTLS, sha256 both ends, fsync)", up, scpUp),
		goalRow("`rexec cp :FILE DST` download (CLI process, mTLS, sha256 both ends, fsync)", down, scpDown))
	if sshd != nil {
		rows = append(rows,
			Row{Name: "`scp FILE host:DST` upload (multiplexed, aes128-gcm; no fsync)", Value: gbps(scpUp), Ratio: ratio(scpUp, scpUp)},
			Row{Name: "`scp host:FILE DST` download", Value: gbps(scpDown), Ratio: ratio(scpDown, scpDown)},
			Row{Name: "`sftp` put (multiplexed, aes128-gcm; no fsync)", Value: gbps(sftpUp), Ratio: ratio(sftpUp, scpUp)},
			Row{Name: "`sftp` get", Value: gbps(sftpDown), Ratio: ratio(sftpDown, scpDown)},
		)
	} else {
		rows = append(rows, Row{Name: "scp and sftp", Note: "skipped: " + skip})
	}
	rss, err := f.concurrentRSS(ctx, tlsFlags)
	if err != nil {
		return rows, err
	}
	rows = append(rows, rss)
	return rows, nil
}

// concurrentRSS runs 8 transfers of the file at once against a fresh
// daemon — 4 uploads and 4 downloads, each on its own connection with mTLS —
// and returns the daemon's peak RSS.
func (f *filesEnv) concurrentRSS(ctx context.Context, tlsFlags []string) (Row, error) {
	// Its own state directory (the last flag): one rexecd holds a journal.
	flags := append(slices.Clip(tlsFlags)[:len(tlsFlags)-1], filepath.Join(f.dir, "state-rss"))
	d, err := f.e.StartDaemon(ctx, flags...)
	if err != nil {
		return Row{}, err
	}
	tlsCfg, err := tlsconfig.Client(f.certs.CACert, f.certs.ClientCert, f.certs.ClientKey)
	if err != nil {
		return Row{}, err
	}
	start, _, err := Memory(d.Pid())
	if err != nil {
		return Row{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	begin := time.Now()
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := d.Client(client.WithTLS(tlsCfg))
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close()
			p := filepath.Join(f.dir, fmt.Sprintf("conc-%d", i))
			if i%2 == 0 {
				_, err = c.Upload(ctx, f.src, p, client.TransferOptions{})
			} else {
				_, err = c.Download(ctx, f.src, p, client.TransferOptions{})
			}
			if err == nil {
				err = checkFile(p, f.size, f.sum)
			}
			os.Remove(p)
			errs[i] = err
		}()
	}
	wg.Wait()
	el := time.Since(begin)
	if err := errors.Join(errs...); err != nil {
		return Row{}, err
	}
	_, hwm, err := Memory(d.Pid())
	if err != nil {
		return Row{}, err
	}
	return Row{
		Name:  fmt.Sprintf("server RSS while 8 transfers run at once (4 up, 4 down, %d MiB each, mTLS; %.2f GB/s together)", f.size>>20, float64(8*f.size)/el.Seconds()/1e9),
		Value: fmt.Sprintf("%s peak RSS (%s at start)", mib(hwm), mib(start)),
		Goal:  "≤ 64 MiB", Met: goal(hwm <= 64<<20),
	}, nil
}

// filesystemOf names the filesystem that holds dir, from /proc/mounts:
// its type and device, as BENCHMARKS.md says where the bytes went.
func filesystemOf(dir string) string {
	fh, err := os.Open("/proc/mounts")
	if err != nil {
		return "filesystem unknown"
	}
	defer fh.Close()
	abs, _ := filepath.EvalSymlinks(dir)
	best, name := "", "filesystem unknown"
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		mnt := f[1]
		if (abs == mnt || strings.HasPrefix(abs, strings.TrimSuffix(mnt, "/")+"/")) && len(mnt) >= len(best) {
			best, name = mnt, fmt.Sprintf("%s on %s (%s)", f[2], f[0], mnt)
		}
	}
	return name
}
