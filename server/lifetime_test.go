package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/runner"
	"github.com/rexec/rexec/server"
)

func TestClientCancelKillsGroup(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	st, pid := testenv.StartRun(t, ctx, c.Exec(), &rexecv1.RunRequest{Shell: "sleep 300 & sleep 300 & echo up; wait"})
	if _, err := st.Recv(); err != nil { // "up": both sleeps were started
		t.Fatal(err)
	}
	if n := len(testenv.GroupPIDs(pid)); n != 3 {
		t.Errorf("group has %d processes, want 3", n)
	}
	cancel()
	took := testenv.WaitGroupGone(t, pid, 5*time.Second)
	t.Logf("cancel to last pid gone: %v", took)
	waitAudit(t, srv, "reason=cancelled")
}

func TestCallDeadlineKillsGroup(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, pid := testenv.StartRun(t, ctx, c.Exec(), &rexecv1.RunRequest{Shell: "sleep 300 & wait"})
	_, err := st.Recv()
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("after the call's deadline: %v, want DeadlineExceeded", err)
	}
	testenv.WaitGroupGone(t, pid, 5*time.Second)
}

func TestTimeoutReported(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	ex, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: "sleep 300 & sleep 300", Timeout: durationpb.New(300 * time.Millisecond)}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !ex.GetTimedOut() || ex.GetReason() != rexecv1.EndReason_END_REASON_TIMEOUT || ex.GetSignal() != "TERM" {
		t.Errorf("exited %v: want timed_out, reason TIMEOUT, signal TERM", ex)
	}
}

func TestBackgroundHolderDoesNotHang(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{Runner: runner.Options{DrainGrace: 300 * time.Millisecond}})
	c := srv.Client(t, nil)
	var out strings.Builder
	ex, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: "sleep 300 & echo done"}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "done\n" || !ex.GetOutputIncomplete() || ex.GetExitCode() != 0 {
		t.Errorf("out %q exited %v: want done, output_incomplete, exit 0", out.String(), ex)
	}
}

func TestOutputBudgetReported(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{Runner: runner.Options{MaxOutput: 1 << 20}})
	c := srv.Client(t, nil)
	for _, tc := range []struct {
		budget, want uint64
	}{{1000, 1000}, {0, 1 << 20}, {8 << 20, 1 << 20}} { // the server's max caps a request's
		n := 0
		ex, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: "head -c 3000000 /dev/zero", MaxOutputBytes: tc.budget},
			writerFunc(func(p []byte) { n += len(p) }), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if uint64(n) != tc.want || ex.GetDroppedBytes() != 3000000-tc.want || ex.GetStdoutBytes() != 3000000 {
			t.Errorf("budget %d: got %d bytes, exited %v; want %d forwarded and the rest counted as dropped", tc.budget, n, ex, tc.want)
		}
	}
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

func TestMaxConcurrentEndToEnd(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{Runner: runner.Options{MaxConcurrent: 2}})
	c := srv.Client(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var pids []int
	for range 2 {
		_, pid := testenv.StartRun(t, ctx, c.Exec(), &rexecv1.RunRequest{Shell: "sleep 300"})
		pids = append(pids, pid)
	}
	_, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard)
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "max-concurrent") || !strings.Contains(st.Message(), "2 of 2") {
		t.Errorf("third call: %v %q, want ResourceExhausted naming the limit", st.Code(), st.Message())
	}
	// Echo is still served, and once a slot frees, commands run again.
	if _, err := c.Echo(context.Background(), "x", false); err != nil {
		t.Errorf("echo at the command limit: %v", err)
	}
	cancel()
	for _, pid := range pids {
		testenv.WaitGroupGone(t, pid, 5*time.Second)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slots never freed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	// One command ends within the grace; one outlives it.
	quick, _ := testenv.StartRun(t, context.Background(), c.Exec(), &rexecv1.RunRequest{Shell: "sleep 0.2; echo finished"})
	slow, pid := testenv.StartRun(t, context.Background(), c.Exec(), &rexecv1.RunRequest{Shell: "sleep 300"})
	done := make(chan struct{})
	go func() { srv.Server.Shutdown(time.Second); close(done) }()

	ex, out := drain(t, quick)
	if out != "finished\n" || ex.GetReason() != rexecv1.EndReason_END_REASON_EXITED {
		t.Errorf("command within the grace: %q %v, want it to finish normally", out, ex)
	}
	ex, _ = drain(t, slow)
	if ex.GetReason() != rexecv1.EndReason_END_REASON_SHUTDOWN || ex.GetSignal() != "TERM" {
		t.Errorf("command past the grace: %v, want reason SHUTDOWN, killed by TERM", ex)
	}
	testenv.WaitGroupGone(t, pid, 5*time.Second)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	_, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard)
	if status.Code(err) != codes.Unavailable {
		t.Errorf("call after shutdown: %v, want Unavailable", err)
	}
}

func drain(t *testing.T, st rexecv1.ExecService_RunClient) (*rexecv1.Exited, string) {
	t.Helper()
	var out strings.Builder
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			t.Fatal("stream ended without Exited")
		}
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		out.Write(m.GetEvent().GetStdout().GetData())
		if ex := m.GetEvent().GetExited(); ex != nil {
			return ex, out.String()
		}
	}
}

// TestSlowReaderBlocksCommand: a client that does not read makes the command
// block on its pipe, with a bounded number of bytes in flight (HTTP/2 flow
// control, the pipe, one chunk): the server buffers nothing more.
func TestSlowReaderBlocksCommand(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	progress := t.TempDir() + "/progress"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Each loop writes 64 KiB, then records how many loops are done.
	st, pid := testenv.StartRun(t, ctx, c.Exec(), &rexecv1.RunRequest{
		Shell: "i=0; while [ $i -lt 16384 ]; do head -c 65536 /dev/zero; i=$((i+1)); echo $i > " + progress + "; done",
	})
	// Read nothing; wait until the writer stops making progress.
	last, stable := -1, 0
	for range 200 { // at most 200 × 50 ms
		time.Sleep(50 * time.Millisecond)
		n := readInt(progress)
		if n == last {
			if stable++; stable == 6 {
				break
			}
		} else {
			last, stable = n, 0
		}
	}
	inFlight := int64(last) * 65536
	t.Logf("command blocked after %d KiB written with the client reading nothing", inFlight>>10)
	// 1 GiB would be written if nothing pushed back; the window, pipe and
	// chunk allow a few MiB at most.
	if stable < 6 || inFlight > 32<<20 {
		t.Fatalf("writer progress %d loops (stable %v): the command was not held back by the unread stream", last, stable >= 6)
	}
	// Reading again lets it go on.
	for range 50 {
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	testenv.WaitGroupGone(t, pid, 5*time.Second)
}

func readInt(path string) int {
	b, _ := os.ReadFile(path)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func TestQuietCommandSurvivesKeepalive(t *testing.T) {
	t.Parallel()
	// The server pings a quiet connection every second; the client answers,
	// so a command that prints nothing for a while is not cut.
	srv := testenv.StartServer(t, testenv.Options{Server: server.Config{KeepaliveTime: time.Second, KeepaliveTimeout: time.Second}})
	c := srv.Client(t, nil)
	var out strings.Builder
	ex, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: "sleep 3.5; echo still here"}, &out, io.Discard)
	if err != nil || out.String() != "still here\n" || ex.GetExitCode() != 0 {
		t.Errorf("quiet 3.5 s command with 1 s keepalive pings: %q %v %v", out.String(), ex, err)
	}
}

func TestAuditLines(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	if _, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: "echo hi; echo e >&2; exit 3", Dir: "/tmp"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	// The runner writes the end line before it sends Exited, but the log
	// is read here without a lock-step.
	waitAudit(t, srv, `msg="command ended"`)
	var start, end string
	sc := bufio.NewScanner(strings.NewReader(srv.Log.String()))
	for sc.Scan() {
		switch l := sc.Text(); {
		case strings.Contains(l, `msg="command started"`):
			start = l
		case strings.Contains(l, `msg="command ended"`):
			end = l
		}
	}
	for _, want := range []string{"transport=grpc", "peer=127.0.0.1:", "key_id=test", "exec_id=", `command="echo hi; echo e >&2; exit 3"`, "dir=/tmp", "pid="} {
		if !strings.Contains(start, want) {
			t.Errorf("start line lacks %q: %s", want, start)
		}
	}
	for _, want := range []string{"key_id=test", "exit_code=3", "reason=exited", "duration=", "stdout_bytes=3", "stderr_bytes=2", "dropped_bytes=0", "output_incomplete=false", `sent_signal=""`, "unread_bytes=0"} {
		if !strings.Contains(end, want) {
			t.Errorf("end line lacks %q: %s", want, end)
		}
	}
}

func waitAudit(t *testing.T, srv *testenv.Server, want string) {
	t.Helper()
	for range 250 {
		if strings.Contains(srv.Log.String(), want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("audit log never said %q", want)
}
