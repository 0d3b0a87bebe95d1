package integration

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
)

// fleetRoles is the command of the fleet CLI tests: what it does depends on
// the FLEET_ROLE each rexecd process was started with.
const fleetRoles = `case "$FLEET_ROLE" in
ok) echo same ;;
fail3) echo same; echo bad >&2; exit 3 ;;
sig) echo same; kill -KILL $$ ;;
esac`

// fleetDaemons starts one real rexecd process per role, all with one key
// (in keyFile), and returns their addresses by role.
func fleetDaemons(t *testing.T, keyFile string, roles ...string) map[string]string {
	t.Helper()
	bin := binaries(t)
	addrs := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, role := range roles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir := t.TempDir()
			addrFile := filepath.Join(dir, "addr")
			log := &testenv.SyncBuffer{}
			// Commands start with a login's environment, none of rexecd's:
			// --env-from-daemon passes the role on purpose.
			cmd := exec.Command(filepath.Join(bin, "rexecd"), "--listen", "127.0.0.1:0", "--addr-file", addrFile, "--keys", keyFile,
				"--kill-grace", "500ms", "--shutdown-grace", "1s", "--env-from-daemon", "FLEET_ROLE", "--state-dir", filepath.Join(dir, "state"))
			cmd.Env = append(os.Environ(), "FLEET_ROLE="+role)
			cmd.Stderr = log
			cmd.WaitDelay = 5 * time.Second
			if err := cmd.Start(); err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() {
				cmd.Process.Signal(syscall.SIGTERM)
				cmd.Wait()
				if t.Failed() {
					t.Logf("rexecd %s log:\n%s", role, log.String())
				}
			})
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if b, _ := os.ReadFile(addrFile); len(b) > 0 {
					mu.Lock()
					addrs[role] = strings.TrimSpace(string(b))
					mu.Unlock()
					return
				}
			}
			t.Errorf("rexecd %s did not listen", role)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return addrs
}

func fleetKey(t *testing.T) string {
	t.Helper()
	key, err := interceptors.GenerateKey("fleet")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "keys")
	writeKeys(t, path, 0o600, key.Line())
	return path
}

// rexecCLI runs the real rexec binary and returns its stdout, stderr and
// exit status.
func rexecCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binaries(t), "rexec"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	empty := filepath.Join(t.TempDir(), "config")
	os.WriteFile(empty, nil, 0o644)
	cmd.Env = append(os.Environ(), "REXEC_CONFIG="+empty, "REXEC_ADDR=", "REXEC_KEY_FILE=")
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), 0
}

// TestFleetCLIExitStatus: `rexec -H` over real rexecd processes, some
// unreachable or black-holed or holding another key: the exit status is 0
// when all exited 0, 255 when any could not run the command, else the
// highest status; the summary names the targets by class.
func TestFleetCLIExitStatus(t *testing.T) {
	t.Parallel()
	keys := fleetKey(t)
	addr := fleetDaemons(t, keys, "ok", "fail3", "sig")
	addr["stranger"] = fleetDaemons(t, fleetKey(t), "ok")["ok"] // another key
	addr["closed"] = testenv.ClosedPort(t)
	addr["blackhole"] = testenv.BlackHole(t)
	cases := []struct {
		targets []string
		status  int
		summary []string
	}{
		{[]string{"ok"}, 0, nil}, // one target: as --addr, no summary
		{[]string{"fail3"}, 3, nil},
		{[]string{"ok", "ok"}, 0, nil}, // one address, once: one target
		{[]string{"ok", "fail3"}, 3, []string{"rexec: 1 ok, 1 failed, 0 unreachable", "rexec: failed: " + addr["fail3"]}},
		{[]string{"ok", "fail3", "sig"}, 137, []string{"rexec: 1 ok, 2 failed, 0 unreachable"}},
		{[]string{"ok", "fail3", "closed"}, 255, []string{"rexec: 1 ok, 1 failed, 1 unreachable", "rexec: unreachable: " + addr["closed"]}},
		{[]string{"ok", "blackhole"}, 255, []string{"rexec: 1 ok, 0 failed, 1 unreachable", "rexec: unreachable (timeout): " + addr["blackhole"]}},
		{[]string{"ok", "sig", "stranger"}, 255, []string{"rexec: 1 ok, 1 failed, 1 unreachable", "rexec: unreachable (auth): " + addr["stranger"]}},
	}
	for _, c := range cases {
		var hosts []string
		for _, n := range c.targets {
			hosts = append(hosts, addr[n])
		}
		_, stderr, status := rexecCLI(t, "--key-file", keys, "--connect-timeout", "1s", "-H", strings.Join(hosts, ","), "run", "--", fleetRoles)
		if status != c.status {
			t.Errorf("%v: exit %d, want %d\n%s", c.targets, status, c.status, stderr)
		}
		for _, line := range c.summary {
			if !strings.Contains(stderr, line) {
				t.Errorf("%v: stderr does not say %q:\n%s", c.targets, line, stderr)
			}
		}
		if c.summary == nil && strings.Contains(stderr, " ok, ") {
			t.Errorf("%v: a summary for one target:\n%s", c.targets, stderr)
		}
	}
}

// TestFleetCLIOutputDir: --output-dir's files equal, byte for byte (sha256),
// what single-target `rexec run -n` prints for each target: stdout, stderr
// with rexec's own lines, and the exit status — an unreachable target
// included.
func TestFleetCLIOutputDir(t *testing.T) {
	t.Parallel()
	keys := fleetKey(t)
	addr := fleetDaemons(t, keys, "ok", "fail3", "sig")
	addr["closed"] = testenv.ClosedPort(t)
	cmd := "seq 1 30000; seq 1 2000 >&2; printf 'no newline'; " + fleetRoles
	dir := filepath.Join(t.TempDir(), "out")
	hosts := []string{addr["ok"], addr["fail3"], addr["sig"], addr["closed"]}
	_, _, status := rexecCLI(t, "--key-file", keys, "-H", strings.Join(hosts, ","), "run", "--output-dir", dir, "--", cmd)
	if status != 255 {
		t.Errorf("exit %d, want 255 (one unreachable)", status)
	}
	for _, h := range hosts {
		stdout, stderr, single := rexecCLI(t, "--key-file", keys, "--addr", h, "run", "-n", "--", cmd)
		for ext, want := range map[string]string{".out": stdout, ".err": stderr, ".status": fmt.Sprintf("%d\n", single)} {
			got, err := os.ReadFile(filepath.Join(dir, h+ext))
			if err != nil {
				t.Fatal(err)
			}
			if sha256.Sum256(got) != sha256.Sum256([]byte(want)) {
				t.Errorf("%s%s: %d bytes, %.80q; the single run: %d bytes, %.80q", h, ext, len(got), got, len(want), want)
			}
		}
	}
}

// TestFleetCLIInterrupt: Ctrl-C (SIGINT) to `rexec -H` ends every call;
// each rexecd kills its command's process group, none is left; rexec prints
// the partial summary and exits 130.
func TestFleetCLIInterrupt(t *testing.T) {
	t.Parallel()
	keys := fleetKey(t)
	addr := fleetDaemons(t, keys, "a", "b", "c", "d", "e")
	var hosts []string
	for _, a := range addr {
		hosts = append(hosts, a)
	}
	pids := filepath.Join(t.TempDir(), "pids")
	cmd := exec.Command(filepath.Join(binaries(t), "rexec"), "--key-file", keys, "-H", strings.Join(hosts, ","), "run", "--",
		"echo $$ >> "+pids+"; sleep 300 & sleep 300")
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var groups []int
	waitFor(t, "every command to start", func() bool {
		b, _ := os.ReadFile(pids)
		groups = nil
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(f)
			groups = append(groups, n)
		}
		return len(groups) == len(hosts)
	})
	for _, g := range groups {
		if len(testenv.GroupPIDs(g)) == 0 {
			t.Fatalf("group %d is not running", g)
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("rexec exited %v, want 130", err)
	}
	if !regexp.MustCompile(`rexec: interrupted: 0 ok, 0 failed, 0 unreachable, 5 not finished`).MatchString(stderr.String()) {
		t.Errorf("stderr %q, want the partial summary", stderr.String())
	}
	for _, g := range groups {
		testenv.WaitGroupGone(t, g, 10*time.Second)
	}
}

// TestFleetCLIConfig: a config file's named hosts (each with its own key
// file) and @groups, and a hosts file; -b gathers; --failed-file lists what
// did not exit 0, ready for --hosts-file.
func TestFleetCLIConfig(t *testing.T) {
	t.Parallel()
	keysA, keysB := fleetKey(t), fleetKey(t)
	a := fleetDaemons(t, keysA, "ok", "fail3")
	b := fleetDaemons(t, keysB, "ok")
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	os.WriteFile(config, []byte(fmt.Sprintf(`
[hosts.web1]
address = %q
key_file = %q
[hosts.web2]
address = %q
key_file = %q
[hosts.db1]
address = %q
key_file = %q
[groups]
web = ["web[1-2]"]
all = ["@web", "db1"]
`, a["ok"], keysA, b["ok"], keysB, a["fail3"], keysA)), 0o644)
	run := func(args ...string) (string, string, int) {
		cmd := exec.Command(filepath.Join(binaries(t), "rexec"), args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Env = append(os.Environ(), "REXEC_CONFIG="+config, "REXEC_KEY_FILE=", "HOME="+dir, "XDG_CONFIG_HOME=")
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
	}
	failed := filepath.Join(dir, "failed")
	stdout, stderr, status := run("-H", "@all", "run", "-b", "--failed-file", failed, "--", fleetRoles)
	wantOut := "----------------\nweb[1-2] (2)\n----------------\nsame\n"
	if status != 3 || !strings.HasPrefix(stdout, "------------\nweb[1-2] (2)\n------------\nsame\n") ||
		!strings.Contains(stdout, "db1 (1): exit 3\n") {
		t.Errorf("exit %d, stdout\n%s\nwant %d and blocks like\n%s\nstderr %s", status, stdout, 3, wantOut, stderr)
	}
	if got, _ := os.ReadFile(failed); string(got) != "db1\n" {
		t.Errorf("--failed-file holds %q", got)
	}
	// The failed file is a hosts file; one target behaves as --addr.
	stdout, stderr, status = run("--hosts-file", failed, "run", "--", fleetRoles)
	if status != 3 || stdout != "same\n" || stderr != "bad\n" {
		t.Errorf("--hosts-file of one: exit %d, stdout %q, stderr %q; want 3, same, bad, no prefix", status, stdout, stderr)
	}
	// A named host alone takes its own key and streams stdin, as --addr.
	cmd := exec.Command(filepath.Join(binaries(t), "rexec"), "-H", "web2", "run", "--", "tr a-z A-Z")
	cmd.Env = append(os.Environ(), "REXEC_CONFIG="+config, "REXEC_KEY_FILE=", "HOME="+dir)
	cmd.Stdin = strings.NewReader("piped\n")
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "PIPED\n" {
		t.Errorf("-H web2 with stdin: %v %q", err, out)
	}
	// With several targets, -t and --raw are refused, and stdin is not read.
	for _, flag := range []string{"-t", "--raw"} {
		_, stderr, status := run("-H", "@web", "run", flag, "--", "true")
		if status != 255 || !strings.Contains(stderr, "needs one target") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%s with two targets: exit %d, %q", flag, status, stderr)
		}
	}
	cmd = exec.Command(filepath.Join(binaries(t), "rexec"), "-H", "@web", "run", "--", "cat; echo done")
	cmd.Env = append(os.Environ(), "REXEC_CONFIG="+config, "REXEC_KEY_FILE=", "HOME="+dir)
	cmd.Stdin = strings.NewReader("not for you\n")
	out, err := cmd.Output()
	if err != nil || strings.Contains(string(out), "not for you") || strings.Count(string(out), ": done\n") != 2 {
		t.Errorf("stdin with two targets: %v %q, want it unread", err, out)
	}
	// An unknown group is one line and 255.
	if _, stderr, status := run("-H", "@nope", "run", "--", "true"); status != 255 || !strings.Contains(stderr, "no group @nope") {
		t.Errorf("-H @nope: %d %q", status, stderr)
	}

}
