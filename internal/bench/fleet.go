package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/tlsconfig"
)

var fleetGroup = Group{
	Name:  "fleet",
	Title: "fleet: `true` on 100 rexecd targets on loopback, mTLS, against pdsh and clush over ssh",
	Run:   fleetRows,
}

// fleetSize is the number of rexecd processes of the fleet group.
const fleetSize = 100

// fleetEnv is what the fleet groups share: a demo CA with server and
// client certificates, one key for every target, the rexec binary.
type fleetEnv struct {
	dir     string
	certs   *tlsconfig.Files
	key     *interceptors.Key
	keyFile string
	rexec   string
}

func newFleetEnv(ctx context.Context, e *Env) (*fleetEnv, error) {
	bin, err := e.Bin(ctx)
	if err != nil {
		return nil, err
	}
	dir, certs, err := e.certDir("rexec-bench-fleet-")
	if err != nil {
		return nil, err
	}
	key, err := interceptors.GenerateKey("fleet")
	if err != nil {
		return nil, err
	}
	f := &fleetEnv{dir: dir, certs: certs, key: key, keyFile: filepath.Join(dir, "keys"), rexec: filepath.Join(bin, "rexec")}
	return f, os.WriteFile(f.keyFile, []byte(key.Line()+"\n"), 0o600)
}

// serverFlags are rexecd's flags: the shared key, mTLS.
func (f *fleetEnv) serverFlags() []string {
	return []string{"--keys", f.keyFile, "--tls-cert", f.certs.ServerCert, "--tls-key", f.certs.ServerKey, "--tls-client-ca", f.certs.CACert}
}

// rexecCmd is rexec with the key and the client certificate, then args.
func (f *fleetEnv) rexecCmd(ctx context.Context, args ...string) *exec.Cmd {
	base := []string{"--key-file", f.keyFile, "--tls-ca", f.certs.CACert, "--tls-cert", f.certs.ClientCert, "--tls-key", f.certs.ClientKey}
	return exec.CommandContext(ctx, f.rexec, append(base, args...)...)
}

// hostsFile writes addrs, one a line, and returns its path.
func (f *fleetEnv) hostsFile(name string, addrs []string) (string, error) {
	path := filepath.Join(f.dir, name)
	return path, os.WriteFile(path, []byte(strings.Join(addrs, "\n")+"\n"), 0o644)
}

// fleetRun runs cmd and returns its wall time, its stderr and the CPU time
// it used (user and system); an exit status other than want is an error.
func fleetRun(cmd *exec.Cmd, want int) (time.Duration, string, time.Duration, error) {
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = nil, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		return wall, stderr.String(), 0, err
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if code != want {
		return wall, stderr.String(), cpu, fmt.Errorf("%s exited %d, want %d: %s", filepath.Base(cmd.Path), code, want, summaryOf(stderr.String()))
	}
	return wall, stderr.String(), cpu, nil
}

// summaryOf is rexec's summary lines in stderr, each cut to 200 bytes.
func summaryOf(stderr string) string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "rexec: ") {
			out = append(out, l[:min(len(l), 200)])
		}
	}
	if len(out) == 0 {
		return lastLine([]byte(stderr))
	}
	return strings.Join(out[max(0, len(out)-4):], " / ")
}

// medianOf runs op n times and returns the median wall time.
func medianOf(n int, op func() (time.Duration, error)) (time.Duration, error) {
	var s Sample
	for range n {
		d, err := op()
		if err != nil {
			return 0, err
		}
		s = append(s, d)
	}
	return s.Median(), nil
}

// blackHoles listens on n loopback ports and never accepts: the kernel
// completes connections, then nothing answers, as a hung host does.
func blackHoles(e *Env, n int) ([]string, error) {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		e.onClose(func() { l.Close() })
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

func fleetRows(ctx context.Context, e *Env) ([]Row, error) {
	f, err := newFleetEnv(ctx, e)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(e.Log, "  starting %d rexecd (mTLS)\n", fleetSize)
	daemons := make([]*Daemon, fleetSize)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i := range daemons {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := e.StartDaemon(ctx, f.serverFlags()...)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			daemons[i] = d
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	addrs := make([]string, len(daemons))
	for i, d := range daemons {
		addrs[i] = d.Addr
	}
	hosts, err := f.hostsFile("hosts", addrs)
	if err != nil {
		return nil, err
	}
	const reps = 3

	// One single-target run: the unit everything is compared with.
	single, err := medianOf(5, func() (time.Duration, error) {
		d, _, _, err := fleetRun(f.rexecCmd(ctx, "--addr", addrs[0], "run", "-n", "--", "true"), 0)
		return d, err
	})
	if err != nil {
		return nil, err
	}
	// The naive shell fan-out: one rexec process a target, all at once.
	naive, err := medianOf(reps, func() (time.Duration, error) {
		cmds := make([]*exec.Cmd, len(addrs))
		start := time.Now()
		for i, a := range addrs {
			cmds[i] = f.rexecCmd(ctx, "--addr", a, "run", "-n", "--", "true")
			if err := cmds[i].Start(); err != nil {
				return 0, err
			}
		}
		var failed error
		for _, c := range cmds {
			if err := c.Wait(); err != nil && failed == nil {
				failed = fmt.Errorf("naive fan-out: %w", err)
			}
		}
		return time.Since(start), failed
	})
	if err != nil {
		return nil, err
	}
	var summary string
	fleetWall, err := medianOf(reps, func() (time.Duration, error) {
		d, stderr, _, err := fleetRun(f.rexecCmd(ctx, "--hosts-file", hosts, "run", "--", "true"), 0)
		summary = strings.TrimSpace(stderr)
		return d, err
	})
	if err != nil {
		return nil, err
	}
	if !strings.Contains(summary, fmt.Sprintf("%d ok, 0 failed, 0 unreachable", fleetSize)) {
		return nil, fmt.Errorf("rexec -H: summary %q", summary)
	}

	// 10% black-holed: a target that answers nothing costs its slot the
	// connect timeout, and the others go on.
	const connectTimeout = 2 * time.Second
	holes, err := blackHoles(e, fleetSize/10)
	if err != nil {
		return nil, err
	}
	mixed, err := f.hostsFile("hosts-holes", append(append([]string{}, holes...), addrs[:fleetSize-len(holes)]...))
	if err != nil {
		return nil, err
	}
	holeWall, stderr, _, err := fleetRun(f.rexecCmd(ctx, "--hosts-file", mixed, "--connect-timeout", connectTimeout.String(), "run", "--", "true"), 255)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(stderr, fmt.Sprintf("%d ok, 0 failed, %d unreachable", fleetSize-len(holes), len(holes))) {
		return nil, fmt.Errorf("rexec -H with black holes: summary %q", strings.TrimSpace(stderr))
	}
	extra := holeWall - fleetWall

	rows := []Row{
		{Name: "one `rexec run -n -- true`, one target (the unit)", Value: secs(single), Ratio: "1.00×"},
		{Name: fmt.Sprintf("%d `rexec run -n -- true` processes started at once (naive fan-out)", fleetSize), Value: secs(naive),
			Ratio: fmt.Sprintf("%.1f× one", naive.Seconds()/single.Seconds())},
		{Name: fmt.Sprintf("`rexec --hosts-file (%d) run -- true`, window 64", fleetSize), Value: secs(fleetWall),
			Ratio: fmt.Sprintf("%.2f× naive, %.1f× one", fleetWall.Seconds()/naive.Seconds(), fleetWall.Seconds()/single.Seconds()),
			Goal:  "≤ 0.5× naive", Met: goal(fleetWall.Seconds() <= 0.5*naive.Seconds())},
		{Name: fmt.Sprintf("the same, %d of them black-holed, --connect-timeout %v", len(holes), connectTimeout), Value: secs(holeWall),
			Ratio: fmt.Sprintf("+%s over all answering", secs(extra)),
			Goal:  fmt.Sprintf("adds ≤ %v", connectTimeout), Met: goal(extra <= connectTimeout)},
	}

	sshd, skip := e.SSHD(ctx)
	if sshd == nil {
		rows[len(rows)-1].Note = "pdsh and clush rows skipped: " + skip
		return rows, nil
	}
	if err := ensureDebian(ctx, map[string]string{"pdsh": "/usr/bin/pdsh", "clustershell": "/usr/bin/clush"}); err != nil {
		rows[len(rows)-1].Note = "pdsh and clush rows skipped: " + err.Error()
		return rows, nil
	}
	names := fmt.Sprintf("node[001-%03d]", fleetSize)
	sshArgs := []string{"-q", "-p", fmt.Sprint(sshd.Port), "-i", filepath.Join(sshd.dir, "user"),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
		"-o", "HostName=127.0.0.1", "-o", "ControlMaster=no", "-o", "ControlPath=none", "-c", "aes128-gcm@openssh.com"}
	fmt.Fprintf(e.Log, "  pdsh -R ssh over %d host names\n", fleetSize)
	pdsh := exec.CommandContext(ctx, "pdsh", "-R", "ssh", "-S", "-f", "64", "-w", names, "true")
	pdsh.Env = append(os.Environ(), "PDSH_SSH_ARGS="+strings.Join(sshArgs, " ")+" -l%u %h")
	pdshWall, _, _, err := fleetRun(pdsh, 0)
	if err != nil {
		return rows, err
	}
	fmt.Fprintf(e.Log, "  clush over %d host names\n", fleetSize)
	clush := exec.CommandContext(ctx, "clush", "-S", "-f", "64", "-w", names, "-o", strings.Join(sshArgs, " "), "true")
	clushWall, _, _, err := fleetRun(clush, 0)
	if err != nil {
		return rows, err
	}
	speedup := pdshWall.Seconds() / fleetWall.Seconds()
	rows[2].Ratio += fmt.Sprintf("; %.0f× faster than pdsh, %.0f× than clush", speedup, clushWall.Seconds()/fleetWall.Seconds())
	rows = append(rows,
		Row{Name: fmt.Sprintf("`pdsh -R ssh -f 64` over %d host names → the loopback sshd", fleetSize), Value: secs(pdshWall),
			Ratio: fmt.Sprintf("%.0f× rexec -H", speedup), Goal: "rexec -H ≥ 40× faster", Met: goal(speedup >= 40)},
		Row{Name: fmt.Sprintf("`clush -f 64` over the same %d host names", fleetSize), Value: secs(clushWall),
			Ratio: fmt.Sprintf("%.0f× rexec -H", clushWall.Seconds()/fleetWall.Seconds()),
			Note:  "ssh: one connection a host name (HostName=127.0.0.1), sshd MaxStartups raised to 256"},
	)
	return rows, nil
}

func secs(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// ensureDebian installs the Debian packages (name → a file each installs)
// that are missing, when this process may (root).
func ensureDebian(ctx context.Context, pkgs map[string]string) error {
	var missing []string
	for pkg, file := range pkgs {
		if _, err := os.Stat(file); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s not installed, and installing needs root", strings.Join(missing, ", "))
	}
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq", "--no-install-recommends"}, missing...)} {
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"-o", "DPkg::Lock::Timeout=300"}, args...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w: %s", args[0], err, lastLine(out))
		}
	}
	return nil
}
