package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
)

// cliEnv is a real rexecd and the real rexec pointed at it.
type cliEnv struct {
	t       *testing.T
	addr    string
	keyFile string
	log     *testenv.SyncBuffer
	daemon  *rexecdProc
}

// startCLIEnv starts rexecd with flags and writes a key file for rexec.
func startCLIEnv(t *testing.T, flags ...string) *cliEnv {
	t.Helper()
	addr, key, d := startRexecd(t, nil, flags...)
	keyFile := filepath.Join(t.TempDir(), "keys")
	writeKeys(t, keyFile, 0o600, key.Line())
	return &cliEnv{t: t, addr: addr, keyFile: keyFile, log: d.log, daemon: d}
}

// rexec runs the rexec binary and returns its stdout, stderr and status.
func (e *cliEnv) rexec(args ...string) (string, string, int) {
	e.t.Helper()
	cmd := e.command(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("rexec %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

func (e *cliEnv) command(args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(binaries(e.t), "rexec"), append([]string{"--addr", e.addr, "--key-file", e.keyFile}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

var execID = regexp.MustCompile(`^[0-9a-f]{16}$`)

// runningID is the one running execution's id, from rexec ps.
func (e *cliEnv) runningID() string {
	e.t.Helper()
	out, stderr, code := e.rexec("ps")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 {
		e.t.Fatalf("rexec ps: exit %d, %q %q: want one running execution", code, out, stderr)
	}
	return strings.Fields(lines[1])[0]
}

// countedLines is the output of the awk program below: n numbered lines,
// with a pause every 5000 so that the command lasts a while.
func countedLines(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "line %09d\n", i)
	}
	return b.String()
}

func countedLinesCmd(n int, exit int) string {
	return fmt.Sprintf(`awk 'BEGIN{for(i=1;i<=%d;i++){printf "line %%09d\n", i; if(i%%5000==0){fflush(); system("sleep 0.05")}}}'; exit %d`, n, exit)
}

// TestKilledCLIThenAttach: rexec run is SIGKILLed mid-output; its command
// runs on for the reconnect grace, and rexec attach takes it up: every byte
// from the start, byte-exact, and the command's exit status. What the killed
// client had printed is a prefix of it.
func TestKilledCLIThenAttach(t *testing.T) {
	t.Parallel()
	e := startCLIEnv(t, "--reconnect-grace", "30s")
	const n = 200000
	want := countedLines(n)
	out1 := filepath.Join(t.TempDir(), "out1")
	f, err := os.Create(out1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cli := e.command("run", "--", countedLinesCmd(n, 6))
	cli.Stdout = f
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first output", func() bool {
		fi, _ := os.Stat(out1)
		return fi != nil && fi.Size() > 100000
	})
	if err := cli.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cli.Wait()
	id := e.runningID()
	got, stderr, code := e.rexec("attach", "-n", id)
	if code != 6 || got != want {
		t.Fatalf("rexec attach %s: exit %d, %d bytes (want 6, %d bytes); stderr %q", id, code, len(got), len(want), stderr)
	}
	first, _ := os.ReadFile(out1)
	if len(first) == 0 || !strings.HasPrefix(want, string(first)) {
		t.Errorf("the killed client printed %d bytes, not a prefix of the output", len(first))
	}
	t.Logf("the killed client had printed %d of %d bytes; attach printed them all", len(first), len(want))
}

// TestDetachedEndToEnd: run -d, ps, logs -f, wait, kill, kill -s, as a user
// types them.
func TestDetachedEndToEnd(t *testing.T) {
	t.Parallel()
	e := startCLIEnv(t)
	id, stderr, code := e.rexec("run", "-d", "--", "for i in 1 2 3 4 5; do echo out $i; echo err $i >&2; sleep 0.2; done; exit 3")
	id = strings.TrimSpace(id)
	if code != 0 || !execID.MatchString(id) {
		t.Fatalf("run -d: exit %d, stdout %q, stderr %q: want an execution id", code, id, stderr)
	}
	if out, _, _ := e.rexec("ps"); !strings.Contains(out, id) || !strings.Contains(out, "running, detached") {
		t.Errorf("ps:\n%s", out)
	}
	out, errOut, code := e.rexec("logs", "-f", id)
	if code != 0 || out != "out 1\nout 2\nout 3\nout 4\nout 5\n" || errOut != "err 1\nerr 2\nerr 3\nerr 4\nerr 5\n" {
		t.Errorf("logs -f: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, stderr, code := e.rexec("wait", id); code != 3 {
		t.Errorf("wait: exit %d (%q), want 3", code, stderr)
	}
	if out, _, _ := e.rexec("ps", "-a"); !regexp.MustCompile(id + `\s+exited 3`).MatchString(out) {
		t.Errorf("ps -a:\n%s", out)
	}
	// kill: TERM, then KILL; the status says rexec sent TERM.
	id2, _, _ := e.rexec("run", "-d", "--", "sleep 300")
	id2 = strings.TrimSpace(id2)
	if _, stderr, code := e.rexec("kill", id2); code != 0 {
		t.Errorf("kill: exit %d %q", code, stderr)
	}
	if _, _, code := e.rexec("wait", id2); code != 143 {
		t.Errorf("wait after kill: exit %d, want 143", code)
	}
	if out, _, _ := e.rexec("ps", "-a"); !regexp.MustCompile(id2 + `\s+cancelled \(TERM\)`).MatchString(out) {
		t.Errorf("ps -a:\n%s", out)
	}
	// kill -s: one signal, which the command may handle.
	id3, _, _ := e.rexec("run", "-d", "--", "trap 'echo got-usr1; exit 5' USR1; echo ready; while :; do sleep 0.05; done")
	id3 = strings.TrimSpace(id3)
	waitFor(t, "the trap", func() bool { out, _, _ := e.rexec("logs", id3); return out == "ready\n" })
	if _, stderr, code := e.rexec("kill", "-s", "USR1", id3); code != 0 {
		t.Errorf("kill -s USR1: exit %d %q", code, stderr)
	}
	if _, _, code := e.rexec("wait", id3); code != 5 {
		t.Errorf("wait after USR1: exit %d, want 5", code)
	}
	if out, _, _ := e.rexec("logs", id3); out != "ready\ngot-usr1\n" {
		t.Errorf("logs: %q", out)
	}
	// An id that is not there: one line, 255.
	if _, stderr, code := e.rexec("logs", "0123456789abcdef"); code != 255 || !strings.Contains(stderr, "NotFound") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("logs of no such execution: exit %d, %q", code, stderr)
	}
}

// TestRestartKeepsJournals: the journals of ended executions, and of those
// a restart killed, survive the restart: ps -a and logs show them, with
// reason shutdown for the killed ones — SIGKILLed rexecd (its guard sent
// KILL) and a graceful stop past its grace (TERM) alike.
func TestRestartKeepsJournals(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	e := startCLIEnv(t, "--state-dir", state)
	if out, _, code := e.rexec("run", "--", "echo done; exit 2"); code != 2 || out != "done\n" {
		t.Fatalf("run: %d %q", code, out)
	}
	id, _, _ := e.rexec("run", "-d", "--", "echo started; sleep 300")
	id = strings.TrimSpace(id)
	waitFor(t, "its output", func() bool { out, _, _ := e.rexec("logs", id); return out == "started\n" })
	e.daemon.signal(t, syscall.SIGKILL)
	e.daemon.wait(t, 20*time.Second)

	e2 := startCLIEnv(t, "--state-dir", state, "--shutdown-grace", "200ms", "--kill-grace", "200ms")
	out, _, _ := e2.rexec("ps", "-a")
	if !regexp.MustCompile(id+`\s+shutdown \(KILL\)`).MatchString(out) || !strings.Contains(out, "exited 2") {
		t.Errorf("ps -a after a SIGKILLed rexecd:\n%s", out)
	}
	if out, _, code := e2.rexec("logs", id); code != 0 || out != "started\n" {
		t.Errorf("logs after the restart: %d %q", code, out)
	}
	if _, stderr, code := e2.rexec("wait", id); code != 137 || !strings.Contains(stderr, "the server shut down") {
		t.Errorf("wait: %d %q, want 137 and the reason", code, stderr)
	}

	// A graceful stop kills what outlives its grace, with TERM.
	id2, _, _ := e2.rexec("run", "-d", "--", "echo second; sleep 300")
	id2 = strings.TrimSpace(id2)
	waitFor(t, "its output", func() bool { out, _, _ := e2.rexec("logs", id2); return out == "second\n" })
	e2.daemon.signal(t, syscall.SIGTERM)
	if err := e2.daemon.wait(t, 20*time.Second); err != nil {
		t.Fatalf("rexecd after SIGTERM: %v", err)
	}
	e3 := startCLIEnv(t, "--state-dir", state)
	out, _, _ = e3.rexec("ps", "-a")
	if !regexp.MustCompile(id2+`\s+shutdown \(TERM\)`).MatchString(out) || !strings.Contains(out, id) {
		t.Errorf("ps -a after a graceful stop:\n%s", out)
	}
	if out, _, _ := e3.rexec("logs", id2); out != "second\n" {
		t.Errorf("logs: %q", out)
	}
}

// TestOtherKeysSeeNothing: an execution belongs to the key that started
// it. Another key — also one with no scopes, which has admin only by
// implication — cannot list, get, read, attach or kill it: each is
// NotFound, as an id that never was, so that its existence is not
// confirmed either. A key whose line lists admin sees and ends it (after a
// rotation, that is how an old key's executions are reached).
func TestOtherKeysSeeNothing(t *testing.T) {
	t.Parallel()
	keys := map[string]*interceptors.Key{}
	var extra []*interceptors.Key
	for id, scopes := range map[string][]string{"alice": {"exec"}, "bob": {"exec"}, "plain": nil, "root": {"exec", "admin"}} {
		k, err := interceptors.GenerateKey(id, scopes...)
		if err != nil {
			t.Fatal(err)
		}
		keys[id] = k
		extra = append(extra, k)
	}
	srv := testenv.StartServer(t, testenv.Options{ExtraKeys: extra})
	ctx := context.Background()
	alice := srv.Client(t, keys["alice"])
	st, err := alice.Detach(ctx, &rexecv1.RunRequest{Shell: "echo secret; sleep 300"})
	if err != nil {
		t.Fatal(err)
	}
	id := st.GetExecutionId()
	for _, who := range []string{"bob", "plain"} {
		c := srv.Client(t, keys[who])
		notFound := func(call string, err error) {
			t.Helper()
			if status.Code(err) != codes.NotFound {
				t.Errorf("%s's %s of alice's execution: %v, want NotFound", who, call, err)
			}
		}
		list, err := c.ListExecutions(ctx, true, 0)
		if err != nil || len(list.GetExecutions()) != 0 {
			t.Errorf("%s lists %v (%v), want nothing", who, list.GetExecutions(), err)
		}
		_, err = c.GetExecution(ctx, id, false)
		notFound("GetExecution", err)
		_, _, err = c.Logs(ctx, id, 0, false, io.Discard, io.Discard, nil)
		notFound("Logs", err)
		_, err = c.Attach(ctx, id, 0, nil, client.ResumeOptions{})
		notFound("Attach", err)
		_, err = c.Kill(ctx, id, rexecv1.Signal_SIGNAL_KILL)
		notFound("Kill", err)
	}
	ex, err := alice.GetExecution(ctx, id, false)
	if err != nil || ex.GetExited() != nil {
		t.Fatalf("alice's execution after the others tried: %v %v", ex, err)
	}
	root := srv.Client(t, keys["root"])
	list, err := root.ListExecutions(ctx, false, 0)
	if err != nil || len(list.GetExecutions()) != 1 || list.GetExecutions()[0].GetKeyId() != "alice" {
		t.Fatalf("root lists %v (%v), want alice's", list.GetExecutions(), err)
	}
	// The echo may not have reached the journal yet: read until it has.
	var out bytes.Buffer
	var lerr error
	waitFor(t, "root to read alice's output", func() bool {
		out.Reset()
		_, _, lerr = root.Logs(ctx, id, 0, false, &out, io.Discard, nil)
		return lerr != nil || out.String() != ""
	})
	if lerr != nil || out.String() != "secret\n" {
		t.Errorf("root reads %q (%v)", out.String(), lerr)
	}
	if _, err := root.Kill(ctx, id, rexecv1.Signal_SIGNAL_UNSPECIFIED); err != nil {
		t.Fatal(err)
	}
	ex, err = alice.GetExecution(ctx, id, true)
	if err != nil || ex.GetExited().GetReason() != rexecv1.EndReason_END_REASON_CANCELLED {
		t.Errorf("after root's kill: %v %v", ex, err)
	}
}

// TestRawCommandsInTheJournal: the raw transport's commands go through the
// same journal (read the same way): ps and logs show them, with their key,
// and their stdin is still the raw server's to write.
func TestRawCommandsInTheJournal(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{Raw: true})
	rc := srv.RawClient(t, nil)
	var out bytes.Buffer
	ex, err := rc.RunStdin(context.Background(), &rexecv1.RunRequest{Shell: "cat; echo done >&2; exit 3"}, strings.NewReader("over the raw socket\n"), &out, io.Discard)
	if err != nil || ex.GetExitCode() != 3 || out.String() != "over the raw socket\n" {
		t.Fatalf("raw run: %v %v %q", ex, err, out.String())
	}
	c := srv.Client(t, nil)
	list, err := c.ListExecutions(context.Background(), true, 0)
	if err != nil || len(list.GetExecutions()) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	e := list.GetExecutions()[0]
	if e.GetKeyId() != srv.Key.ID || e.GetLifetime() != rexecv1.Lifetime_LIFETIME_CALL || e.GetExited().GetExitCode() != 3 {
		t.Errorf("listed %v", e)
	}
	var logOut, logErr bytes.Buffer
	if _, exited, err := c.Logs(context.Background(), e.GetExecutionId(), 0, false, &logOut, &logErr, nil); err != nil ||
		logOut.String() != "over the raw socket\n" || logErr.String() != "done\n" || exited.GetExitCode() != 3 {
		t.Errorf("logs: %q %q %v %v", logOut.String(), logErr.String(), exited, err)
	}
}
