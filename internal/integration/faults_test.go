package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/bench"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/server"
)

// cliRun starts the real rexec binary against d running shell, and returns
// once the command has printed its first line ("up"); the rest of its
// stdout is discarded, its stderr collected.
func cliRun(t *testing.T, bin string, d *bench.Daemon, shell string) (*exec.Cmd, *bytes.Buffer, <-chan error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "rexec"), "--addr", d.Addr, "--key-file", d.KeyFile, "run", "--", shell)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	up := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		up <- sc.Scan() && sc.Text() == "up"
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case ok := <-up:
		if !ok {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("the command did not print up; stderr %q", stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("the command did not start within 30s")
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return cmd, &stderr, done
}

func readPgid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	pgid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pgid <= 0 {
		t.Fatalf("pgid file %s: %q %v", path, b, err)
	}
	return pgid
}

// TestServerKilledMidStream: SIGKILL to rexecd while `rexec run` streams.
// rexecd's guard kills the command's group; the CLI, which cannot tell a
// dead server from a broken network, redials. Restarted on the same
// address, key file and state directory, rexecd has recorded the command as
// ended by the shutdown (its guard sent KILL): the CLI resumes, says so in
// one line and that the server killed the command, and exits 137 — no hang,
// no second guess. A new `rexec run` is served at once (first try).
func TestServerKilledMidStream(t *testing.T) {
	t.Parallel()
	bin := binaries(t)
	ctx := context.Background()
	state := t.TempDir()
	d, err := bench.StartDaemon(ctx, bin, "--state-dir", state)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	pgidFile := filepath.Join(t.TempDir(), "pgid")
	cli, stderr, done := cliRun(t, bin, d, "echo $$ > "+pgidFile+"; echo up; sleep 300 & wait")
	pgid := readPgid(t, pgidFile)
	defer syscall.Kill(-pgid, syscall.SIGKILL) // should the guard fail

	if err := syscall.Kill(d.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// rexecd's guard (runner.Guard) kills the group once the kernel has
	// closed the dead server's end of its pipe.
	took := testenv.WaitGroupGone(t, pgid, 30*time.Second)
	t.Logf("the SIGKILLed server's command group was gone %v after the kill", took.Round(time.Millisecond))

	// Restart on the same address with the same key file and journal.
	d2, err := bench.StartDaemon(ctx, bin, "--listen", d.Addr, "--keys", d.KeyFile, "--state-dir", state)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Stop()
	if d2.Addr != d.Addr {
		t.Fatalf("restarted on %s, want %s", d2.Addr, d.Addr)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 137 {
			t.Errorf("rexec exited with %v, want status 137 (the KILL rexecd's guard sent)", err)
		}
		t.Logf("rexec exited %v after rexecd's SIGKILL: %q", time.Since(killed).Round(time.Millisecond), stderr.String())
	case <-time.After(30 * time.Second):
		_ = cli.Process.Kill()
		<-done
		t.Fatal("rexec still runs 30s after rexecd was killed and restarted: a hang")
	}
	lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "rexec: the connection to rexecd at "+d.Addr+" dropped") ||
		lines[1] != "rexec: the server shut down and killed the command" {
		t.Errorf("stderr %q: want one line saying the connection dropped and was resumed, one saying the server killed the command", stderr.String())
	}
	out, err := exec.Command(filepath.Join(bin, "rexec"), "--addr", d.Addr, "--key-file", d.KeyFile, "run", "--", "echo back").CombinedOutput()
	if err != nil || string(out) != "back\n" {
		t.Errorf("first rexec run after the restart: %v %q", err, out)
	}
}

// TestClientKilledNoServerGrowth: SIGKILL to the rexec CLI mid-stream, five
// times, against one real rexecd without a reconnect grace (with one, each
// command would wait for its client that long). Each time the command's
// whole group is gone, and the server's open fds come back to where they
// were.
func TestClientKilledNoServerGrowth(t *testing.T) {
	t.Parallel()
	bin := binaries(t)
	d, err := bench.StartDaemon(context.Background(), bin, "--kill-grace", "500ms", "--reconnect-grace", "0")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	// One call first, so that the listener and its pollers are in place.
	if out, err := exec.Command(filepath.Join(bin, "rexec"), "--addr", d.Addr, "--key-file", d.KeyFile, "run", "--", "true").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	base, err := bench.OpenFDs(d.Pid())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i := range 5 {
		pgidFile := filepath.Join(dir, "pgid"+strconv.Itoa(i))
		cli, _, done := cliRun(t, bin, d, "echo $$ > "+pgidFile+"; sleep 300 & sleep 300 & echo up; wait")
		pgid := readPgid(t, pgidFile)
		if err := cli.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-done
		took := testenv.WaitGroupGone(t, pgid, 30*time.Second)
		t.Logf("kill %d: group %d gone %v after the CLI's SIGKILL", i, pgid, took.Round(time.Millisecond))
	}
	var fds int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if fds, err = bench.OpenFDs(d.Pid()); err != nil || fds <= base {
			break
		}
	}
	if err != nil || fds > base {
		t.Errorf("server fds: %d before, %d after 5 killed clients (%v)", base, fds, err)
	}
	t.Logf("server fds: %d before, %d after 5 killed clients", base, fds)
}

// blackHole is a TCP proxy on loopback that forwards until Swallow; from
// then on it neither reads nor writes nor closes: a peer that vanished
// without a FIN or RST, as a pulled cable or a dead NAT entry looks.
type blackHole struct {
	lis      net.Listener
	target   string
	swallow  chan struct{}
	once     sync.Once
	mu       sync.Mutex
	conns    []net.Conn
	wg       sync.WaitGroup
	released chan struct{}
}

func newBlackHole(t *testing.T, target string) *blackHole {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{lis: lis, target: target, swallow: make(chan struct{}), released: make(chan struct{})}
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(b.close)
	return b
}

func (b *blackHole) Addr() string { return b.lis.Addr().String() }

// Swallow stops all forwarding, for good.
func (b *blackHole) Swallow() { b.once.Do(func() { close(b.swallow) }) }

func (b *blackHole) accept() {
	defer b.wg.Done()
	for {
		in, err := b.lis.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", b.target)
		if err != nil {
			in.Close()
			continue
		}
		b.mu.Lock()
		b.conns = append(b.conns, in, out)
		b.mu.Unlock()
		b.wg.Add(2)
		go b.pipe(in, out)
		go b.pipe(out, in)
	}
}

// pipe copies src to dst until Swallow; then it holds what it read and
// waits, reading nothing more, until the proxy is closed.
func (b *blackHole) pipe(dst, src net.Conn) {
	defer b.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-b.swallow:
			<-b.released
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (b *blackHole) close() {
	b.Swallow()
	close(b.released)
	b.lis.Close()
	b.mu.Lock()
	for _, c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// TestKeepaliveFindsBlackHole: the connection goes silent mid-call through a
// black-hole proxy. The server (keepalive 1s + 1s) finds the dead peer and
// kills the command's group; the client (keepalive 10s, gRPC's floor, + 2s)
// finds it too and the call fails Unavailable instead of hanging. The
// bounds asserted are generous; the log gives the times measured.
func TestKeepaliveFindsBlackHole(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{Server: server.Config{KeepaliveTime: time.Second, KeepaliveTimeout: time.Second}})
	hole := newBlackHole(t, srv.Addr)
	// Through the proxy, the server's own address is the authority.
	c, err := client.New(hole.Addr(), client.WithKey(srv.Key), client.WithAuthority(srv.Addr),
		client.WithDialOptions(grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 2 * time.Second})))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, pgid := testenv.StartRun(t, context.Background(), c.Exec(), &rexecv1.RunRequest{Shell: "sleep 300 & echo up; wait"})
	if _, err := st.Recv(); err != nil { // "up"
		t.Fatal(err)
	}
	hole.Swallow()
	start := time.Now()

	clientErr := make(chan error, 1)
	go func() {
		_, err := st.Recv()
		clientErr <- err
	}()
	took := testenv.WaitGroupGone(t, pgid, 20*time.Second)
	t.Logf("server side: command group gone %v after the black hole (keepalive 1s + 1s, kill grace 0.5s)", took.Round(time.Millisecond))
	waitLog(t, srv, "reason=cancelled", 5*time.Second)
	select {
	case err := <-clientErr:
		if status.Code(err) != codes.Unavailable {
			t.Errorf("client: %v, want Unavailable", err)
		}
		t.Logf("client side: call failed %v after the black hole (keepalive 10s + 2s): %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(60 * time.Second):
		t.Fatal("client: no error 60s after the black hole: keepalive did not find it")
	}
}

func waitLog(t *testing.T, srv *testenv.Server, want string, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(srv.Log.String(), want) {
			return
		}
	}
	t.Errorf("server log lacks %q after %v", want, within)
}
