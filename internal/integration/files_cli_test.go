package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/bench"
	"github.com/rexec/rexec/internal/transfer"
)

// cliFiles is a real rexecd with a key confined to a root, and the real
// rexec CLI to copy with.
type cliFiles struct {
	bin, keys, root string
	d               *bench.Daemon
	c               *client.Client // the same key, to look at the server's side
}

// writeFilesKey writes a key file of one key with the files and
// files-write scopes, rooted at root, and returns the key and the file.
func writeFilesKey(t *testing.T, root string) (*interceptors.Key, string) {
	t.Helper()
	k, err := interceptors.GenerateKey("drop", interceptors.ScopeFiles, interceptors.ScopeFilesWrite)
	if err != nil {
		t.Fatal(err)
	}
	k.Root = root
	keys := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keys, []byte(k.Line()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return k, keys
}

func startCLIFiles(t *testing.T) *cliFiles {
	t.Helper()
	bin := binaries(t)
	root := t.TempDir()
	k, keys := writeFilesKey(t, root)
	d, err := bench.StartDaemon(context.Background(), bin, "--keys", keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	c, err := client.New(d.Addr, client.WithKey(k))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &cliFiles{bin: bin, keys: keys, root: root, d: d, c: c}
}

func (f *cliFiles) cmd(args ...string) *exec.Cmd {
	return exec.Command(filepath.Join(f.bin, "rexec"), append([]string{"--addr", f.d.Addr, "--key-file", f.keys}, args...)...)
}

// copyUntil runs `rexec cp --progress json ARGS` and SIGKILLs it once a
// progress line says the destination holds at least at bytes. It returns
// the last line the CLI wrote, whether it was killed (or ended first), and
// its stderr.
func (f *cliFiles) copyUntil(t *testing.T, at int64, args ...string) (last transfer.JSONEvent, first transfer.JSONEvent, killed bool, stderr string) {
	t.Helper()
	cmd := f.cmd(append([]string{"cp", "--progress", "json"}, args...)...)
	var eb bytes.Buffer
	cmd.Stderr = &eb
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var ev transfer.JSONEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("a progress line that is not JSON: %q", sc.Text())
		}
		if ev.Event == "progress" && first.Event == "" {
			first = ev
		}
		last = ev
		if ev.Event == "progress" && ev.Done >= at && !killed {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	io.Copy(io.Discard, out)
	err = cmd.Wait()
	if !killed && err != nil {
		t.Fatalf("rexec cp failed before it was killed: %v: %s", err, eb.String())
	}
	return last, first, killed, eb.String()
}

// upload is the server's partial upload to path, once no stream holds it.
func (f *cliFiles) upload(t *testing.T, path string) *rexecv1.UploadStatus {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		l, err := f.c.Files().ListUploads(context.Background(), &rexecv1.ListUploadsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range l.GetUploads() {
			if u.GetPath() == path && !u.GetActive() {
				return u
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no idle partial upload of %s: %v", path, l)
		}
	}
}

func randomFileOf(t *testing.T, size int64) (string, []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "src.bin")
	fh, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(fh, h), rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	return p, h.Sum(nil)
}

func sumOf(t *testing.T, p string) []byte {
	t.Helper()
	fh, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	h := sha256.New()
	io.Copy(h, fh)
	return h.Sum(nil)
}

// TestCLIKilledMidUploadResumes: the real `rexec cp` SIGKILLed at 20 random
// offsets of one upload, each time run again with --resume. Every resume
// starts where the server is, at or past everything the server had
// acknowledged to the killed CLI (so it sends again at most what was in
// flight); the destination never holds a partial file; the file at the end
// has the source's sha256, and no partial upload is left. 64 MiB in CI,
// 1 GiB with REXEC_LONG=1.
func TestCLIKilledMidUploadResumes(t *testing.T) {
	t.Parallel()
	size := int64(64 << 20)
	if os.Getenv("REXEC_LONG") != "" {
		size = 1 << 30
	}
	f := startCLIFiles(t)
	src, want := randomFileOf(t, size)
	const kills = 20
	targets := make([]int64, kills)
	for i := range targets {
		targets[i] = mrand.Int64N(size * 9 / 10)
	}
	slices.Sort(targets)
	dst := filepath.Join(f.root, "big.bin")
	var done, resent int64
	args := []string{src, ":big.bin"}
	n := 0
	for i, at := range targets {
		at = max(at, done+1) // past where the last run was killed
		last, first, killed, _ := f.copyUntil(t, at, append([]string{"--resume"}, args...)...)
		if i > 0 && first.Event != "" && first.Resumed != done {
			t.Errorf("run %d resumed at %d, but the server had %d", i, first.Resumed, done)
		}
		if !killed {
			t.Logf("run %d ended before its kill at %d", i, at)
			break
		}
		n++
		if _, err := os.Lstat(dst); err == nil {
			t.Fatalf("after the kill at %d the destination exists", last.Done)
		}
		u := f.upload(t, "big.bin")
		if u.GetCommittedSize() < last.Done {
			t.Fatalf("kill %d: the server has %d, but had acknowledged %d", i, u.GetCommittedSize(), last.Done)
		}
		resent += max(0, last.Sent-u.GetCommittedSize())
		done = u.GetCommittedSize()
	}
	last, first, killed, stderr := f.copyUntil(t, size+1, append([]string{"--resume"}, args...)...)
	if killed || last.Event != "done" {
		t.Fatalf("the last run: %+v %s", last, stderr)
	}
	if first.Event != "" && first.Resumed != done {
		t.Errorf("the last run resumed at %d, the server had %d", first.Resumed, done)
	}
	if !bytes.Equal(sumOf(t, dst), want) {
		t.Fatal("sha256 differs")
	}
	if l, _ := f.c.Files().ListUploads(context.Background(), &rexecv1.ListUploadsRequest{}); len(l.GetUploads()) != 0 {
		t.Errorf("partial uploads left: %v", l)
	}
	t.Logf("%d kills of a %d MiB upload; at least %d bytes were in flight at the kills and sent again", n, size>>20, resent)
	if n < kills/2 {
		t.Errorf("only %d of %d runs were killed before they ended", n, kills)
	}
}

// TestCLIResumeRefusedWhenSourceChanged: a killed upload, its source
// touched, and `rexec cp --resume`: exit 1, one line that says why, and the
// destination untouched; without --resume the copy goes.
func TestCLIResumeRefusedWhenSourceChanged(t *testing.T) {
	t.Parallel()
	f := startCLIFiles(t)
	src, want := randomFileOf(t, 16<<20)
	if _, _, killed, _ := f.copyUntil(t, 2<<20, src, ":f.bin"); !killed {
		t.Skip("the copy ended before its kill")
	}
	f.upload(t, "f.bin")
	later := time.Now().Add(time.Minute)
	os.Chtimes(src, later, later)
	out, err := f.cmd("cp", "--resume", src, ":f.bin").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "the source changed since the first attempt") || strings.Count(string(out), "\n") != 1 {
		t.Fatalf("got %v: %q", err, out)
	}
	if _, err := os.Lstat(filepath.Join(f.root, "f.bin")); err == nil {
		t.Fatal("the destination was written")
	}
	// The partial upload is still listed, and rm --partial cancels it.
	ls, err := f.cmd("ls", "--partial").Output()
	if err != nil || !strings.Contains(string(ls), "f.bin") {
		t.Fatalf("ls --partial: %v %q", err, ls)
	}
	if out, err := f.cmd("cp", src, ":f.bin").CombinedOutput(); err != nil {
		t.Fatalf("without --resume: %v %s", err, out)
	}
	if !bytes.Equal(sumOf(t, filepath.Join(f.root, "f.bin")), want) {
		t.Fatal("sha256 differs")
	}
	f.copyUntil(t, 2<<20, src, ":g.bin")
	if out, err := f.cmd("rm", "--partial", ":g.bin").CombinedOutput(); err != nil {
		t.Fatalf("rm --partial: %v %s", err, out)
	}
	if l, _ := f.c.Files().ListUploads(context.Background(), &rexecv1.ListUploadsRequest{}); len(l.GetUploads()) != 0 {
		t.Errorf("partial uploads left: %v", l)
	}
}

// TestCLIKilledMidDownloadResumes: the real `rexec cp` SIGKILLed during a
// download, a few times: the destination never exists until whole, the
// partial file beside it grows, and --resume finishes it with the server's
// sha256.
func TestCLIKilledMidDownloadResumes(t *testing.T) {
	t.Parallel()
	f := startCLIFiles(t)
	src, want := randomFileOf(t, 48<<20)
	if err := os.Rename(src, filepath.Join(f.root, "d.bin")); err != nil {
		t.Fatal(err)
	}
	local := t.TempDir()
	dst := filepath.Join(local, "d.bin")
	var prev int64
	for i, at := range []int64{4 << 20, 16 << 20, 30 << 20} {
		last, first, killed, _ := f.copyUntil(t, at, "--resume", ":d.bin", dst)
		if !killed {
			break
		}
		if i > 0 && first.Resumed < prev {
			t.Errorf("run %d resumed at %d, the partial file had %d", i, first.Resumed, prev)
		}
		if _, err := os.Lstat(dst); err == nil {
			t.Fatal("the destination exists after a kill")
		}
		parts, _ := filepath.Glob(filepath.Join(local, ".d.bin.rexec-*.part"))
		if len(parts) != 1 {
			t.Fatalf("partial files: %v", parts)
		}
		fi, _ := os.Stat(parts[0])
		if fi.Size() < last.Done {
			t.Errorf("the partial file has %d, the CLI had written %d", fi.Size(), last.Done)
		}
		prev = fi.Size()
	}
	if out, err := f.cmd("cp", "--resume", ":d.bin", dst).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if !bytes.Equal(sumOf(t, dst), want) {
		t.Fatal("sha256 differs")
	}
	if parts, _ := filepath.Glob(filepath.Join(local, ".*.part")); len(parts) != 0 {
		t.Errorf("partial files left: %v", parts)
	}
}
