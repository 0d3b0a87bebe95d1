package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/netfault"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/journal"
	"github.com/rexec/rexec/runner"
	"github.com/rexec/rexec/server"
)

// Keepalives short enough that a black hole is found in about 2 s.
var quickKeepalive = server.Config{KeepaliveTime: time.Second, KeepaliveTimeout: time.Second, KeepaliveMinTime: 100 * time.Millisecond}

func quickClient(t *testing.T, addr string, key *client.Option, authority string) *client.Client {
	t.Helper()
	opts := []client.Option{*key, client.WithAuthority(authority), client.WithKeepalive(time.Second), client.WithKeepaliveTimeout(time.Second),
		// A small window, so that little is in flight when the path breaks:
		// every fault breaks a stream with output still to come.
		client.WithWindow(256 << 10)}
	c, err := client.New(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// fault is one round: what the proxy does, at which point of the run.
type fault struct {
	kind string // "reset" or "blackhole"
	at   int64  // progress (stdin bytes read + stdout bytes written) at which it strikes
}

// faultPlan places n resets and n black holes at random points of a run
// that makes total bytes of progress, none in its last tenth (so that
// every fault breaks a stream with work still to do).
func faultPlan(rng *rand.Rand, n int, total int64) []fault {
	var fs []fault
	for _, kind := range []string{"reset", "blackhole"} {
		for range n {
			fs = append(fs, fault{kind, total/20 + rng.Int64N(total*8/10)})
		}
	}
	slices.SortFunc(fs, func(a, b fault) int { return int(a.at - b.at) })
	return fs
}

// injector strikes the planned faults as the run progresses: the fault
// begins inside the Read or Write that reached its point, so it breaks the
// stream mid-way; the path is restored a little later (a black hole after
// the keepalive has found it).
type injector struct {
	p        *netfault.Proxy
	rng      *rand.Rand
	mu       sync.Mutex
	plan     []fault
	progress int64
	struck   []string
	restored sync.WaitGroup
	busy     atomic.Bool // a fault is on; the next waits for its restore
	// resumes counts the client's resumes; the next fault waits for the
	// resume that follows the last one too, so that two faults never
	// fall into one outage (where one resume answers both, as it should).
	resumes atomic.Int32
}

func (in *injector) advance(n int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.progress += int64(n)
	for len(in.plan) > 0 && in.progress >= in.plan[0].at && !in.busy.Load() && int(in.resumes.Load()) >= len(in.struck) {
		f := in.plan[0]
		in.plan = in.plan[1:]
		in.struck = append(in.struck, f.kind)
		in.busy.Store(true)
		hold := time.Duration(50+in.rng.IntN(250)) * time.Millisecond
		if f.kind == "reset" {
			in.p.Reset()
		} else {
			// The server's keepalive (1 s + 1 s) finds it and closes the
			// connection; the client learns of it once the path passes
			// again (gRPC's client keepalive pings every 10 s at most).
			in.p.Blackhole()
			hold = 3*time.Second + hold
		}
		in.restored.Add(1)
		go func() {
			defer in.restored.Done()
			time.Sleep(hold)
			in.p.Restore()
			in.busy.Store(false)
		}()
	}
}

type progressReader struct {
	r  io.Reader
	in *injector
}

func (r progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.in.advance(n)
	return n, err
}

type progressWriter struct {
	w  io.Writer
	in *injector
}

func (w progressWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	w.in.advance(n)
	return n, err
}

// TestResumeThroughFaults: a loopback proxy between client and server
// resets and black-holes the connection at random points of a session —
// while stdin streams to the command and while its output streams back —
// and restores it. The client resumes each time; stdout and stderr equal
// an uninterrupted run's (sha256), the command read its stdin exactly once
// (its own sha256 of it is in stdout), no seq is duplicated or missing (the
// client checks every seq), and the exit status is exact. CI runs 3 rounds
// of each; REXEC_LONG=1 runs 10 of each.
func TestResumeThroughFaults(t *testing.T) {
	t.Parallel()
	rounds := 3
	if os.Getenv("REXEC_LONG") != "" {
		rounds = 10
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (REXEC_FAULT_SEED repeats a run)", seed)
	if s := os.Getenv("REXEC_FAULT_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	srv := testenv.StartServer(t, testenv.Options{Journal: journal.Options{ReconnectGrace: 20 * time.Second}, Server: quickKeepalive})
	p, err := netfault.Start(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	withKey := client.WithKey(srv.Key)
	c := quickClient(t, p.Addr(), &withKey, srv.Addr)

	// stdin: 12 MiB of pseudo-random bytes. The command copies it to
	// stderr and hashes it, then writes 12 MiB of numbered lines.
	input := make([]byte, 12<<20)
	for i := range input {
		input[i] = byte(rng.Uint32())
	}
	const lines = 1_200_000
	cmd := fmt.Sprintf(`tee /dev/stderr | sha256sum; awk 'BEGIN{for(i=1;i<=%d;i++) printf "line %%09d\n", i}'; exit 42`, lines)
	var wantOut bytes.Buffer
	fmt.Fprintf(&wantOut, "%x  -\n", sha256.Sum256(input))
	for i := 1; i <= lines; i++ {
		fmt.Fprintf(&wantOut, "line %09d\n", i)
	}

	inj := &injector{p: p, rng: rng, plan: faultPlan(rng, rounds, int64(len(input)+wantOut.Len()))}
	var stdout, stderr bytes.Buffer
	start := time.Now()
	s, err := c.OpenResumableSession(context.Background(), &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Shell: cmd}},
		progressReader{bytes.NewReader(input), inj}, client.ResumeOptions{OnResume: func(r client.Resumed) {
			inj.resumes.Add(1)
			t.Logf("resumed from seq %d after %d attempts, %v: %v", r.FromSeq, r.Attempts, r.Took.Round(time.Millisecond), r.Cause)
		}})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := s.Wait(progressWriter{&stdout, inj}, &stderr)
	inj.restored.Wait()
	if err != nil {
		t.Fatalf("after faults %v: %v", inj.struck, err)
	}
	t.Logf("%d faults (%v), %d resumes, %v", len(inj.struck), inj.struck, inj.resumes.Load(), time.Since(start).Round(time.Millisecond))
	if got, want := sha256.Sum256(stdout.Bytes()), sha256.Sum256(wantOut.Bytes()); got != want {
		t.Errorf("stdout: %d bytes, sha256 %x; an uninterrupted run's: %d bytes, %x", stdout.Len(), got, wantOut.Len(), want)
	}
	if got, want := sha256.Sum256(stderr.Bytes()), sha256.Sum256(input); got != want {
		t.Errorf("stderr (the command's copy of its stdin): %d bytes, sha256 %x; stdin: %d bytes, %x", stderr.Len(), got, len(input), want)
	}
	if ex.GetExitCode() != 42 || ex.GetReason() != rexecv1.EndReason_END_REASON_EXITED {
		t.Errorf("exited %v, want 42", ex)
	}
	// A fault strikes only after the last one's resume: one that broke
	// nothing would hold back the rest.
	if len(inj.struck) != 2*rounds || int(inj.resumes.Load()) < len(inj.struck) {
		t.Errorf("%d faults struck of %d planned, %d resumes: want one resume per fault at least", len(inj.struck), 2*rounds, inj.resumes.Load())
	}
	// The journal agrees: one execution, every output event held or let go
	// in order, the exit recorded.
	list, _ := srv.Journal.List(journal.Caller{All: true}, true, 0)
	if len(list) != 1 || list[0].Exit == nil || list[0].Exit.ExitCode != 42 {
		t.Errorf("journal: %+v", list)
	}
}

// TestGracePassesWithoutReconnect: the path black-holes for good; the
// client gives up, the server finds the connection dead by keepalive, keeps
// the command for its grace, then kills its whole group (reason
// DISCONNECTED, sent TERM), and nothing is left.
func TestGracePassesWithoutReconnect(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{Journal: journal.Options{ReconnectGrace: time.Second}, Server: quickKeepalive})
	p, err := netfault.Start(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	withKey := client.WithKey(srv.Key)
	c := quickClient(t, p.Addr(), &withKey, srv.Addr)
	pr, pw := io.Pipe()
	defer pw.Close()
	s, err := c.OpenResumableSession(context.Background(), &rexecv1.SessionStart{Command: &rexecv1.RunRequest{
		Shell: "sleep 300 & sleep 300 & echo ready; cat",
	}}, pr, client.ResumeOptions{GiveUp: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		_, err := s.Wait(&lineWriter{first: lines}, io.Discard)
		done <- err
	}()
	select {
	case <-lines:
	case <-time.After(10 * time.Second):
		t.Fatal("no output")
	}
	id := s.ExecutionID()
	x, err := srv.Journal.Lookup(id, journal.Caller{All: true})
	if err != nil {
		t.Fatal(err)
	}
	pid := x.Info().Pid
	p.Blackhole()
	holed := time.Now()
	// The server finds the connection dead by its keepalive (1 s + 1 s),
	// waits its grace (1 s), then kills the group.
	testenv.WaitGroupGone(t, pid, 15*time.Second)
	t.Logf("the group was gone %v after the black hole", time.Since(holed).Round(time.Millisecond))
	// The client finds it by its own keepalive (gRPC's client pings at most
	// every 10 s), tries for GiveUp, and says what to do.
	var rerr *client.ResumeError
	select {
	case err := <-done:
		if !errors.As(err, &rerr) || rerr.ExecutionID != id {
			t.Fatalf("Wait: %v, want a ResumeError for %s", err, id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the client never gave up")
	}
	t.Logf("the client gave up %v after the black hole", time.Since(holed).Round(time.Millisecond))
	<-x.Done()
	if e := x.Info().Exit; e.Reason != runner.ReasonDisconnected || e.SentSignalName != "TERM" {
		t.Errorf("exit %+v: want reason disconnected, TERM sent", e)
	}
}
