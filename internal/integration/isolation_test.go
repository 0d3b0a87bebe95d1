package integration

import (
	"bytes"
	"context"
	"errors"
	"io"
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

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/bench"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/rawsock"
)

// keyTransports is transports for key: gRPC, and the raw socket (a
// connection per call, as the CLI makes).
func keyTransports(t *testing.T, srv *testenv.Server, key *interceptors.Key) []transport {
	g := srv.Client(t, key)
	return []transport{
		{"grpc", g.Run, g.Echo},
		{"raw", func(ctx context.Context, req *rexecv1.RunRequest, stdout, stderr io.Writer) (*rexecv1.Exited, error) {
			c, err := rawsock.Dial(ctx, srv.RawAddr, key)
			if err != nil {
				return nil, err
			}
			defer c.Close()
			return c.Run(ctx, req, stdout, stderr)
		}, nil},
	}
}

// codeOf is the gRPC code of err, or the raw error frame's as gRPC names it.
func codeOf(err error) codes.Code {
	var re *rawsock.Error
	if errors.As(err, &re) {
		return map[rawsock.Code]codes.Code{
			rawsock.CodeInvalidArgument: codes.InvalidArgument, rawsock.CodeFailedPrecondition: codes.FailedPrecondition,
			rawsock.CodeResourceExhausted: codes.ResourceExhausted,
		}[re.Code]
	}
	return status.Code(err)
}

func newKey(t *testing.T, id, options string) *interceptors.Key {
	t.Helper()
	k, err := interceptors.GenerateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := interceptors.ParseKeys([]byte(k.Line() + " exec,session,echo " + options))
	if err != nil {
		t.Fatal(err)
	}
	return keys[0]
}

// TestIsolationOverBothTransports: with cgroups, on gRPC and the raw socket
// alike, a command's usage comes back in exited (and in the audit line), a
// memory hog ends with OOM naming its limit and 137, a setsid escapee dies
// with its call, a request may not ask for more than its key allows, and a
// user= key's command runs as that user.
func TestIsolationOverBothTransports(t *testing.T) {
	opts := testenv.NeedCgroups(t)
	testenv.EnsureAlice(t)
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("needs perl (Debian's perl-base) for a workload that touches its memory")
	}
	alice := newKey(t, "alice", "user="+testenv.Alice+" memory=64M pids=100")
	srv := testenv.StartServer(t, testenv.Options{Raw: true, Runner: opts, ExtraKeys: []*interceptors.Key{alice}})
	ctx := context.Background()
	for _, tr := range keyTransports(t, srv, srv.Key) {
		t.Run(tr.name, func(t *testing.T) {
			ex, err := tr.run(ctx, &rexecv1.RunRequest{Shell: tenSleeps}, io.Discard, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			// 11 processes ±20% (README: on the hybrid layout a command's
			// earliest forks may be counted one short).
			u := ex.GetUsage()
			if n := u.GetPeakProcesses(); !u.GetCgroup() || n < 9 || n > 13 || u.GetPeakMemoryBytes() == 0 {
				t.Errorf("usage %v: want the cgroup's, 11 processes ±20%%, some memory", u)
			}

			// Memory a process touches (page faults: the OOM path), not
			// pipe buffers, which the kernel refuses with ENOMEM at the limit
			// (head | tail then fails by itself: "memory exhausted", exit 1).
			var stderr bytes.Buffer
			ex, err = tr.run(ctx, &rexecv1.RunRequest{Argv: []string{"perl", "-e", hog100M}, Limits: &rexecv1.Limits{MemoryBytes: 16 << 20},
				Timeout: durationpb.New(30 * time.Second)}, io.Discard, &stderr)
			if err != nil {
				t.Fatal(err)
			}
			if ex.GetReason() != rexecv1.EndReason_END_REASON_OOM || ex.GetSentSignalNumber() != 9 ||
				!strings.Contains(ex.GetMessage(), "memory limit of 16.0 MiB (memory=16M)") {
				t.Errorf("a memory hog: reason %v, sent %d, message %q; want OOM, KILL, the limit", ex.GetReason(), ex.GetSentSignalNumber(), ex.GetMessage())
			}

			var out bytes.Buffer
			if _, err := tr.run(ctx, &rexecv1.RunRequest{Shell: escapee}, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			pid, _ := strconv.Atoi(strings.TrimSpace(out.String()))
			if pid == 0 || procAlive(pid) {
				t.Errorf("the setsid escapee %q outlived its call", out.String())
			}
		})
	}
	for _, tr := range keyTransports(t, srv, alice) {
		t.Run(tr.name+"/user", func(t *testing.T) {
			var out bytes.Buffer
			ex, err := tr.run(ctx, &rexecv1.RunRequest{Shell: "id -un; pwd", Limits: &rexecv1.Limits{Pids: 10}}, &out, io.Discard)
			if err != nil || ex.GetExitCode() != 0 {
				t.Fatalf("%v %v", ex, err)
			}
			if want := testenv.Alice + "\n" + testenv.AliceHome + "\n"; out.String() != want {
				t.Errorf("stdout %q, want %q", out.String(), want)
			}
			_, err = tr.run(ctx, &rexecv1.RunRequest{Shell: "true", Limits: &rexecv1.Limits{MemoryBytes: 1 << 30}}, io.Discard, io.Discard)
			if codeOf(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "limits.memory_bytes: 1073741824 is over the key's limit, memory=64M") {
				t.Errorf("over the key's memory: %v", err)
			}
		})
	}
	audit := srv.Log.String()
	for _, want := range []string{"peak_processes=1", "user=" + testenv.Alice, "reason=oom"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log has no %s", want)
		}
	}
}

// hog100M (perl) touches 100 MiB of zeroes.
const hog100M = `my $s = ""; vec($s, 100*1024*1024-1, 8) = 1`

// tenSleeps has 11 processes at once: a shell and ten sleeps.
const tenSleeps = "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.3 & done; wait"

// escapee prints the pid of a sleep that left the command's process group
// and session, and holds nothing of its output.
const escapee = `setsid sleep 300 >/dev/null 2>&1 & echo $!`

// TestForkBombLeavesServerServing: a fork bomb held at its pids limit does
// not stop the server: echo answers and other commands run meanwhile.
func TestForkBombLeavesServerServing(t *testing.T) {
	opts := testenv.NeedCgroups(t)
	perl, err := exec.LookPath("perl")
	if err != nil {
		t.Skip("needs perl (Debian's perl-base) for a fork bomb that keeps forking when fork fails")
	}
	srv := testenv.StartServer(t, testenv.Options{Runner: opts})
	c := srv.Client(t, nil)
	ctx := context.Background()
	bomb := make(chan *rexecv1.Exited, 1)
	go func() {
		ex, _ := c.Run(ctx, &rexecv1.RunRequest{Argv: []string{perl, "-e", "fork while 1"}, Limits: &rexecv1.Limits{Pids: 32},
			Timeout: durationpb.New(4 * time.Second)}, io.Discard, io.Discard)
		bomb <- ex
	}()
	time.Sleep(time.Second)
	for i := range 5 {
		if got, err := c.Echo(ctx, "still here", false); err != nil || got != "still here" {
			t.Errorf("echo %d during the bomb: %q %v", i, got, err)
		}
		var out bytes.Buffer
		if ex, err := c.Run(ctx, &rexecv1.RunRequest{Shell: "echo ok"}, &out, io.Discard); err != nil || ex.GetExitCode() != 0 || out.String() != "ok\n" {
			t.Errorf("a command during the bomb: %v %v %q", ex, err, out.String())
		}
	}
	ex := <-bomb
	if ex.GetReason() != rexecv1.EndReason_END_REASON_TIMEOUT || ex.GetUsage().GetPeakProcesses() != 32 {
		t.Errorf("the bomb: %v, want it held at 32 processes until its timeout", ex)
	}
}

// TestKeyMaxAndLimitsWithoutCgroups (no root needed): max=N refuses a key's
// N+1st command with ResourceExhausted naming max=, on both transports,
// while other keys run; and a server without cgroups refuses a memory limit
// as FailedPrecondition rather than run the command unlimited.
func TestKeyMaxAndLimitsWithoutCgroups(t *testing.T) {
	ci := newKey(t, "ci", "max=1")
	srv := testenv.StartServer(t, testenv.Options{Raw: true, ExtraKeys: []*interceptors.Key{ci}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trs := keyTransports(t, srv, ci)
	started := make(chan struct{})
	go func() {
		var once sync.Once
		_, _ = trs[0].run(ctx, &rexecv1.RunRequest{Shell: "echo up; sleep 30"}, writerFunc(func(p []byte) (int, error) {
			once.Do(func() { close(started) })
			return len(p), nil
		}), io.Discard)
	}()
	<-started
	for _, tr := range trs {
		_, err := tr.run(context.Background(), &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard)
		if codeOf(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), `key "ci" runs 1 of its max=1`) {
			t.Errorf("%s: the key's second command: %v", tr.name, err)
		}
	}
	for _, tr := range keyTransports(t, srv, srv.Key) {
		if ex, err := tr.run(context.Background(), &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard); err != nil || ex.GetExitCode() != 0 {
			t.Errorf("%s: another key's command: %v %v", tr.name, ex, err)
		}
		_, err := tr.run(context.Background(), &rexecv1.RunRequest{Shell: "true", Limits: &rexecv1.Limits{MemoryBytes: 64 << 20}}, io.Discard, io.Discard)
		if codeOf(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "limits.memory_bytes") || !strings.Contains(err.Error(), "without cgroups") {
			t.Errorf("%s: a memory limit without cgroups: %v", tr.name, err)
		}
	}
}

// procAlive reports whether pid runs (exists and is not a zombie).
func procAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || len(b) < i+3 || b[i+2] != 'Z'
}

// TestServerKilledEscapeesDie: SIGKILL to a real rexecd with a cgroup per
// command. Its guard kills every process in its cgroups, also one that
// left its command's process group; and when the guard dies with it, the
// next rexecd kills what is left as it starts.
func TestServerKilledEscapeesDie(t *testing.T) {
	testenv.NeedCgroups(t)
	bin := binaries(t)
	ctx := context.Background()
	flags := []string{"--cgroups", "require", "--cgroup-parent", testenv.CgroupParent}
	dir := t.TempDir()
	escapeeOf := func(d *bench.Daemon, name string) int {
		file := filepath.Join(dir, name)
		_, _, done := cliRun(t, bin, d, "setsid sleep 300 >/dev/null 2>&1 & echo $! > "+file+"; echo up; sleep 300")
		t.Cleanup(func() { <-done })
		pid := readPgid(t, file)
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // should the test fail
		return pid
	}

	// The guard acts.
	d, err := bench.StartDaemon(ctx, bin, flags...)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	escapee := escapeeOf(d, "one")
	if err := syscall.Kill(d.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !waitGone(escapee, 30*time.Second) {
		t.Errorf("the setsid escapee %d outlived its SIGKILLed rexecd and its guard", escapee)
	}
	t.Logf("the guard killed the escapee %v after rexecd's SIGKILL", time.Since(start).Round(time.Millisecond))

	// The guard dies too: the next rexecd kills what is left.
	d2, err := bench.StartDaemon(ctx, bin, flags...)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Stop()
	escapee = escapeeOf(d2, "two")
	for _, pid := range testenv.ChildPIDs(d2.Pid()) {
		_ = syscall.Kill(pid, syscall.SIGKILL) // the guard, and the command's shell
	}
	if err := syscall.Kill(d2.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if !procAlive(escapee) {
		t.Fatal("the escapee died with its server and guard: nothing left for the next rexecd to do")
	}
	d3, err := bench.StartDaemon(ctx, bin, flags...)
	if err != nil {
		t.Fatal(err)
	}
	defer d3.Stop()
	start = time.Now()
	if !waitGone(escapee, 30*time.Second) {
		t.Errorf("the next rexecd left the escapee %d of a dead one running", escapee)
	}
	t.Logf("the next rexecd killed the escapee %v after it listened", time.Since(start).Round(time.Millisecond))
}

// waitGone polls until pid is no longer alive, at most within.
func waitGone(pid int, within time.Duration) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !procAlive(pid) {
			return true
		}
	}
	return false
}

// TestDetachedOOM: a detached command (rexec run -d: LIFETIME_DETACHED, its
// events through the journal) of a key with memory= that touches more than
// that ends with reason OOM, as a command of a call does: the Exited that
// ExecutionService keeps has the reason, KILL, the message naming the
// limit and the cgroup's usage (its peak at the limit); rexec wait exits 137
// saying so and prints the usage, rexec ps -a shows "oom (KILL)".
func TestDetachedOOM(t *testing.T) {
	testenv.NeedCgroups(t)
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("needs perl (Debian's perl-base) for a workload that touches its memory")
	}
	const limit = 32 << 20
	key := newKey(t, "hog", "memory=32M")
	addr, _, _ := startRexecdKey(t, nil, key, "--cgroups", "require", "--cgroup-parent", testenv.CgroupParent)
	keyFile := filepath.Join(t.TempDir(), "keys")
	writeKeys(t, keyFile, 0o600, key.Line())
	e := &cliEnv{t: t, addr: addr, keyFile: keyFile}

	out, stderr, code := e.rexec("run", "-d", "--", "perl", "-e", hog100M)
	id := strings.TrimSpace(out)
	if code != 0 || !execID.MatchString(id) {
		t.Fatalf("run -d: exit %d, stdout %q, stderr %q: want an execution id", code, out, stderr)
	}
	_, stderr, code = e.rexec("wait", "--usage", id)
	if code != 137 || !strings.Contains(stderr, "memory limit of 32.0 MiB (memory=32M)") || !strings.Contains(stderr, "rexec: usage: ") ||
		!strings.Contains(stderr, "(cgroup)") {
		t.Errorf("wait --usage: exit %d, stderr %q: want 137, the limit, the cgroup's usage", code, stderr)
	}
	if out, _, _ := e.rexec("ps", "-a"); !regexp.MustCompile(id + `\s+oom \(KILL\)`).MatchString(out) {
		t.Errorf("ps -a:\n%s", out)
	}

	c, err := client.New(addr, client.WithKey(key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ex, err := c.GetExecution(context.Background(), id, true)
	if err != nil {
		t.Fatal(err)
	}
	x := ex.GetExited()
	if ex.GetLifetime() != rexecv1.Lifetime_LIFETIME_DETACHED || x.GetReason() != rexecv1.EndReason_END_REASON_OOM || x.GetSentSignalNumber() != 9 ||
		!strings.Contains(x.GetMessage(), "memory=32M") {
		t.Errorf("exited %v (lifetime %v): want DETACHED, OOM, KILL, the limit named", x, ex.GetLifetime())
	}
	// The hog reached the limit: the cgroup's peak is at it (never above;
	// at least 80% of it), and it spent some CPU touching the pages.
	u := x.GetUsage()
	if !u.GetCgroup() || u.GetPeakMemoryBytes() < limit*8/10 || u.GetPeakMemoryBytes() > limit+(1<<20) ||
		u.GetUserCpu().AsDuration()+u.GetSystemCpu().AsDuration() <= 0 {
		t.Errorf("usage %v: want the cgroup's, a peak at the 32 MiB limit, some CPU", u)
	}
	t.Logf("usage of the detached hog: %v", u)
}
