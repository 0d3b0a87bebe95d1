package journal

import (
	"testing"

	"github.com/rexec/rexec/runner"
)

// TestTailHoldsOneLiveWindow streams owned 128 KiB chunks into a log with a
// 1 MiB live window: the tail keeps every record a reader a live window and
// one record behind still needs (the last 9), and gives the runner's
// buffers of the others back: not two live windows of them.
func TestTailHoldsOneLiveWindow(t *testing.T) {
	const (
		chunk  = 128 << 10
		window = 1 << 20
		n      = 64
	)
	l := outputLog{dir: t.TempDir(), segSize: 16 << 20, liveWindow: window}
	defer l.close()
	held := 0
	release := func(*[]byte) { held-- }
	maxHeld := 0
	for seq := uint64(1); seq <= n; seq++ {
		buf := make([]byte, chunk)
		held++
		if _, err := l.appendOwned(runner.Stdout, seq, &buf, chunk, release); err != nil {
			t.Fatal(err)
		}
		l.flushTail()
		maxHeld = max(maxHeld, held)
		// A reader a live window and one record behind reads from memory.
		behind := seq - window/chunk
		if seq > window/chunk {
			if _, _, ok := l.memRecord(behind); !ok {
				t.Fatalf("after record %d: record %d (a live window and one record behind) is not in memory", seq, behind)
			}
		}
	}
	if want := window/chunk + 2; maxHeld > want {
		t.Errorf("the tail held up to %d chunks of %d KiB with a %d KiB live window, want at most %d", maxHeld, chunk>>10, window>>10, want)
	}
	if l.writeErr != nil {
		t.Fatal(l.writeErr)
	}
}
