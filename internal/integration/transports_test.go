package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/rawsock"
	"github.com/rexec/rexec/runner"
)

// transport is one way to run a command: gRPC through client, or the raw
// socket through rawsock. Every case below runs against both.
type transport struct {
	name string
	run  func(ctx context.Context, req *rexecv1.RunRequest, stdout, stderr io.Writer) (*rexecv1.Exited, error)
	echo func(ctx context.Context, msg string, upper bool) (string, error)
}

func transports(t *testing.T, srv *testenv.Server) []transport {
	grpcClient := srv.Client(t, nil)
	// A raw connection runs one command at a time, and a cancelled call
	// closes it: each call dials its own, as a CLI run does.
	dialRaw := func() (*rawsock.Client, error) {
		return rawsock.Dial(context.Background(), srv.RawAddr, srv.Key)
	}
	return []transport{
		{"grpc", grpcClient.Run, grpcClient.Echo},
		{"raw",
			func(ctx context.Context, req *rexecv1.RunRequest, stdout, stderr io.Writer) (*rexecv1.Exited, error) {
				c, err := dialRaw()
				if err != nil {
					return nil, err
				}
				defer c.Close()
				return c.Run(ctx, req, stdout, stderr)
			},
			func(ctx context.Context, msg string, upper bool) (string, error) {
				c, err := dialRaw()
				if err != nil {
					return "", err
				}
				defer c.Close()
				return c.Echo(ctx, msg, upper)
			}},
	}
}

func TestTransportsEndToEnd(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{Raw: true})
	cases := []struct {
		name           string
		req            *rexecv1.RunRequest
		status         int
		stdout, stderr string
		signal         string
	}{
		{"zero", &rexecv1.RunRequest{Shell: "true"}, 0, "", "", ""},
		{"one", &rexecv1.RunRequest{Shell: "false"}, 1, "", "", ""},
		{"seven, both streams apart", &rexecv1.RunRequest{Shell: "echo out; echo err >&2; exit 7"}, 7, "out\n", "err\n", ""},
		{"255", &rexecv1.RunRequest{Shell: "exit 255"}, 255, "", "", ""},
		{"killed by signal", &rexecv1.RunRequest{Shell: "kill -TERM $$"}, 128 + 15, "", "", "TERM"},
		{"killed by KILL", &rexecv1.RunRequest{Shell: "echo before; kill -KILL $$"}, 128 + 9, "before\n", "", "KILL"},
		{"argv, no shell", &rexecv1.RunRequest{Argv: []string{"echo", "a  b", "$HOME"}}, 0, "a  b $HOME\n", "", ""},
		{"stdin", &rexecv1.RunRequest{Shell: "tr a-z A-Z", Stdin: []byte("hello")}, 0, "HELLO", "", ""},
		{"env and dir", &rexecv1.RunRequest{Shell: "echo $X; pwd", Env: []string{"X=1"}, Dir: "/tmp"}, 0, "1\n/tmp\n", "", ""},
		{"not found", &rexecv1.RunRequest{Argv: []string{"rexec-nope", "x"}}, 127, "", "rexec: exec: \"rexec-nope\": executable file not found in $PATH\n", ""},
		{"timeout", &rexecv1.RunRequest{Shell: "sleep 5", Timeout: durationpb.New(200 * time.Millisecond)}, 128 + 15, "", "", "TERM"},
	}
	for _, tr := range transports(t, srv) {
		for _, tc := range cases {
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				var stdout, stderr bytes.Buffer
				ex, err := tr.run(context.Background(), tc.req, &stdout, &stderr)
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				if got := client.ExitStatus(ex); got != tc.status || ex.GetSignal() != tc.signal {
					t.Errorf("status %d signal %q, want %d %q", got, ex.GetSignal(), tc.status, tc.signal)
				}
				if stdout.String() != tc.stdout || stderr.String() != tc.stderr {
					t.Errorf("stdout %q stderr %q, want %q %q", stdout.String(), stderr.String(), tc.stdout, tc.stderr)
				}
				if tc.name == "timeout" && !ex.GetTimedOut() {
					t.Error("timed_out not set")
				}
			})
		}
	}
}

func TestTransportsRefuseBadRequests(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{Raw: true})
	for _, tr := range transports(t, srv) {
		for _, tc := range []struct {
			req   *rexecv1.RunRequest
			field string // both transports name it
			raw   string // the raw error, whole
		}{
			{&rexecv1.RunRequest{}, "command", "rexec: invalid request: command: empty"},
			{&rexecv1.RunRequest{Shell: "true", Dir: "/no/such"}, "dir", `rexec: dir: "/no/such": no such directory on the server (server said FailedPrecondition)`},
			{&rexecv1.RunRequest{Shell: "true", Env: []string{"NOEQUALS"}}, "env", `rexec: invalid request: env: env[0] "NOEQUALS" is not KEY=VALUE (server said InvalidArgument)`},
		} {
			_, err := tr.run(context.Background(), tc.req, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.field+":") {
				t.Errorf("%s %v: err %v, want one naming %q", tr.name, tc.req, err, tc.field)
			} else if tr.name == "raw" && !strings.HasPrefix(err.Error(), tc.raw) {
				t.Errorf("raw %v: %q, want %q", tc.req, err, tc.raw)
			}
		}
		if out, err := tr.echo(context.Background(), "héllo", true); err != nil || out != "HÉLLO" {
			t.Errorf("%s echo after bad requests: %q %v", tr.name, out, err)
		}
	}
}

func TestTransportsLargeOutputSHA256(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{Raw: true})
	data := make([]byte, 16<<20)
	rand.Read(data)
	path := t.TempDir() + "/big"
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	for _, tr := range transports(t, srv) {
		h := sha256.New()
		ex, err := tr.run(context.Background(), &rexecv1.RunRequest{Argv: []string{"cat", path}}, h, io.Discard)
		if err != nil || ex.GetExitCode() != 0 {
			t.Fatalf("%s: %v %v", tr.name, ex, err)
		}
		if !bytes.Equal(h.Sum(nil), want[:]) || ex.GetStdoutBytes() != uint64(len(data)) {
			t.Errorf("%s: 16 MiB sha256 differs (stdout_bytes %d)", tr.name, ex.GetStdoutBytes())
		}
	}
}

// lineWriter hands the first line written to it on a channel.
type lineWriter struct {
	once  sync.Once
	buf   bytes.Buffer
	first chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if i := bytes.IndexByte(w.buf.Bytes(), '\n'); i >= 0 {
		w.once.Do(func() { w.first <- w.buf.String()[:i] })
	}
	return len(p), nil
}

// TestTransportsCancelKillsGroup: cancelling the call (the raw client closes
// its connection) kills the shell and the background child it started.
func TestTransportsCancelKillsGroup(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{Raw: true})
	for _, tr := range transports(t, srv) {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			w := &lineWriter{first: make(chan string, 1)}
			done := make(chan error, 1)
			go func() {
				_, err := tr.run(ctx, &rexecv1.RunRequest{Shell: "sleep 300 & echo $$ $!; sleep 300"}, w, io.Discard)
				done <- err
			}()
			var pids []int
			select {
			case line := <-w.first:
				for _, f := range strings.Fields(line) {
					n, err := strconv.Atoi(f)
					if err != nil {
						t.Fatalf("pid line %q", line)
					}
					pids = append(pids, n)
				}
			case <-time.After(20 * time.Second):
				cancel()
				t.Fatal("no pid line")
			}
			cancel()
			if err := <-done; err == nil {
				t.Error("a cancelled run returned no error")
			}
			for _, pid := range pids {
				if !gone(pid, 10*time.Second) {
					t.Errorf("pid %d still alive after the call was cancelled", pid)
				}
			}
		})
	}
}

// gone waits (bounded) until pid no longer runs: absent, or a zombie.
func gone(pid int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		if i := bytes.LastIndexByte(b, ')'); i > 0 && len(b) > i+2 && b[i+2] == 'Z' {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// TestTransportsShareOneLimit: gRPC and raw run on one runner, so one
// --max-concurrent bounds both.
func TestTransportsShareOneLimit(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{Raw: true, Runner: runner.Options{MaxConcurrent: 1}})
	trs := transports(t, srv)
	for i, holder := range trs {
		other := trs[1-i]
		t.Run(holder.name+" holds the slot", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			w := &lineWriter{first: make(chan string, 1)}
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = holder.run(ctx, &rexecv1.RunRequest{Shell: "echo up; sleep 30"}, w, io.Discard)
			}()
			select {
			case <-w.first:
			case <-time.After(20 * time.Second):
				t.Error("the holding command did not start")
			}
			_, err := other.run(context.Background(), &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), "too many commands") {
				t.Errorf("%s while %s holds the only slot: %v, want too many commands", other.name, holder.name, err)
			}
			cancel()
			<-done
			// The client returns at once; the server frees the slot once
			// the group is dead. Wait for that (bounded) before the next.
			for deadline := time.Now().Add(10 * time.Second); srv.Runner.Running() > 0 && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
