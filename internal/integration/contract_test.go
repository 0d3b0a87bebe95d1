package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/rawsock"
	"github.com/rexec/rexec/runner"
)

// The tests of this file hold rexec to its contract where a client does not
// play along: a client that never reads, one that runs commands back to back,
// a command that outlives the signal rexec sent it.

// rawConn is a raw connection past the handshake, done by hand from
// docs/PROTOCOL.md, so that a test can send frames and then read nothing.
func rawConn(t *testing.T, addr string, key *interceptors.Key) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	hello := make([]byte, 1+rawsock.ChallengeLen)
	if _, err := io.ReadFull(nc, hello); err != nil {
		t.Fatal(err)
	}
	proof := rawsock.Proof(key.Secret, hello[1:], key.ID)
	if _, err := nc.Write(append(append([]byte{byte(len(key.ID))}, key.ID...), proof[:]...)); err != nil {
		t.Fatal(err)
	}
	st := make([]byte, 1)
	if _, err := io.ReadFull(nc, st); err != nil || st[0] != rawsock.StatusOK {
		t.Fatalf("raw handshake: %v %v", st, err)
	}
	return nc
}

// stalledRun starts `exec yes` with a timeout over one transport, reads the
// Started event and then nothing. It returns the pid, and a function that
// reads the rest (which a stalled client may do later) and returns the exit
// and the output bytes received (nil when there is no rest to read).
type stalledRun struct {
	pid  int
	rest func() (ex *rexecv1.Exited, n int64)
}

func startStalledGRPC(t *testing.T, srv *testenv.Server, timeout time.Duration) stalledRun {
	t.Helper()
	// The smallest window gRPC allows (64 KiB; the client's default is 8
	// MiB): the server's send blocks once about 0.4 MB is in flight.
	// With 8 MiB, a run that moved less than that before its timeout (4-7.6
	// MB under load, with -race) never blocked: the client's transport
	// took all of it, and nothing was left to be output_incomplete.
	c := srv.Client(t, nil, client.WithWindow(64<<10))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, pid := testenv.StartRun(t, ctx, c.Exec(), &rexecv1.RunRequest{Shell: "exec yes", Timeout: durationpb.New(timeout)})
	return stalledRun{pid: pid, rest: func() (*rexecv1.Exited, int64) {
		var n int64
		for range 1 << 20 { // bounded: far more events than a stalled run has
			m, err := st.Recv()
			if err != nil {
				t.Fatalf("reading the stalled stream: %v", err)
			}
			n += int64(len(m.GetEvent().GetStdout().GetData()))
			if ex := m.GetEvent().GetExited(); ex != nil {
				return ex, n
			}
		}
		t.Fatal("no Exited")
		return nil, 0
	}}
}

// startStalledRawBadFrame is a stalled raw client that then sends a frame a
// client may not send (a protocol error): the server closes the connection
// and the command is killed at once, not at its timeout.
func startStalledRawBadFrame(t *testing.T, srv *testenv.Server, _ time.Duration) stalledRun {
	t.Helper()
	run, nc := startStalledRawConn(t, srv, time.Hour)
	// Stalled first: by the time `yes` blocks on its full pipe, the
	// server's writes to this client, which reads nothing, have mostly
	// filled the socket buffers and block, holding the connection's write
	// lock (the case in which the bad frame's answer hung and `yes` lived
	// on: 2 of 3 runs before the fix; at once, 1 in about 100).
	waitFor(t, "`yes` to block on its full pipe", func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", run.pid))
		return strings.HasSuffix(string(b), "pipe_write")
	})
	if err := rawsock.WriteFrame(nc, rawsock.TypeExit, nil); err != nil {
		t.Fatal(err)
	}
	run.rest = nil // the server closed the connection: there is no rest
	return run
}

func startStalledRaw(t *testing.T, srv *testenv.Server, timeout time.Duration) stalledRun {
	run, _ := startStalledRawConn(t, srv, timeout)
	return run
}

func startStalledRawConn(t *testing.T, srv *testenv.Server, timeout time.Duration) (stalledRun, net.Conn) {
	t.Helper()
	nc := rawConn(t, srv.RawAddr, srv.Key)
	cmd, _ := json.Marshal(map[string]any{"shell": "exec yes", "timeout_ms": timeout.Milliseconds()})
	if err := rawsock.WriteFrame(nc, rawsock.TypeCommand, cmd); err != nil {
		t.Fatal(err)
	}
	rd := rawsock.NewReader(nc, rawsock.DefaultMaxFrame)
	f, err := rd.Next()
	if err != nil || f.Type != rawsock.TypeStarted || len(f.Payload) < 4 {
		t.Fatalf("first frame %v %v, want started", f.Type, err)
	}
	pid := int(binary.BigEndian.Uint32(f.Payload))
	return stalledRun{pid: pid, rest: func() (*rexecv1.Exited, int64) {
		var n int64
		nc.SetReadDeadline(time.Now().Add(60 * time.Second))
		for range 1 << 20 {
			f, err := rd.Next()
			if err != nil {
				t.Fatalf("reading the stalled connection: %v", err)
			}
			switch f.Type {
			case rawsock.TypeStdout:
				n += int64(len(f.Payload) - 8)
			case rawsock.TypeExit:
				ex, err := rawsock.DecodeExit(f.Payload)
				if err != nil {
					t.Fatal(err)
				}
				return ex, n
			}
		}
		t.Fatal("no exit frame")
		return nil, 0
	}}, nc
}

// TestStalledClientCannotHoldCommand: a client that starts `exec yes` with a
// timeout and never reads. The timeout still kills the command, its slot is
// freed for the next command (--max-concurrent 1) while the client still
// reads nothing, and when the client reads at last it gets the output the
// server had taken, then Exited saying timeout. Before, the pump's send
// blocked the loop that handles the timeout: `yes` lived until the client
// read.
func TestStalledClientCannotHoldCommand(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{Raw: true, Runner: runner.Options{MaxConcurrent: 1}})
	// The timeout runs from the request, before the fork: on a loaded
	// machine (-race) the fork and exec alone took 0.95 s of a 1 s timeout,
	// which then passed before `yes` had written anything, and with nothing
	// read nothing was left to be output_incomplete. 5 s leaves `yes` the
	// time to stall the client first (about 0.4 MB over gRPC, 4.4 MB over
	// raw, where the kernel's socket buffers take the rest).
	const timeout = 5 * time.Second
	for _, tc := range []struct {
		name  string
		start func(*testing.T, *testenv.Server, time.Duration) stalledRun
	}{{"grpc", startStalledGRPC}, {"raw", startStalledRaw}, {"raw, then a bad frame", startStalledRawBadFrame}} {
		t.Run(tc.name, func(t *testing.T) {
			run := tc.start(t, srv, timeout)
			// timeout + kill grace (0.5 s) + a bound that only guards a hang
			if !gone(run.pid, 20*time.Second) {
				syscall.Kill(-run.pid, syscall.SIGKILL)
				t.Fatalf("`yes` (pid %d) still runs 20 s past its %v timeout while the client reads nothing", run.pid, timeout)
			}
			var err error
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if _, err = srv.Client(t, nil).Run(context.Background(), &rexecv1.RunRequest{Argv: []string{"true"}}, io.Discard, io.Discard); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatalf("the stalled client's slot is never freed: %v", err)
			}
			if run.rest == nil {
				return
			}
			ex, n := run.rest()
			if ex.GetReason() != rexecv1.EndReason_END_REASON_TIMEOUT || !ex.GetTimedOut() || ex.GetSentSignal() != "TERM" || client.ExitStatus(ex) != 143 {
				t.Errorf("exited %v, want reason TIMEOUT, sent signal TERM, status 143", ex)
			}
			// Every byte the server counted as read reaches the client, in
			// seq order (the clients check the seqs); what was left in the
			// pipe when the server stopped reading is output_incomplete.
			if uint64(n) != ex.GetStdoutBytes() || !ex.GetOutputIncomplete() {
				t.Errorf("received %d bytes, server read %d, output_incomplete %v: want equal and true", n, ex.GetStdoutBytes(), ex.GetOutputIncomplete())
			}
			t.Logf("the stalled client got %d bytes and %v", n, ex)
		})
	}
}

// TestExitedFreesTheSlot: with --max-concurrent 1, a client that has
// received Exited can start its next command at once: 500 back to back over
// gRPC and 500 over one raw connection, none refused. Before, Exited went out
// before the slot was released: about a third were ResourceExhausted.
func TestExitedFreesTheSlot(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{Raw: true, Runner: runner.Options{MaxConcurrent: 1}})
	const n = 500
	g := srv.Client(t, nil)
	r := srv.RawClient(t, nil)
	for _, tc := range []struct {
		name string
		run  func(context.Context, *rexecv1.RunRequest, io.Writer, io.Writer) (*rexecv1.Exited, error)
	}{{"grpc", g.Run}, {"raw", r.Run}} {
		failed := 0
		var first error
		for range n {
			if _, err := tc.run(context.Background(), &rexecv1.RunRequest{Argv: []string{"true"}}, io.Discard, io.Discard); err != nil {
				if failed++; first == nil {
					first = err
				}
			}
		}
		if failed > 0 {
			t.Errorf("%s: %d of %d sequential runs failed, first: %v", tc.name, failed, n, first)
		}
	}
}

// trapTerm exits 0 on the TERM that its timeout brings.
const trapTerm = `trap "exit 0" TERM; sleep 5 & wait`

// TestRexecEndedExitStatus: a command that rexec ended (here its timeout)
// exits 128+N of the signal rexec sent, even when the command handled the
// signal and exited 0 by itself: over both transports, and from the real CLI.
func TestRexecEndedExitStatus(t *testing.T) {
	t.Parallel()
	// A kill grace far above the trap's time to run: with the tests' 500 ms,
	// a loaded machine (load 15-20) sometimes had not run the trap when
	// KILL came, and the status was 137, the KILL's, which is right then.
	srv := testenv.StartServer(t, testenv.Options{Raw: true, Runner: runner.Options{KillGrace: 10 * time.Second}})
	for _, tr := range transports(t, srv) {
		ex, err := tr.run(context.Background(), &rexecv1.RunRequest{Shell: trapTerm, Timeout: durationpb.New(time.Second)}, io.Discard, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", tr.name, err)
		}
		if got := client.ExitStatus(ex); got != 128+15 || !ex.GetTimedOut() {
			t.Errorf("%s: status %d (%v), want 143: rexec sent TERM for the timeout", tr.name, got, ex)
		}
	}
	bin := binaries(t)
	for _, raw := range []bool{false, true} {
		args := []string{"--addr", srv.Addr, "--raw-addr", srv.RawAddr, "--key-file", srv.KeyFile, "run", "-n", "--timeout", "1s"}
		if raw {
			args = append(args, "--raw")
		}
		cmd := exec.Command(filepath.Join(bin, "rexec"), append(args, "--", trapTerm)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 143 {
			t.Errorf("rexec run (raw %v) of a command that traps the timeout's TERM: %v, want exit 143 (stderr %q)", raw, err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "timed out") {
			t.Errorf("stderr %q, want it to say the command timed out", stderr.String())
		}
	}
}

// startRexecd starts the real rexecd binary on loopback with a fresh key,
// the given extra files (fd 3 on) and flags, and returns its address, its
// key and the process.
func startRexecd(t *testing.T, extra []*os.File, flags ...string) (string, *interceptors.Key, *rexecdProc) {
	t.Helper()
	key, err := interceptors.GenerateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	return startRexecdKey(t, extra, key, flags...)
}

// startRexecdKey is startRexecd with key (its options too) as the key file's
// one key.
func startRexecdKey(t *testing.T, extra []*os.File, key *interceptors.Key, flags ...string) (string, *interceptors.Key, *rexecdProc) {
	t.Helper()
	dir := t.TempDir()
	keyFile, addrFile := filepath.Join(dir, "keys"), filepath.Join(dir, "addr")
	writeKeys(t, keyFile, 0o600, key.Line())
	args := []string{"--listen", "127.0.0.1:0", "--addr-file", addrFile, "--keys", keyFile}
	if !slices.Contains(flags, "--state-dir") {
		args = append(args, "--state-dir", filepath.Join(dir, "state")) // each rexecd its own journal
	}
	d := spawnRexecd(t, filepath.Join(binaries(t), "rexecd"), extra, append(args, flags...)...)
	return readAddrFile(t, addrFile), key, d
}

// TestCommandsInheritOnlyStdio: a descriptor that rexecd itself inherited
// without close-on-exec (as from `(exec 7>>launcher.log; exec rexecd)`) does
// not reach the commands: they get 0, 1 and 2 only. Before, `echo hi >&3`
// wrote into the launcher's file.
func TestCommandsInheritOnlyStdio(t *testing.T) {
	t.Parallel()
	launcherLog := filepath.Join(t.TempDir(), "launcher.log")
	f, err := os.OpenFile(launcherLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	addr, key, _ := startRexecd(t, []*os.File{f}) // fd 3 in rexecd
	c, err := client.New(addr, client.WithKey(key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var stderr bytes.Buffer
	ex, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: "echo hi >&3"}, io.Discard, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(launcherLog)
	if len(got) != 0 || ex.GetExitCode() == 0 {
		t.Errorf("the command wrote %q into rexecd's inherited fd 3 (exit %d, stderr %q): want a bad descriptor", got, ex.GetExitCode(), stderr.String())
	}
	var fds bytes.Buffer
	if _, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: "cd /proc/self/fd && echo *"}, &fds, io.Discard); err != nil {
		t.Fatal(err)
	}
	// The shell's own: 0 1 2, and the directory it lists (3).
	if strings.TrimSpace(fds.String()) != "0 1 2 3" {
		t.Errorf("a command's open descriptors: %q, want 0 1 2 (and 3, the listing)", fds.String())
	}
}

// TestForcedShutdownAuditsTheEnd: rexecd shuts down while a client that
// reads nothing holds a running command past the grace. The command is
// killed and its "command ended" audit line written before rexecd exits:
// every started command has one. Before, the kill waited for the client,
// and rexecd exited without the line.
func TestForcedShutdownAuditsTheEnd(t *testing.T) {
	t.Parallel()
	addr, key, d := startRexecd(t, nil, "--shutdown-grace", "500ms", "--kill-grace", "500ms", "--drain-grace", "500ms")
	log := d.log
	c, err := client.New(addr, client.WithKey(key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, pid := testenv.StartRun(t, ctx, c.Exec(), &rexecv1.RunRequest{Shell: "exec yes"})
	d.signal(t, syscall.SIGTERM)
	d.wait(t, 30*time.Second)
	if !gone(pid, 10*time.Second) {
		syscall.Kill(-pid, syscall.SIGKILL)
		t.Errorf("`yes` (pid %d) outlived rexecd", pid)
	}
	pidAttr := "pid=" + strconv.Itoa(pid) + " "
	ended := ""
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, `msg="command ended"`) && strings.Contains(l, pidAttr) {
			ended = l
		}
	}
	if !strings.Contains(ended, "reason=shutdown") || !strings.Contains(ended, "sent_signal=TERM") {
		t.Errorf("no end line with reason=shutdown and sent_signal=TERM for pid %d: %q", pid, ended)
	}
}
