package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/server"
)

func shellStart(cmd string) *rexecv1.SessionStart {
	return &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Shell: cmd}}
}

func ttyStart(cmd string, rows, cols uint32) *rexecv1.SessionStart {
	s := shellStart(cmd)
	s.Tty = &rexecv1.Tty{Size: &rexecv1.WindowSize{Rows: rows, Cols: cols}}
	return s
}

func TestSessionStdin(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	big := bytes.Repeat([]byte("0123456789abcdef"), (1<<20)/16+1) // a little over 1 MiB
	cases := []struct {
		name   string
		start  *rexecv1.SessionStart
		stdin  io.Reader
		stdout string
	}{
		{"tr", shellStart("tr a-z A-Z"), strings.NewReader("hello\n"), "HELLO\n"},
		{"wc -c", shellStart("wc -c"), bytes.NewReader(big), strconv.Itoa(len(big)) + "\n"},
		{"no stdin is EOF", shellStart("cat; echo done"), nil, "done\n"},
		{"start's stdin goes first", &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Shell: "cat", Stdin: []byte("first ")}}, strings.NewReader("second"), "first second"},
		{"argv", &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Argv: []string{"tr", "a-z", "A-Z"}}}, strings.NewReader("x"), "X"},
		{"output after EOF", shellStart("cat; echo after-eof; for i in 1 2 3; do echo tick $i; done"), strings.NewReader("data\n"), "data\nafter-eof\ntick 1\ntick 2\ntick 3\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			ex, err := c.Session(context.Background(), tc.start, tc.stdin, &stdout, &stderr)
			if err != nil {
				t.Fatalf("Session: %v", err)
			}
			if client.ExitStatus(ex) != 0 || stdout.String() != tc.stdout {
				t.Errorf("status %d stdout %q (stderr %q), want 0 %q", client.ExitStatus(ex), clip(stdout.String()), stderr.String(), tc.stdout)
			}
		})
	}
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// TestSessionSHA256 pipes 64 MiB through sha256sum and compares the hash.
func TestSessionSHA256(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	block := make([]byte, 1<<20)
	_, _ = rand.Read(block)
	var blocks []io.Reader
	for range 64 {
		blocks = append(blocks, bytes.NewReader(block))
	}
	h := sha256.New()
	stdin := io.TeeReader(io.MultiReader(blocks...), h)
	var stdout, stderr bytes.Buffer
	ex, err := c.Session(context.Background(), shellStart("sha256sum"), stdin, &stdout, &stderr)
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	want := hex.EncodeToString(h.Sum(nil)) + "  -\n"
	if client.ExitStatus(ex) != 0 || stdout.String() != want {
		t.Errorf("status %d stdout %q stderr %q, want 0 %q", client.ExitStatus(ex), stdout.String(), stderr.String(), want)
	}
}

// lineWriter hands each line of output to a channel, so a test can wait for
// one before it sends the next input.
func newLines(t *testing.T) (*io.PipeWriter, <-chan string) {
	pr, pw := io.Pipe()
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			ch <- strings.TrimRight(sc.Text(), "\r")
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	t.Cleanup(func() { pw.Close() })
	return pw, ch
}

// waitLine waits for a line matching re; a closed channel or the bound of
// lines read fails the test.
func waitLine(t *testing.T, lines <-chan string, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	for range 1000 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("output ended before a line matching %q", re)
			}
			if rx.MatchString(l) {
				return l
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no line matching %q in 30s", re)
		}
	}
	t.Fatalf("no line matching %q in 1000 lines", re)
	return ""
}

type sessionResult struct {
	ex  *rexecv1.Exited
	err error
}

func waitAsync(s *client.Session, stdout, stderr io.Writer) <-chan sessionResult {
	ch := make(chan sessionResult, 1)
	go func() {
		ex, err := s.Wait(stdout, stderr)
		if c, ok := stdout.(io.Closer); ok {
			c.Close()
		}
		ch <- sessionResult{ex, err}
	}()
	return ch
}

// TestSessionReadLine: the command gets a line while stdin stays open.
func TestSessionReadLine(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	inR, inW := io.Pipe()
	defer inW.Close()
	out, lines := newLines(t)
	s, err := c.OpenSession(context.Background(), shellStart("echo ready; read x; echo got $x"), inR)
	if err != nil {
		t.Fatal(err)
	}
	res := waitAsync(s, out, io.Discard)
	waitLine(t, lines, "^ready$")
	if _, err := io.WriteString(inW, "hello\n"); err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, "^got hello$")
	r := <-res
	if r.err != nil || client.ExitStatus(r.ex) != 0 {
		t.Fatalf("exit %v err %v", r.ex, r.err)
	}
}

// TestSessionSignals sends each signal by name; the shell's trap names it.
func TestSessionSignals(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	names := []string{"HUP", "INT", "QUIT", "USR1", "USR2", "TERM", "WINCH"}
	script := ""
	for _, n := range names {
		script += fmt.Sprintf("trap 'echo got %s' %s; ", n, n)
	}
	// wait returns when a trapped signal arrives; the loop is bounded.
	script += "echo ready; i=0; while [ $i -lt 50 ]; do sleep 100 & wait; i=$((i+1)); done"
	inR, inW := io.Pipe()
	defer inW.Close()
	out, lines := newLines(t)
	s, err := c.OpenSession(context.Background(), shellStart(script), inR)
	if err != nil {
		t.Fatal(err)
	}
	res := waitAsync(s, out, io.Discard)
	waitLine(t, lines, "^ready$")
	for _, n := range names {
		sig := rexecv1.Signal(rexecv1.Signal_value["SIGNAL_"+n])
		if err := s.Signal(sig); err != nil {
			t.Fatalf("Signal(%v): %v", sig, err)
		}
		waitLine(t, lines, "^got "+n+"$")
	}
	if err := s.Signal(rexecv1.Signal_SIGNAL_KILL); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil || r.ex.GetSignal() != "KILL" || client.ExitStatus(r.ex) != 128+9 {
		t.Fatalf("exit %v err %v, want killed by KILL", r.ex, r.err)
	}
}

// TestSessionHalfClose: CloseSend without close_stdin is EOF for the
// command, and its output still flows after it.
func TestSessionHalfClose(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	st, err := c.Exec().Session(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*rexecv1.SessionRequest{
		{Msg: &rexecv1.SessionRequest_Start{Start: shellStart("cat; echo after-eof")}},
		{Msg: &rexecv1.SessionRequest_Stdin{Stdin: []byte("data\n")}},
	} {
		if err := st.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	ex, err := client.Receive(st.Recv, &stdout, io.Discard)
	if err != nil || client.ExitStatus(ex) != 0 || stdout.String() != "data\nafter-eof\n" {
		t.Fatalf("exit %v err %v stdout %q", ex, err, stdout.String())
	}
}

// TestSessionBadOrder: messages out of order end the call with
// InvalidArgument naming what was wrong, and the server stays up.
func TestSessionBadOrder(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	start := &rexecv1.SessionRequest{Msg: &rexecv1.SessionRequest_Start{Start: shellStart("cat")}}
	// After close_stdin, cat would end, and the call with it (Exited, OK) if
	// that happened before the server read the next message: a command
	// that keeps running after its EOF leaves the protocol error the only
	// ending.
	startKeepsRunning := &rexecv1.SessionRequest{Msg: &rexecv1.SessionRequest_Start{Start: shellStart("cat; exec sleep 60")}}
	stdin := &rexecv1.SessionRequest{Msg: &rexecv1.SessionRequest_Stdin{Stdin: []byte("x")}}
	closeStdin := &rexecv1.SessionRequest{Msg: &rexecv1.SessionRequest_CloseStdin{CloseStdin: &rexecv1.CloseStdin{}}}
	sig := func(s rexecv1.Signal) *rexecv1.SessionRequest {
		return &rexecv1.SessionRequest{Msg: &rexecv1.SessionRequest_Signal{Signal: s}}
	}
	resize := &rexecv1.SessionRequest{Msg: &rexecv1.SessionRequest_Resize{Resize: &rexecv1.WindowSize{Rows: 10, Cols: 10}}}
	cases := []struct {
		name string
		msgs []*rexecv1.SessionRequest
		want string
	}{
		{"nothing", nil, "start: the stream ended before its first message"},
		{"stdin before start", []*rexecv1.SessionRequest{stdin}, "stdin: sent before start"},
		{"signal before start", []*rexecv1.SessionRequest{sig(rexecv1.Signal_SIGNAL_INT)}, "signal: sent before start"},
		{"empty message first", []*rexecv1.SessionRequest{{}}, "msg: sent before start"},
		{"two starts", []*rexecv1.SessionRequest{start, start}, "start: sent twice"},
		{"unknown signal", []*rexecv1.SessionRequest{start, sig(99)}, "signal: 99 is not a signal"},
		{"unspecified signal", []*rexecv1.SessionRequest{start, sig(rexecv1.Signal_SIGNAL_UNSPECIFIED)}, "signal: SIGNAL_UNSPECIFIED is not a signal"},
		{"stdin after close", []*rexecv1.SessionRequest{startKeepsRunning, closeStdin, stdin}, "stdin: sent after close_stdin"},
		{"resize without tty", []*rexecv1.SessionRequest{start, resize}, "resize: the session was started without a tty"},
		{"empty message later", []*rexecv1.SessionRequest{start, {}}, "msg: empty or unknown message"},
		{"start without command", []*rexecv1.SessionRequest{{Msg: &rexecv1.SessionRequest_Start{Start: &rexecv1.SessionStart{}}}}, "command: empty"},
		{"zero resize", []*rexecv1.SessionRequest{{Msg: &rexecv1.SessionRequest_Start{Start: ttyStart("cat", 24, 80)}}, {Msg: &rexecv1.SessionRequest_Resize{Resize: &rexecv1.WindowSize{}}}}, "resize: 0x0"},
		{"huge tty", []*rexecv1.SessionRequest{{Msg: &rexecv1.SessionRequest_Start{Start: ttyStart("cat", 1<<20, 80)}}}, "tty.size: 1048576x80 is over the limit"},
		{"tty.term with a NUL", []*rexecv1.SessionRequest{{Msg: &rexecv1.SessionRequest_Start{Start: termStart("xterm\x00")}}}, "tty.term: contains a NUL byte"},
		{"tty.term of 1 MiB", []*rexecv1.SessionRequest{{Msg: &rexecv1.SessionRequest_Start{Start: termStart(strings.Repeat("x", 1<<20))}}}, "tty.term: 1048576 bytes, over the limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st, err := c.Exec().Session(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tc.msgs {
				if err := st.Send(m); err != nil {
					break // the server has ended the call; Recv says why
				}
			}
			if len(tc.msgs) == 0 {
				_ = st.CloseSend()
			}
			// Otherwise the stream stays open: the server must end it.
			var err2 error
			for range 100 {
				if _, err2 = st.Recv(); err2 != nil {
					break
				}
			}
			if status.Code(err2) != codes.InvalidArgument || !strings.Contains(status.Convert(err2).Message(), tc.want) {
				t.Fatalf("got %v, want InvalidArgument with %q", err2, tc.want)
			}
		})
	}
	t.Cleanup(func() {
		// The server is still up and runs commands.
		var out bytes.Buffer
		if _, err := c.Session(context.Background(), shellStart("echo ok"), nil, &out, io.Discard); err != nil || out.String() != "ok\n" {
			t.Errorf("after bad sessions: %v %q", err, out.String())
		}
	})
}

func termStart(term string) *rexecv1.SessionStart {
	st := ttyStart("true", 24, 80)
	st.Tty.Term = term
	return st
}

// TestSessionWithoutStartIsDropped: a session that is opened and never sends
// start does not hold the server's goroutine for ever: after the server's
// SessionStartTimeout the call ends with DeadlineExceeded naming start.
func TestSessionWithoutStartIsDropped(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{Server: server.Config{SessionStartTimeout: 300 * time.Millisecond}})
	c := srv.Client(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.Exec().Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Recv() // the client sends nothing and keeps its side open
	if s := status.Convert(err); s.Code() != codes.DeadlineExceeded || !strings.Contains(s.Message(), "start:") || ctx.Err() != nil {
		t.Fatalf("got %v, want the server's DeadlineExceeded naming start", err)
	}
}

// TestSessionTTY: a pseudo-terminal of the requested size, resizable,
// stderr merged into stdout, Ctrl-C as a byte.
func TestSessionTTY(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)

	t.Run("tty and merged streams", func(t *testing.T) {
		t.Parallel()
		var stdout, stderr bytes.Buffer
		ex, err := c.Session(context.Background(), ttyStart("tty; echo to-stderr >&2; echo $TERM", 24, 80), nil, &stdout, &stderr)
		if err != nil || client.ExitStatus(ex) != 0 {
			t.Fatalf("exit %v err %v", ex, err)
		}
		if !regexp.MustCompile(`^/dev/pts/\d+\r\nto-stderr\r\nxterm-256color\r\n$`).MatchString(stdout.String()) || stderr.Len() != 0 {
			t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
		}
	})

	t.Run("size then resize", func(t *testing.T) {
		t.Parallel()
		inR, inW := io.Pipe()
		defer inW.Close()
		out, lines := newLines(t)
		s, err := c.OpenSession(context.Background(), ttyStart("stty size; read x; stty size", 30, 100), inR)
		if err != nil {
			t.Fatal(err)
		}
		res := waitAsync(s, out, io.Discard)
		waitLine(t, lines, "^30 100$")
		if err := s.Resize(40, 120); err != nil {
			t.Fatal(err)
		}
		// The resize goes before the line below: one sender, control first.
		if _, err := io.WriteString(inW, "x\r"); err != nil {
			t.Fatal(err)
		}
		waitLine(t, lines, "^40 120$")
		if r := <-res; r.err != nil || client.ExitStatus(r.ex) != 0 {
			t.Fatalf("exit %v err %v", r.ex, r.err)
		}
	})

	t.Run("ctrl-c is a byte", func(t *testing.T) {
		t.Parallel()
		inR, inW := io.Pipe()
		defer inW.Close()
		out, lines := newLines(t)
		s, err := c.OpenSession(context.Background(), ttyStart("echo ready; exec sleep 100", 24, 80), inR)
		if err != nil {
			t.Fatal(err)
		}
		res := waitAsync(s, out, io.Discard)
		waitLine(t, lines, "^ready$")
		if _, err := inW.Write([]byte{3}); err != nil {
			t.Fatal(err)
		}
		if r := <-res; r.err != nil || r.ex.GetSignal() != "INT" || client.ExitStatus(r.ex) != 130 {
			t.Fatalf("exit %v err %v, want killed by INT", r.ex, r.err)
		}
	})

	t.Run("stdin EOF is ^D", func(t *testing.T) {
		t.Parallel()
		var stdout bytes.Buffer
		ex, err := c.Session(context.Background(), ttyStart("stty -echo; cat; echo end", 24, 80), strings.NewReader("abc\n"), &stdout, io.Discard)
		if err != nil || client.ExitStatus(ex) != 0 || !strings.HasSuffix(stdout.String(), "abc\r\nend\r\n") {
			t.Fatalf("exit %v err %v stdout %q", ex, err, stdout.String())
		}
	})
}

// countingReader is endless stdin that counts what was read from it.
type countingReader struct{ n atomic.Int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	clear(p)
	r.n.Add(int64(len(p)))
	return len(p), nil
}

// settle polls get until it stops growing and returns its value; it fails
// when get passes limit (the thing measured is not bounded).
func settle(t *testing.T, what string, limit int64, get func() int64) int64 {
	t.Helper()
	last, still := int64(-1), 0
	for range 600 {
		v := get()
		if v > limit {
			t.Fatalf("%s: %d bytes, over the bound of %d: not backpressured", what, v, limit)
		}
		if v == last && v > 0 {
			if still++; still == 10 {
				return v
			}
		} else {
			still = 0
		}
		last = v
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: never settled (last %d)", what, last)
	return 0
}

// TestSessionBackpressure: a command that never reads stdin holds the
// client back; a client that never reads output holds the command back.
// What is in flight is bounded by the pipe, a chunk or two and HTTP/2's
// windows (gRPC's BDP estimate grows those to 16 MiB at most).
func TestSessionBackpressure(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	const limit = 48 << 20

	t.Run("stdin", func(t *testing.T) {
		t.Parallel()
		in := &countingReader{}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := c.OpenSession(ctx, shellStart("echo ready; exec sleep 100"), in)
		if err != nil {
			t.Fatal(err)
		}
		out, lines := newLines(t)
		res := waitAsync(s, out, io.Discard)
		waitLine(t, lines, "^ready$")
		n := settle(t, "stdin read by the client", limit, in.n.Load)
		t.Logf("stdin in flight when settled: %d bytes", n)
		// A signal now waits behind the unread stdin: the session says so
		// (the sender holds at most one signal besides the queued one), and
		// the caller ends the call instead; the server kills the command.
		backlog := false
		for range 3 {
			if err := s.Signal(rexecv1.Signal_SIGNAL_INT); errors.Is(err, client.ErrSignalBacklog) {
				backlog = true
				break
			}
		}
		if !backlog {
			t.Error("signals behind unread stdin were all accepted: want ErrSignalBacklog")
		}
		cancel()
		if r := <-res; status.Code(r.err) != codes.Canceled {
			t.Fatalf("exit %v err %v, want Canceled", r.ex, r.err)
		}
	})
}

func TestSessionOutputBackpressure(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	c := srv.Client(t, nil)
	const limit = 48 << 20
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := c.Exec().Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&rexecv1.SessionRequest{Msg: &rexecv1.SessionRequest_Start{Start: shellStart("exec cat /dev/zero")}}); err != nil {
		t.Fatal(err)
	}
	m, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	pid := m.GetEvent().GetStarted().GetPid()
	if pid == 0 {
		t.Fatalf("first event %v, want started", m)
	}
	// Read no more: the command must stop writing.
	wchar := func() int64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
		if err != nil {
			t.Fatalf("reading the command's io counters: %v", err)
		}
		m := regexp.MustCompile(`(?m)^wchar: (\d+)$`).FindSubmatch(b)
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		return n
	}
	n := settle(t, "output written by the command", limit, wchar)
	t.Logf("output in flight when settled: %d bytes", n)
	cancel()
	for range 100000 {
		if _, err := st.Recv(); err != nil {
			break
		}
	}
}
