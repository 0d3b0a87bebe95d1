package runner_test

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/runner"
)

// envOf parses `env -0`'s output.
func envOf(out string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(out, "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// TestLoginEnvironment: a command starts as a login would, in its user's
// home with HOME, USER, LOGNAME, SHELL, PATH and MAIL, and none of the
// server's own environment; the request's entries override, and
// EnvFromDaemon passes named variables on purpose.
func TestLoginEnvironment(t *testing.T) {
	t.Parallel()
	me, err := user.Current()
	if err != nil {
		t.Skip("no passwd entry for this process's user:", err)
	}
	r := runner.New(fast())
	rec, res := run(t, r, context.Background(), runner.Spec{Shell: "env -0; printf '\\0PWD_IS=%s' \"$(pwd)\""})
	if res.ExitCode != 0 {
		t.Fatalf("exit %d: %s", res.ExitCode, rec.stderr.String())
	}
	env := envOf(rec.stdout.String())
	// rexecd's own user's home is its $HOME, as systemd sets it.
	home := os.Getenv("HOME")
	if fi, err := os.Stat(home); err != nil || !fi.IsDir() {
		home = "/"
	}
	want := map[string]string{"HOME": os.Getenv("HOME"), "USER": me.Username, "LOGNAME": me.Username, "MAIL": "/var/mail/" + me.Username, "PWD_IS": home}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	if !strings.HasPrefix(env["PATH"], "/usr/local/") || env["SHELL"] == "" {
		t.Errorf("PATH=%q SHELL=%q: want the login defaults", env["PATH"], env["SHELL"])
	}
	if _, ok := env[daemonSecret]; ok {
		t.Errorf("the command sees the server's %s", daemonSecret)
	}
	for k := range env {
		if !slices.Contains([]string{"HOME", "USER", "LOGNAME", "SHELL", "PATH", "MAIL", "PWD", "SHLVL", "_", "PWD_IS"}, k) {
			t.Errorf("the command sees %s, which a login does not set", k)
		}
	}

	// The request's entries override the login's; EnvFromDaemon passes
	// a variable of the server's on purpose.
	o := fast()
	o.EnvFromDaemon = []string{daemonSecret, "REXEC_NOT_SET_ANYWHERE"}
	r = runner.New(o)
	rec, _ = run(t, r, context.Background(), runner.Spec{Shell: "env -0", Env: []string{"HOME=/tmp", "LANG=C.UTF-8"}})
	env = envOf(rec.stdout.String())
	if env["HOME"] != "/tmp" || env["LANG"] != "C.UTF-8" || env[daemonSecret] != "s3cret" {
		t.Errorf("HOME=%q LANG=%q %s=%q: want the request's, and the passed variable", env["HOME"], env["LANG"], daemonSecret, env[daemonSecret])
	}
	if _, ok := env["REXEC_NOT_SET_ANYWHERE"]; ok {
		t.Error("a variable the server does not have was passed as empty")
	}
}

// TestRlimits: nofile= and fsize= hold from the command's first
// instruction, soft and hard, in shell and argv form, with or without
// cgroups.
func TestRlimits(t *testing.T) {
	t.Parallel()
	r := runner.New(fast())
	l := runner.Limits{NoFile: 64, FSize: 1 << 20}
	for _, spec := range []runner.Spec{
		{Shell: "ulimit -n; ulimit -Hn; ulimit -f", Limits: l},
		{Argv: []string{"sh", "-c", "ulimit -n; ulimit -Hn; ulimit -f"}, Limits: l},
	} {
		rec, res := run(t, r, context.Background(), spec)
		if res.ExitCode != 0 || rec.stdout.String() != "64\n64\n2048\n" {
			t.Errorf("%v: exit %d, stdout %q, want 64 64 2048 (512-byte blocks)", spec.Describe(), res.ExitCode, rec.stdout.String())
		}
	}
	file := filepath.Join(t.TempDir(), "big")
	_, res := run(t, r, context.Background(), runner.Spec{Argv: []string{"head", "-c", "3000000", "/dev/zero"}, Limits: l})
	if res.ExitCode != 0 {
		t.Errorf("writing to a pipe is not limited by fsize: exit %d", res.ExitCode)
	}
	_, res = run(t, r, context.Background(), runner.Spec{Shell: "head -c 3000000 /dev/zero > " + file, Limits: l})
	fi, err := os.Stat(file)
	if err != nil || fi.Size() != 1<<20 {
		t.Errorf("file size %v (%v), want exactly 1 MiB", fi, err)
	}
	if res.ExitCode != 128+25 {
		t.Errorf("exit %d, want 153: the shell reports its child killed by SIGXFSZ", res.ExitCode)
	}
	// argv[0] not found is still 127 with the limits' shell in front.
	rec, res := run(t, r, context.Background(), runner.Spec{Argv: []string{"rexec-no-such-command"}, Limits: l})
	if res.ExitCode != 127 || !strings.Contains(rec.stderr.String(), "not found") {
		t.Errorf("exit %d, stderr %q, want 127 and not found", res.ExitCode, rec.stderr.String())
	}
}

// TestCgroupLimitsRefusedWithout: a runner without cgroups refuses a
// memory, pids or cpu limit as a precondition naming the field, rather
// than run the command unlimited.
func TestCgroupLimitsRefusedWithout(t *testing.T) {
	t.Parallel()
	r := runner.New(fast())
	for field, l := range map[string]runner.Limits{
		"limits.memory_bytes": {Memory: 64 << 20},
		"limits.pids":         {Pids: 10},
		"limits.milli_cpu":    {MilliCPU: 500},
	} {
		_, err := r.Start(context.Background(), runner.Spec{Shell: "true", Limits: l})
		var fe *runner.FieldError
		if !errors.As(err, &fe) || fe.Field != field || !fe.Precondition || !strings.Contains(fe.Problem, "without cgroups") {
			t.Errorf("%s: err %v, want a precondition naming it", field, err)
		}
	}
	if r.Running() != 0 {
		t.Error("a refused start holds a slot")
	}
}

// TestOwnerMax: max=N bounds one key's commands beside the server's
// bound; another key is not affected, and a slot comes back at the end.
func TestOwnerMax(t *testing.T) {
	t.Parallel()
	r := runner.New(fast())
	ctx, cancel := context.WithCancel(context.Background())
	p, err := r.Start(ctx, runner.Spec{Shell: "sleep 30", Owner: "ci", OwnerMax: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Start(context.Background(), runner.Spec{Shell: "true", Owner: "ci", OwnerMax: 1})
	if !errors.Is(err, runner.ErrTooManyForOwner) || !strings.Contains(err.Error(), `key "ci" runs 1 of its max=1`) {
		t.Errorf("second command of the key: %v", err)
	}
	if _, res := run(t, r, context.Background(), runner.Spec{Shell: "true", Owner: "ops", OwnerMax: 1}); res.ExitCode != 0 {
		t.Error("another key's command failed")
	}
	cancel()
	if _, err := p.Wait(&discardSink{}); err != nil {
		t.Fatal(err)
	}
	if _, res := run(t, r, context.Background(), runner.Spec{Shell: "true", Owner: "ci", OwnerMax: 1}); res.ExitCode != 0 {
		t.Error("the key's slot did not come back")
	}
	// A command that could not be executed gives its slot back too.
	run(t, r, context.Background(), runner.Spec{Argv: []string{"rexec-no-such-command"}, Owner: "ci", OwnerMax: 1})
	run(t, r, context.Background(), runner.Spec{Shell: "true", Owner: "ci", OwnerMax: 1})
}

// TestUserAccount: a command of a user= spec runs with that user's uid,
// gid and groups, its login environment and home, and cannot read what
// the user cannot; with a terminal, the user owns it.
func TestUserAccount(t *testing.T) {
	t.Parallel()
	u := testenv.EnsureAlice(t)
	team, err := user.LookupGroup(testenv.AliceGroup)
	if err != nil {
		t.Fatal(err)
	}
	r := runner.New(fast())
	rec, res := run(t, r, context.Background(), runner.Spec{User: testenv.Alice,
		Shell: `id -u; id -g; id -G; echo "$HOME $USER $LOGNAME $SHELL"; pwd; cat /etc/shadow`})
	lines := strings.Split(rec.stdout.String(), "\n")
	if len(lines) < 5 {
		t.Fatalf("stdout %q stderr %q", rec.stdout.String(), rec.stderr.String())
	}
	if lines[0] != u.Uid || lines[1] != u.Gid || !slices.Contains(strings.Fields(lines[2]), team.Gid) {
		t.Errorf("uid %s gid %s groups %s; want %s %s and %s among the groups", lines[0], lines[1], lines[2], u.Uid, u.Gid, team.Gid)
	}
	if want := u.HomeDir + " " + testenv.Alice + " " + testenv.Alice + " /bin/sh"; lines[3] != want {
		t.Errorf("login variables %q, want %q", lines[3], want)
	}
	if lines[4] != u.HomeDir {
		t.Errorf("started in %q, want the user's home %q", lines[4], u.HomeDir)
	}
	if res.ExitCode == 0 || !strings.Contains(rec.stderr.String(), "Permission denied") {
		t.Errorf("read /etc/shadow as %s: exit %d, stderr %q", testenv.Alice, res.ExitCode, rec.stderr.String())
	}

	// With a terminal: the user owns it, as sshd arranges.
	rec, _ = run(t, r, context.Background(), runner.Spec{User: testenv.Alice, Shell: `stat -c %U "$(tty)"`, TTY: &runner.TTY{Rows: 24, Cols: 80}})
	if got := strings.TrimSpace(rec.stdout.String()); got != testenv.Alice {
		t.Errorf("the terminal belongs to %q, want %s", got, testenv.Alice)
	}

	// A user the host does not have: a precondition, nothing started.
	_, err = r.Start(context.Background(), runner.Spec{User: "rexec-no-such-user", Shell: "true"})
	var fe *runner.FieldError
	if !errors.As(err, &fe) || fe.Field != "user" || !fe.Precondition {
		t.Errorf("unknown user: %v", err)
	}
	if r.Running() != 0 {
		t.Error("a refused start holds a slot")
	}
}

// TestUserAccountInCgroup: a user's command in a cgroup with limits; the
// cgroup's files stay root's, so the command cannot leave its cgroup.
func TestUserAccountInCgroup(t *testing.T) {
	t.Parallel()
	testenv.EnsureAlice(t)
	r := cgroupRunner(t, fast())
	rec, res := run(t, r, context.Background(), runner.Spec{User: testenv.Alice, Limits: runner.Limits{Pids: 50, Memory: 64 << 20},
		Shell: `cg=$(sed -n 's/^0:://p' /proc/self/cgroup); d=/sys/fs/cgroup$cg; [ -d /sys/fs/cgroup/unified ] && d=/sys/fs/cgroup/unified$cg
(echo $$ > "$d/../cgroup.procs") 2>/dev/null || echo refused; id -un`,
		Timeout: 10 * time.Second})
	if res.ExitCode != 0 || !strings.Contains(rec.stdout.String(), "refused") || !strings.HasSuffix(rec.stdout.String(), testenv.Alice+"\n") {
		t.Errorf("exit %d stdout %q stderr %q", res.ExitCode, rec.stdout.String(), rec.stderr.String())
	}
}
