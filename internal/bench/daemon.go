package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rexec/rexec/client"
	"github.com/rexec/rexec/interceptors"
)

// Daemon is a real rexecd process started for a measurement.
type Daemon struct {
	Addr    string
	RawAddr string // the raw socket listener
	Key     *interceptors.Key
	KeyFile string
	cmd     *exec.Cmd
	dir     string
}

// BuildBinaries builds rexecd and rexec from this module into dir, so that
// what is measured is what users run.
func BuildBinaries(ctx context.Context, moduleRoot, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+"/", "./cmd/rexecd", "./cmd/rexec")
	cmd.Dir = moduleRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w: %s", err, out)
	}
	return nil
}

// StartDaemon starts binDir/rexecd on 127.0.0.1:0 with a fresh key and the
// extra flags, and waits until it listens.
func StartDaemon(ctx context.Context, binDir string, flags ...string) (*Daemon, error) {
	dir, err := os.MkdirTemp("", "rexec-bench-")
	if err != nil {
		return nil, err
	}
	key, err := interceptors.GenerateKey("bench")
	if err != nil {
		return nil, err
	}
	d := &Daemon{Key: key, KeyFile: filepath.Join(dir, "keys"), dir: dir}
	if err := os.WriteFile(d.KeyFile, []byte(key.Line()+"\n"), 0o600); err != nil {
		return nil, err
	}
	addrFile, rawFile := filepath.Join(dir, "addr"), filepath.Join(dir, "rawaddr")
	args := append([]string{"--listen", "127.0.0.1:0", "--keys", d.KeyFile, "--addr-file", addrFile,
		"--raw-listen", "127.0.0.1:0", "--raw-addr-file", rawFile, "--log-level", "warn",
		"--state-dir", filepath.Join(dir, "state")}, flags...)
	d.cmd = exec.Command(filepath.Join(binDir, "rexecd"), args...)
	d.cmd.Stderr = os.Stderr
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err1 := os.ReadFile(addrFile)
		r, err2 := os.ReadFile(rawFile)
		if err1 == nil && err2 == nil && len(b) > 0 && len(r) > 0 {
			d.Addr, d.RawAddr = string(b), string(r)
			return d, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	d.Stop()
	return nil, errors.New("rexecd did not start listening within 10s")
}

// StoppedCleanly reports whether Stop's SIGTERM was enough: rexecd exited
// 0 by itself, within 15 s.
func (d *Daemon) StoppedCleanly() bool {
	return d.cmd.ProcessState != nil && d.cmd.ProcessState.Success()
}

// Pid is the server's pid.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Client returns a client of the daemon signing with its key.
func (d *Daemon) Client(opts ...client.Option) (*client.Client, error) {
	return client.New(d.Addr, append([]client.Option{client.WithKey(d.Key)}, opts...)...)
}

// Stop stops the daemon (SIGTERM, then SIGKILL after 15 s) and removes
// its files.
func (d *Daemon) Stop() {
	if d.cmd.Process != nil && d.cmd.ProcessState == nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = d.cmd.Process.Kill()
			<-done
		}
	}
	os.RemoveAll(d.dir)
}

// sampleRSS reads pid's resident set every 50 ms until the returned stop
// is called, and stop returns the highest it saw.
func sampleRSS(pid int) (stop func() int64) {
	var peak int64
	done, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if rss, _, err := Memory(pid); err == nil {
					peak = max(peak, rss)
				}
			}
		}
	}()
	return func() int64 {
		close(done)
		<-sampled
		return peak
	}
}

// Memory reads a process's resident set now and its peak (VmRSS, VmHWM), in bytes.
func Memory(pid int) (rss, peak int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			peak = kb << 10
		}
	}
	return rss, peak, sc.Err()
}

// OpenFDs counts a process's open file descriptors.
func OpenFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}
