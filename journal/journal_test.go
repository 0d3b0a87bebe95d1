package journal_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/journal"
	"github.com/rexec/rexec/runner"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openJournal(t *testing.T, o journal.Options) *journal.Journal {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	j, err := journal.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func newRunner() *runner.Runner {
	return runner.New(runner.Options{KillGrace: 300 * time.Millisecond, DrainGrace: 300 * time.Millisecond})
}

// collected is what a reader got.
type collected struct {
	stdout, stderr bytes.Buffer
	seqs           []uint64
	gaps           []journal.Gap
	started        bool
	exit           *runner.Result
	stdin          []journal.StdinState
}

func (c *collected) add(t testing.TB, it journal.Item) {
	t.Helper()
	switch it.Kind {
	case journal.ItemStarted:
		c.started = true
	case journal.ItemOutput:
		if n := len(c.seqs); n > 0 && it.Seq != c.seqs[n-1]+1 && len(c.gaps) == 0 {
			t.Fatalf("seq %d after %d", it.Seq, c.seqs[n-1])
		}
		c.seqs = append(c.seqs, it.Seq)
		if it.Stream == runner.Stderr {
			c.stderr.Write(it.Data)
		} else {
			c.stdout.Write(it.Data)
		}
	case journal.ItemGap:
		c.gaps = append(c.gaps, it.Gap)
	case journal.ItemExited:
		c.exit = it.Exit
	}
	if it.Stdin != nil {
		c.stdin = append(c.stdin, *it.Stdin)
	}
}

// drain reads a until io.EOF.
// readAll reads x's journal with a Reader from seq from (follow: until
// its end) and collects what it gets.
func readAll(t testing.TB, x *journal.Execution, from uint64, follow bool) collected {
	t.Helper()
	r := x.Reader(from, follow)
	defer r.Close()
	var c collected
	for {
		it, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return c
		}
		if err != nil {
			t.Fatal(err)
		}
		c.add(t, it)
	}
}

func drainAttachment(t testing.TB, a *journal.Attachment, c *collected) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		it, err := a.Next(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		c.add(t, it)
		if it.Kind == journal.ItemOutput {
			a.Ack(it.Seq)
		}
	}
}

func TestCallExecutionStreamsInOrder(t *testing.T) {
	t.Parallel()
	j := openJournal(t, journal.Options{})
	x, a, err := j.Start(context.Background(), newRunner(), runner.Spec{Shell: "seq 1 200000; echo err >&2; exit 3"},
		journal.StartOptions{Owner: "k", Lifetime: journal.Call, Attach: true})
	if err != nil {
		t.Fatal(err)
	}
	var c collected
	if err := drainAttachment(t, a, &c); err != nil {
		t.Fatal(err)
	}
	a.Close(nil)
	want := seqOutput(200000)
	if !c.started || c.stdout.String() != want || c.stderr.String() != "err\n" || c.exit == nil || c.exit.ExitCode != 3 {
		t.Fatalf("started %v, %d stdout bytes (want %d), stderr %q, exit %+v", c.started, c.stdout.Len(), len(want), c.stderr.String(), c.exit)
	}
	<-x.Done()
	// The journal has it all, and a reader from the start gets the same.
	rc := readAll(t, x, 0, false)
	if rc.stdout.String() != want || rc.stderr.String() != "err\n" || rc.exit == nil || rc.started {
		t.Fatalf("reader after the end: %d bytes, stderr %q, exit %v, started %v", rc.stdout.Len(), rc.stderr.String(), rc.exit, rc.started)
	}
	in := x.Info()
	if in.Exit == nil || in.FirstSeq != 1 || in.LastSeq != rc.seqs[len(rc.seqs)-1] || in.Owner != "k" || in.Command == "" {
		t.Errorf("info %+v", in)
	}
}

func TestCallEndsWithItsStream(t *testing.T) {
	t.Parallel()
	j := openJournal(t, journal.Options{})
	x, a, err := j.Start(context.Background(), newRunner(), runner.Spec{Shell: "sleep 300 & sleep 300; echo never"},
		journal.StartOptions{Owner: "k", Lifetime: journal.Call, Attach: true})
	if err != nil {
		t.Fatal(err)
	}
	pid := x.Info().Pid
	a.Close(errors.New("client went away"))
	testenv.WaitGroupGone(t, pid, 5*time.Second)
	<-x.Done()
	if in := x.Info(); in.Exit.Reason != runner.ReasonCancelled {
		t.Errorf("reason %v, want cancelled", in.Exit.Reason)
	}
}

// TestResumableSurvivesABreak: the attachment goes away mid-stream without
// acknowledging the last output; a new one from the last written seq gets
// the rest exactly once, and the exit.
func TestResumableSurvivesABreak(t *testing.T) {
	t.Parallel()
	j := openJournal(t, journal.Options{ReconnectGrace: 10 * time.Second})
	x, a, err := j.Start(context.Background(), newRunner(), runner.Spec{Shell: "seq 1 300000; exit 4"},
		journal.StartOptions{Owner: "k", Lifetime: journal.Resumable, Attach: true})
	if err != nil {
		t.Fatal(err)
	}
	var c collected
	ctx := context.Background()
	for len(c.seqs) < 5 {
		it, err := a.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.add(t, it)
	}
	// Sent but "lost on the wire": the client never wrote it.
	lost, err := a.Next(ctx)
	if err != nil || lost.Kind != journal.ItemOutput {
		t.Fatalf("next: %v %v", lost.Kind, err)
	}
	a.Close(nil)
	if in := x.Info(); in.Attached || in.GraceEnds.IsZero() || in.Exit != nil {
		t.Fatalf("after the break: %+v, want running, unattached, in its grace", in)
	}
	b, err := x.Attach(c.seqs[len(c.seqs)-1] + 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := drainAttachment(t, b, &c); err != nil {
		t.Fatal(err)
	}
	b.Close(nil)
	want := seqOutput(300000)
	if c.stdout.String() != want || c.exit == nil || c.exit.ExitCode != 4 || len(c.gaps) != 0 {
		t.Fatalf("got %d bytes (want %d), exit %+v, gaps %v", c.stdout.Len(), len(want), c.exit, c.gaps)
	}
}

func TestGracePassesWithoutAClient(t *testing.T) {
	t.Parallel()
	j := openJournal(t, journal.Options{ReconnectGrace: 300 * time.Millisecond})
	x, a, err := j.Start(context.Background(), newRunner(), runner.Spec{Shell: "sleep 300 & sleep 300"},
		journal.StartOptions{Owner: "k", Lifetime: journal.Resumable, Attach: true})
	if err != nil {
		t.Fatal(err)
	}
	pid := x.Info().Pid
	a.Close(nil)
	testenv.WaitGroupGone(t, pid, 5*time.Second)
	<-x.Done()
	in := x.Info()
	if in.Exit.Reason != runner.ReasonDisconnected || in.Exit.SentSignalName != "TERM" {
		t.Errorf("exit %+v: want reason disconnected, sent TERM", in.Exit)
	}
}

// TestBackPressureWithoutAClient: a resumable command's output fills the
// journal's bound while nobody is attached, then its pipe blocks; nothing is
// lost when a client comes back.
func TestBackPressureWithoutAClient(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j := openJournal(t, journal.Options{Dir: filepath.Join(dir, "j"), MaxBytes: 1 << 20, ReconnectGrace: time.Minute})
	progress := filepath.Join(dir, "progress")
	// 400 × 64 KiB = 25 MiB, recording each step.
	x, _, err := j.Start(context.Background(), newRunner(), runner.Spec{
		Shell: "i=0; while [ $i -lt 400 ]; do head -c 65536 /dev/urandom; i=$((i+1)); echo $i > " + progress + "; done",
	}, journal.StartOptions{Owner: "k", Lifetime: journal.Resumable})
	if err != nil {
		t.Fatal(err)
	}
	steps := waitStable(t, progress)
	held := x.Info().Bytes
	t.Logf("blocked after %d steps of 64 KiB, journal holds %d bytes", steps, held)
	// The bound (1 MiB), the runner's chunk, the pipe (1 MiB) and a step.
	if steps >= 400 || int64(steps)*65536 > 4<<20 || held > 1<<20 {
		t.Fatalf("%d steps written, %d bytes held: the command was not held back at the bound", steps, held)
	}
	a, err := x.Attach(1)
	if err != nil {
		t.Fatal(err)
	}
	var c collected
	if err := drainAttachment(t, a, &c); err != nil {
		t.Fatal(err)
	}
	a.Close(nil)
	if c.stdout.Len() != 400*65536 || c.exit == nil || c.exit.ExitCode != 0 || len(c.gaps) != 0 {
		t.Fatalf("got %d bytes, exit %+v, gaps %v", c.stdout.Len(), c.exit, c.gaps)
	}
	if in := x.Info(); in.EvictedBytes == 0 || in.FirstSeq == 1 {
		t.Errorf("acknowledged output was not evicted to stay in the bound: %+v", in)
	}
}

// waitStable waits until the integer in path stops changing for 300 ms.
func waitStable(t *testing.T, path string) int {
	t.Helper()
	last, stable := -1, 0
	for range 400 {
		time.Sleep(50 * time.Millisecond)
		b, _ := os.ReadFile(path)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if n == last && n > 0 {
			if stable++; stable == 6 {
				return n
			}
		} else {
			last, stable = n, 0
		}
	}
	t.Fatalf("progress never stopped at %d", last)
	return 0
}

// TestDetachedIsNeverBlocked: past the bound, the oldest output goes,
// counted, and a reader sees the gap.
func TestDetachedIsNeverBlocked(t *testing.T) {
	t.Parallel()
	j := openJournal(t, journal.Options{MaxBytes: 1 << 20})
	x, a, err := j.Start(context.Background(), newRunner(), runner.Spec{Shell: "head -c 20000000 /dev/zero; echo end"},
		journal.StartOptions{Owner: "k", Lifetime: journal.Detached})
	if err != nil || a != nil {
		t.Fatal(a, err)
	}
	select {
	case <-x.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("a detached command with no reader did not finish")
	}
	in := x.Info()
	if in.Exit.ExitCode != 0 || in.Bytes > 1<<20 || in.EvictedBytes < 18000000 || in.FirstSeq <= 1 {
		t.Fatalf("info %+v: want the newest MiB held and the rest evicted, counted", in)
	}
	c := readAll(t, x, 1, false)
	if len(c.gaps) != 1 || c.gaps[0].FirstSeq != 1 || c.gaps[0].LastSeq != in.FirstSeq-1 || c.gaps[0].Bytes != in.EvictedBytes {
		t.Fatalf("gaps %+v, info %+v", c.gaps, in)
	}
	if int64(c.stdout.Len())+in.EvictedBytes != 20000004 || !strings.HasSuffix(c.stdout.String(), "end\n") {
		t.Fatalf("read %d bytes + %d evicted, want 20000004", c.stdout.Len(), in.EvictedBytes)
	}
	if st := j.Stats(); st.EvictedBytes != in.EvictedBytes {
		t.Errorf("journal stats %+v", st)
	}
}

func runToEnd(t *testing.T, j *journal.Journal, owner, shell string) *journal.Execution {
	t.Helper()
	x, _, err := j.Start(context.Background(), newRunner(), runner.Spec{Shell: shell}, journal.StartOptions{Owner: owner, Lifetime: journal.Detached})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-x.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("did not end")
	}
	return x
}

// TestTotalBoundEvictsOldestEnded: past the total, whole ended executions
// go, oldest first, counted.
func TestTotalBoundEvictsOldestEnded(t *testing.T) {
	t.Parallel()
	j := openJournal(t, journal.Options{MaxTotal: 3 << 20, MaxBytes: 2 << 20})
	var xs []*journal.Execution
	for i := range 5 {
		xs = append(xs, runToEnd(t, j, "k", fmt.Sprintf("head -c 1000000 /dev/zero; echo %d", i)))
	}
	st := j.Stats()
	if st.Bytes > 3<<20 || st.Deleted < 2 || st.Executions+int(st.Deleted) != 5 {
		t.Fatalf("stats %+v: want at most 3 MiB held and the rest deleted, counted", st)
	}
	for i, x := range xs {
		_, err := j.Lookup(x.ID(), journal.Caller{KeyID: "k"})
		if gone := errors.Is(err, journal.ErrNotFound); gone != (i < int(st.Deleted)) {
			t.Errorf("execution %d: lookup %v; want the oldest %d gone", i, err, st.Deleted)
		}
	}
}

// TestCountBoundTrimsOldestEnded: past MaxEnded, the oldest ended
// executions go, their directories too, counted; a restart with a lower
// bound trims at once. (Without the bound a busy server kept every short
// command for Retain: 216,000 in a 10-minute soak, rexecd 21 → 124 MiB.)
func TestCountBoundTrimsOldestEnded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j := openJournal(t, journal.Options{Dir: dir, MaxEnded: 3})
	var xs []*journal.Execution
	for i := range 7 {
		xs = append(xs, runToEnd(t, j, "k", fmt.Sprintf("echo %d", i)))
	}
	deadline := time.Now().Add(10 * time.Second)
	for j.Stats().Trimmed < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := j.Stats(); st.Trimmed != 4 || st.Executions != 3 {
		t.Fatalf("stats %+v: want 3 kept and 4 trimmed", st)
	}
	for i, x := range xs {
		_, err := j.Lookup(x.ID(), journal.Caller{KeyID: "k"})
		// Counted first, then removed: wait for a trimmed one's directory.
		_, serr := os.Stat(filepath.Join(dir, x.ID()))
		for ; i < 4 && serr == nil && time.Now().Before(deadline); _, serr = os.Stat(filepath.Join(dir, x.ID())) {
			time.Sleep(10 * time.Millisecond)
		}
		if gone := i < 4; gone != errors.Is(err, journal.ErrNotFound) || gone != errors.Is(serr, os.ErrNotExist) {
			t.Errorf("execution %d: lookup %v, directory %v; want the oldest 4 gone", i, err, serr)
		}
	}
	j.Close()
	j2 := openJournal(t, journal.Options{Dir: dir, MaxEnded: 1})
	if st := j2.Stats(); st.Trimmed != 2 || st.Executions != 1 {
		t.Errorf("a restart with --retain-count 1: stats %+v, want 1 kept and 2 trimmed", st)
	}
	if _, err := j2.Lookup(xs[6].ID(), journal.Caller{All: true}); err != nil {
		t.Errorf("the newest after the restart: %v", err)
	}
}

func TestRetention(t *testing.T) {
	t.Parallel()
	now := time.Now()
	clock := func() time.Time { return now }
	dir := t.TempDir()
	j := openJournal(t, journal.Options{Dir: dir, Retain: time.Hour, Now: clock})
	x := runToEnd(t, j, "k", "echo hi")
	j.Close()
	// An hour and a bit later, a new server deletes it at once.
	now = now.Add(61 * time.Minute)
	j2 := openJournal(t, journal.Options{Dir: dir, Retain: time.Hour, Now: clock})
	if _, err := j2.Lookup(x.ID(), journal.Caller{All: true}); !errors.Is(err, journal.ErrNotFound) {
		t.Errorf("lookup after retention: %v", err)
	}
	if st := j2.Stats(); st.Expired != 1 || st.Executions != 0 {
		t.Errorf("stats %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, x.ID())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory left: %v", err)
	}
}

// TestOwnership: a key sees its own executions; one that may see all
// sees every one.
func TestOwnership(t *testing.T) {
	t.Parallel()
	j := openJournal(t, journal.Options{})
	a := runToEnd(t, j, "alice", "echo a")
	b := runToEnd(t, j, "bob", "echo b")
	if _, err := j.Lookup(a.ID(), journal.Caller{KeyID: "bob"}); !errors.Is(err, journal.ErrNotFound) {
		t.Errorf("bob looks up alice's: %v", err)
	}
	if _, err := j.Lookup(b.ID(), journal.Caller{KeyID: "bob"}); err != nil {
		t.Errorf("bob looks up his own: %v", err)
	}
	list, _ := j.List(journal.Caller{KeyID: "bob"}, true, 0)
	if len(list) != 1 || list[0].ID != b.ID() {
		t.Errorf("bob lists %+v", list)
	}
	if list, _ := j.List(journal.Caller{KeyID: "bob"}, false, 0); len(list) != 0 {
		t.Errorf("bob lists running: %+v", list)
	}
	if list, _ := j.List(journal.Caller{All: true}, true, 0); len(list) != 2 || list[0].ID != b.ID() {
		t.Errorf("admin lists %+v (want newest first)", list)
	}
}

// TestStdinResumesExactlyOnce: stdin queued but not taken when the stream
// breaks is dropped; the client sends again from Taken; the command reads
// every byte once.
func TestStdinResumesExactlyOnce(t *testing.T) {
	t.Parallel()
	j := openJournal(t, journal.Options{ReconnectGrace: 10 * time.Second, StdinWindow: 64 << 10})
	x, a, err := j.Start(context.Background(), newRunner(), runner.Spec{Shell: "sha256sum", OpenStdin: true},
		journal.StartOptions{Owner: "k", Lifetime: journal.Resumable, Attach: true, Stdin: []byte("first")})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	input := append([]byte("first"), data...)
	ctx := context.Background()
	sent := 5
	for sent < 2<<20 {
		if err := a.Stdin(ctx, input[sent:sent+32<<10]); err != nil {
			t.Fatal(err)
		}
		sent += 32 << 10
	}
	a.Close(nil) // what was queued and not taken is dropped
	b, err := x.Attach(1)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := b.StdinState()
	taken := int(st.Taken)
	if taken > sent || taken < 5 {
		t.Fatalf("taken %d of %d sent", taken, sent)
	}
	for off := taken; off < len(input); off += 100 << 10 {
		if err := b.Stdin(ctx, input[off:min(off+100<<10, len(input))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	var c collected
	if err := drainAttachment(t, b, &c); err != nil {
		t.Fatal(err)
	}
	b.Close(nil)
	sum := sha256.Sum256(input)
	if got, want := c.stdout.String(), fmt.Sprintf("%x  -\n", sum); got != want {
		t.Fatalf("sha256sum read %q, want %q (taken at the break: %d of %d)", got, want, taken, sent)
	}
	if n := len(c.stdin); n == 0 || c.stdin[n-1].Taken != uint64(len(input)) || !c.stdin[n-1].Closed {
		t.Errorf("stdin states %+v", c.stdin)
	}
}

// TestTakeOver: a second attachment ends the first.
func TestTakeOver(t *testing.T) {
	t.Parallel()
	j := openJournal(t, journal.Options{})
	x, a, err := j.Start(context.Background(), newRunner(), runner.Spec{Shell: "sleep 0.3; echo done"},
		journal.StartOptions{Owner: "k", Lifetime: journal.Resumable, Attach: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := x.Attach(1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Next(context.Background()); !errors.Is(err, journal.ErrTakenOver) {
		t.Errorf("first attachment after a take-over: %v", err)
	}
	a.Close(nil) // does not start the grace: b is attached
	var c collected
	if err := drainAttachment(t, b, &c); err != nil {
		t.Fatal(err)
	}
	b.Close(nil)
	if c.stdout.String() != "done\n" || c.exit.Reason != runner.ReasonExited {
		t.Errorf("got %q, %+v", c.stdout.String(), c.exit)
	}
}

func seqOutput(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\n')
	}
	return b.String()
}

// TestRecoverAfterACrash: a server killed while a command ran leaves a
// journal without an end, its last record maybe torn. The next Open keeps
// what is whole and records the end as shutdown.
func TestRecoverAfterACrash(t *testing.T) {
	t.Parallel()
	live := t.TempDir()
	j := openJournal(t, journal.Options{Dir: live})
	x, a, err := j.Start(context.Background(), newRunner(), runner.Spec{Shell: "seq 1 1000; sleep 300"},
		journal.StartOptions{Owner: "k", Lifetime: journal.Resumable, Attach: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.Close(nil); x.CancelByClient(); <-x.Done() }()
	var c collected
	for c.stdout.Len() < len(seqOutput(1000)) {
		it, err := a.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c.add(t, it)
	}
	// What a killed server leaves: a copy taken while it runs, plus half a
	// record at the end of the segment.
	crashed := t.TempDir()
	copyDir(t, filepath.Join(live, x.ID()), filepath.Join(crashed, x.ID()))
	segs, _ := filepath.Glob(filepath.Join(crashed, x.ID(), "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	f, err := os.OpenFile(segs[0], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{1, 2, 3, 4, 5, 6, 7})
	f.Close()
	// A directory with no meta file (a crash right after mkdir) goes.
	os.Mkdir(filepath.Join(crashed, "0123456789abcdef"), 0o700)

	j2 := openJournal(t, journal.Options{Dir: crashed})
	y, err := j2.Lookup(x.ID(), journal.Caller{KeyID: "k"})
	if err != nil {
		t.Fatal(err)
	}
	in := y.Info()
	if in.Exit == nil || in.Exit.Reason != runner.ReasonShutdown || in.Exit.SentSignalName != "KILL" || !in.Recovered || in.Ended.IsZero() {
		t.Fatalf("recovered %+v, exit %+v", in, in.Exit)
	}
	rc := readAll(t, y, 0, true)
	if rc.stdout.String() != seqOutput(1000) || rc.exit == nil {
		t.Fatalf("read back %q…, exit %v", rc.stdout.String()[:min(20, rc.stdout.Len())], rc.exit)
	}
	if st := j2.Stats(); st.Recovered != 1 || st.Discarded != 1 {
		t.Errorf("stats %+v", st)
	}
	// The end is written: a third open reads it as ended, not recovered again.
	j2.Close()
	j3 := openJournal(t, journal.Options{Dir: crashed})
	if st := j3.Stats(); st.Recovered != 0 || st.Executions != 1 {
		t.Errorf("third open: %+v", st)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOneServerPerJournal: a second journal on the same directory is
// refused while the first is open (it would end the first's running
// executions as a dead server's), and opens once the first is closed.
func TestOneServerPerJournal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j := openJournal(t, journal.Options{Dir: dir})
	if _, err := journal.Open(journal.Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "in use by another rexecd") {
		t.Fatalf("second Open: %v", err)
	}
	j.Close()
	// A process forked by another test at that moment holds a copy of the
	// lock's descriptor until its exec closes it (close-on-exec): retry
	// for a moment.
	var j2 *journal.Journal
	var err error
	for range 100 {
		if j2, err = journal.Open(journal.Options{Dir: dir}); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	j2.Close()
}

// TestLargeAndSmallRecords: large chunks kept in the runner's buffers and
// small ones copied into blocks, interleaved, read live (from memory) and
// after the end (from disk) alike.
func TestLargeAndSmallRecords(t *testing.T) {
	t.Parallel()
	j := openJournal(t, journal.Options{})
	x, a, err := j.Start(context.Background(), newRunner(), runner.Spec{
		Shell: "for i in 1 2 3 4 5 6; do head -c 300000 /dev/urandom; echo line $i; echo err $i >&2; done",
	}, journal.StartOptions{Owner: "k", Lifetime: journal.Call, Attach: true})
	if err != nil {
		t.Fatal(err)
	}
	var live collected
	if err := drainAttachment(t, a, &live); err != nil {
		t.Fatal(err)
	}
	a.Close(nil)
	<-x.Done()
	disk := readAll(t, x, 0, false)
	if live.stdout.Len() != 6*(300000+7) || !bytes.Equal(live.stdout.Bytes(), disk.stdout.Bytes()) ||
		live.stderr.String() != disk.stderr.String() || len(disk.gaps) != 0 || len(live.seqs) != len(disk.seqs) {
		t.Fatalf("live %d/%d bytes, %d records; disk %d/%d bytes, %d records, gaps %v", live.stdout.Len(), live.stderr.Len(),
			len(live.seqs), disk.stdout.Len(), disk.stderr.Len(), len(disk.seqs), disk.gaps)
	}
}
