package integration

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/rexec/rexec/internal/bench"
	"github.com/rexec/rexec/internal/testenv"
)

// TestMain fails the run when a test leaked a goroutine (goleak) or a file
// descriptor: the servers of this suite run in this process, so an fd that a
// call, a stream or a command's pipe left open shows up here.
func TestMain(m *testing.M) {
	// The rexecd binaries these tests start keep their journals here, not
	// in the user's ~/.local/state.
	state, err := os.MkdirTemp("", "rexec-integration-state-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_STATE_HOME", state)
	before, _ := openFDs()
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		removeBinaries()
		os.RemoveAll(state)
		if after, err := openFDs(); code == 0 && err == nil && len(after) > len(before) {
			fmt.Fprintf(os.Stderr, "fd leak: %d open before the suite, %d after\n", len(before), len(after))
			for fd, target := range after {
				if _, ok := before[fd]; !ok {
					fmt.Fprintf(os.Stderr, "  fd %s -> %s\n", fd, target)
				}
			}
			code = 1
		}
		os.Exit(code)
	}))
}

// openFDs maps this process's open fds to what they point at.
func openFDs() (map[string]string, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	fds := map[string]string{}
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fds[e.Name()] = target
	}
	return fds, nil
}

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// binaries builds the real rexecd and rexec once for the package's tests
// (removed in TestMain).
func binaries(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "rexec-integration-bin-"); binErr == nil {
			binErr = bench.BuildBinaries(context.Background(), testenv.RepoRoot(), binDir)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

func removeBinaries() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}
