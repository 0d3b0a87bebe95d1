package integration

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
)

// buildRexecd builds the real rexecd binary into a temporary directory.
func buildRexecd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rexecd")
	if _, stderr, err := run(t, "go", "build", "-o", bin, "./cmd/rexecd"); err != nil {
		t.Fatalf("go build ./cmd/rexecd: %v\n%s", err, stderr)
	}
	return bin
}

// writeKeys replaces the key file at once (rename), so that rexecd never
// reads half a file, with the given mode.
func writeKeys(t *testing.T, path string, mode os.FileMode, lines ...string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls until cond holds, failing the test after 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestKeyRotationSIGHUP runs the real rexecd binary and rotates its keys
// with SIGHUP while a call is running: the running call is not dropped, the
// new key works at once, the removed key is refused, and a bad key file
// keeps the old keys and says why in the log.
func TestKeyRotationSIGHUP(t *testing.T) {
	bin := buildRexecd(t)
	dir := t.TempDir()
	oldKey, _ := interceptors.GenerateKey("old")
	newKey, _ := interceptors.GenerateKey("new")
	keyFile := filepath.Join(dir, "keys")
	writeKeys(t, keyFile, 0o600, oldKey.Line())
	addrFile := filepath.Join(dir, "addr")

	d := spawnRexecd(t, bin, nil, "--listen", "127.0.0.1:0", "--addr-file", addrFile, "--keys", keyFile, "--shutdown-grace", "5s", "--state-dir", t.TempDir())
	cmd, log := d.cmd, d.log
	addr := readAddrFile(t, addrFile)
	dial := func(k *interceptors.Key) *client.Client {
		c, err := client.New(addr, client.WithKey(k))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	echo := func(k *interceptors.Key) codes.Code {
		_, err := dial(k).Echo(ctx, "hi", false)
		return status.Code(err)
	}
	reloads := func() int { return strings.Count(log.String(), "keys reloaded") }
	failures := func() int { return strings.Count(log.String(), "key reload failed") }
	hup := func() {
		t.Helper()
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}

	// A call signed with the old key, running until the test says go.
	goFile := filepath.Join(dir, "go")
	stream, err := dial(oldKey).Exec().Run(ctx, &rexecv1.RunRequest{Shell: `echo ready; i=0; ` +
		`while [ ! -e ` + goFile + ` ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; echo survived`})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var exit *rexecv1.Exited
	recvDone := make(chan error, 1)
	gotReady := make(chan struct{})
	go func() {
		var err error
		exit, err = client.Receive(stream.Recv, writerFunc(func(p []byte) (int, error) {
			if out.Len() == 0 {
				defer close(gotReady)
			}
			return out.Write(p)
		}), io.Discard)
		recvDone <- err
	}()
	select {
	case <-gotReady:
	case err := <-recvDone:
		t.Fatalf("the long call ended early: %v", err)
	case <-ctx.Done():
		t.Fatal("the long call never started")
	}

	// Rotate: the file now holds only the new key.
	writeKeys(t, keyFile, 0o600, newKey.Line())
	hup()
	waitFor(t, "keys reloaded", func() bool { return reloads() == 1 })
	if c := echo(newKey); c != codes.OK {
		t.Errorf("new key after reload: %s, want OK", c)
	}
	if c := echo(oldKey); c != codes.Unauthenticated {
		t.Errorf("removed key after reload: %s, want Unauthenticated", c)
	}

	// Bad reloads keep the keys we have and log why.
	for i, bad := range []struct {
		mode os.FileMode
		line string
		why  string
	}{
		{0o644, newKey.Line(), "chmod 600"},
		{0o600, "short c2hvcnQ=", "want at least 32"},
		{0o600, "new !!!", "not standard base64"},
	} {
		writeKeys(t, keyFile, bad.mode, bad.line)
		hup()
		waitFor(t, "a failed reload", func() bool { return failures() == i+1 })
		if !strings.Contains(log.String(), bad.why) {
			t.Errorf("bad reload %d: log does not say %q", i, bad.why)
		}
		if c := echo(newKey); c != codes.OK {
			t.Errorf("after bad reload %d: the kept key got %s, want OK", i, c)
		}
	}

	// The call that was running through all of it ends normally.
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-recvDone; err != nil {
		t.Fatalf("the running call was dropped: %v", err)
	}
	if exit.GetExitCode() != 0 || out.String() != "ready\nsurvived\n" {
		t.Errorf("running call: exit %d, output %q", exit.GetExitCode(), out.String())
	}

	d.signal(t, syscall.SIGTERM)
	if err := d.wait(t, 30*time.Second); err != nil {
		t.Errorf("rexecd exit: %v, want status 0", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
