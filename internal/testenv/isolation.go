package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rexec/rexec/runner"
)

// CgroupParent is the cgroup parent of tests' runners: relative, so under
// the test process's own cgroup in every hierarchy.
const CgroupParent = "rexec-test"

// NeedCgroups skips t, saying why, where commands cannot get cgroups of
// their own: not root, or no cgroup v2 hierarchy (pure or hybrid). It
// returns runner options with cgroups required, under CgroupParent.
func NeedCgroups(t testing.TB) runner.Options {
	t.Helper()
	if why := CgroupsHere(); why != "" {
		t.Skip(why)
	}
	return runner.Options{Cgroups: runner.CgroupsRequire, CgroupParent: CgroupParent}
}

// Alice is the unprivileged user the isolation tests run commands as: a
// login with a home directory and a supplementary group, made by
// EnsureAlice with the host's useradd.
const (
	Alice      = "rexec-alice"
	AliceGroup = "rexec-team"
	AliceHome  = "/home/rexec-alice"
)

// EnsureAlice makes user Alice (home AliceHome, shell /bin/sh, member of
// AliceGroup) unless the host has her, and returns her. It skips t where
// users cannot be made: not root, no useradd.
func EnsureAlice(t testing.TB) *user.User {
	t.Helper()
	u, skip, err := MakeAlice()
	if skip != "" {
		t.Skip(skip)
	}
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// MakeAlice is EnsureAlice without a test: it returns why it cannot make
// her (skip), or what failed. Tests of several packages run at once, so it
// holds a lock while it looks and makes.
func MakeAlice() (u *user.User, skip string, err error) {
	if os.Geteuid() != 0 {
		return nil, "needs root: runs commands as another user, who is made with useradd", nil
	}
	if u, err := user.Lookup(Alice); err == nil {
		return u, "", nil
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		return nil, "needs useradd (Debian's passwd package) to make the test user " + Alice, nil
	}
	lock, err := os.OpenFile(os.TempDir()+"/rexec-testuser.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, "", err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, "", err
	}
	if u, err := user.Lookup(Alice); err == nil {
		return u, "", nil
	}
	if _, err := user.LookupGroup(AliceGroup); err != nil {
		if out, err := exec.Command("groupadd", AliceGroup).CombinedOutput(); err != nil {
			return nil, "", fmt.Errorf("groupadd %s: %v: %s", AliceGroup, err, out)
		}
	}
	out, err := exec.Command("useradd", "--create-home", "--home-dir", AliceHome, "--shell", "/bin/sh",
		"--groups", AliceGroup, Alice).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "already exists") {
		return nil, "", fmt.Errorf("useradd %s: %v: %s", Alice, err, out)
	}
	u, err = user.Lookup(Alice)
	if err != nil {
		return nil, "", fmt.Errorf("user %s after useradd: %v", Alice, err)
	}
	return u, "", nil
}

// CgroupsHere says why commands cannot get cgroups of their own on this
// host ("" when they can): not root, or no cgroup v2 hierarchy.
func CgroupsHere() string {
	if os.Geteuid() != 0 {
		return "needs root: only root (or a delegated cgroup) may create cgroups; run the tests as root to check isolation"
	}
	var st unix.Statfs_t
	v2 := unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC ||
		unix.Statfs("/sys/fs/cgroup/unified", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
	if !v2 {
		return "needs a cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified; this host has none"
	}
	return ""
}

// CgroupOf is the cgroup of pid in the hierarchy of controller ("" for
// the v2 one, "memory", "pids", ...), from /proc/PID/cgroup.
func CgroupOf(pid int, controller string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		_, rest, _ := strings.Cut(strings.TrimSpace(line), ":")
		ctls, path, _ := strings.Cut(rest, ":")
		for _, c := range strings.Split(ctls, ",") {
			if c == controller {
				return path
			}
		}
	}
	return ""
}
