package integration

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/rawsock"
)

// TestRawKeyReloadSIGHUP runs the real rexecd with its raw listener, opens
// raw connections, and reloads the key file with SIGHUP: the connection of
// a removed key is refused its next command (Unauthenticated) and closed,
// the connection of a key whose scopes shrank to echo is refused commands
// (PermissionDenied) and keeps echo, a command running through the reload
// ends normally. Before, an open connection kept the key it had proved.
// It also checks --raw-idle-timeout: an idle connection is closed after it.
func TestRawKeyReloadSIGHUP(t *testing.T) {
	bin := buildRexecd(t)
	dir := t.TempDir()
	kept, _ := interceptors.GenerateKey("kept")
	removed, _ := interceptors.GenerateKey("removed")
	narrowed, _ := interceptors.GenerateKey("narrowed")
	keyFile := filepath.Join(dir, "keys")
	writeKeys(t, keyFile, 0o600, kept.Line(), removed.Line(), narrowed.Line())
	addrFile, rawAddrFile := filepath.Join(dir, "addr"), filepath.Join(dir, "rawaddr")

	d := spawnRexecd(t, bin, nil, "--listen", "127.0.0.1:0", "--addr-file", addrFile, "--keys", keyFile, "--state-dir", t.TempDir(),
		"--raw-listen", "127.0.0.1:0", "--raw-addr-file", rawAddrFile, "--raw-idle-timeout", "1s", "--shutdown-grace", "5s")
	cmd, log := d.cmd, d.log
	rawAddr := readAddrFile(t, rawAddrFile)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dial := func(k *interceptors.Key) *rawsock.Client {
		c, err := rawsock.Dial(ctx, rawAddr, k)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	code := func(err error) rawsock.Code {
		var re *rawsock.Error
		if errors.As(err, &re) {
			return re.Code
		}
		return 0
	}
	run := func(c *rawsock.Client) error {
		_, err := c.Run(ctx, &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard)
		return err
	}
	cKept, cRemoved, cNarrowed := dial(kept), dial(removed), dial(narrowed)

	// A command on the removed key's connection runs through the reload.
	goFile := filepath.Join(dir, "go")
	var out bytes.Buffer
	running := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		_, err := cRemoved.Run(ctx, &rexecv1.RunRequest{Shell: `echo ready; i=0; while [ ! -e ` + goFile + ` ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; echo survived`},
			writerFunc(func(p []byte) (int, error) {
				if out.Len() == 0 {
					defer close(ready)
				}
				return out.Write(p)
			}), io.Discard)
		running <- err
	}()
	select {
	case <-ready:
	case err := <-running:
		t.Fatalf("the long command ended early: %v", err)
	}

	writeKeys(t, keyFile, 0o600, kept.Line(), narrowed.ID+" "+strings.Fields(narrowed.Line())[1]+" echo")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "keys reloaded", func() bool { return strings.Contains(log.String(), "keys reloaded") })

	os.WriteFile(goFile, nil, 0o600)
	if err := <-running; err != nil || out.String() != "ready\nsurvived\n" {
		t.Errorf("the command running through the reload: %q %v, want it to end normally", out.String(), err)
	}
	if err := run(cRemoved); code(err) != rawsock.CodeUnauthenticated {
		t.Errorf("removed key, next command: %v, want Unauthenticated", err)
	}
	if _, err := cRemoved.Echo(ctx, "x", false); err == nil {
		t.Error("removed key: the connection is still open")
	}
	if err := run(cNarrowed); code(err) != rawsock.CodePermissionDenied {
		t.Errorf("key narrowed to echo, command: %v, want PermissionDenied", err)
	}
	if msg, err := cNarrowed.Echo(ctx, "echo ok", false); err != nil || msg != "echo ok" {
		t.Errorf("key narrowed to echo, echo: %q %v", msg, err)
	}
	if err := run(cKept); err != nil {
		t.Errorf("kept key: %v", err)
	}

	// --raw-idle-timeout 1s: a connection idle for 3s is closed, saying why.
	time.Sleep(3 * time.Second)
	if err := run(cKept); code(err) != rawsock.CodeUnavailable || !strings.Contains(err.Error(), "ran no command for 1s") {
		t.Errorf("after 3s idle with --raw-idle-timeout 1s: %v, want Unavailable saying it was idle", err)
	}
	// The line went through rexecd's stderr pipe: wait for it (tlsreload_test.go).
	waitFor(t, "the log to say why the removed key's connection was closed", func() bool {
		return strings.Contains(log.String(), "its key was removed or changed by a reload")
	})
}
