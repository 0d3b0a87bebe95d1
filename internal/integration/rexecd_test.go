package integration

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rexec/rexec/internal/testenv"
)

// rexecdProc is a real rexecd binary started by a test.
type rexecdProc struct {
	cmd  *exec.Cmd
	log  *testenv.SyncBuffer
	done chan struct{} // closed once it has exited; err is then Wait's
	err  error
}

// spawnRexecd starts the rexecd binary bin with args, extra as fd 3 on, and
// its stderr in its log. At the test's end it is sent SIGTERM, and killed
// if it has not exited 20 s later; its log is printed if the test failed.
func spawnRexecd(t *testing.T, bin string, extra []*os.File, args ...string) *rexecdProc {
	t.Helper()
	p := &rexecdProc{cmd: exec.Command(bin, args...), log: &testenv.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.log
	p.cmd.ExtraFiles = extra
	p.cmd.WaitDelay = 5 * time.Second // bound Wait if a child holds stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(20 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("rexecd log:\n%s", p.log.String())
		}
	})
	return p
}

// signal sends sig to it, failing the test if it cannot.
func (p *rexecdProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("rexecd: %v: %v", sig, err)
	}
}

// wait waits up to d for it to exit and returns Wait's error; the test
// fails if it does not exit.
func (p *rexecdProc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		t.Fatalf("rexecd did not exit within %v", d)
		return nil
	}
}

// readAddrFile waits for rexecd to write the address it listens on into
// path (--addr-file, --raw-addr-file) and returns it.
func readAddrFile(t *testing.T, path string) string {
	t.Helper()
	var addr string
	waitFor(t, "rexecd's "+path, func() bool {
		b, _ := os.ReadFile(path)
		addr = strings.TrimSpace(string(b))
		return addr != ""
	})
	return addr
}
