package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rexec/rexec/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSoakShort is the CI version of `rexec-bench soak`: 30 s of mixed load
// against a real rexecd binary. It asserts correctness only (no errors,
// every exit code and byte count right, no command left behind), never
// speed: the machine may be busy.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the soak takes 30 s")
	}
	ctx := context.Background()
	bin := t.TempDir()
	if err := BuildBinaries(ctx, testenv.RepoRoot(), bin); err != nil {
		t.Fatal(err)
	}
	d, err := StartDaemon(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	o := SoakOptions{Duration: 30 * time.Second, Callers: 3, LargeBytes: 4 << 20, SampleEvery: time.Second}
	res, err := Soak(ctx, d, o)
	if err != nil {
		t.Fatal(err)
	}
	var report strings.Builder
	res.Print(&report, o)
	t.Log("\n" + report.String())
	if res.Errors != 0 {
		t.Errorf("%d errors in %d calls", res.Errors, res.Calls)
	}
	for _, kind := range []string{"echo", "short", "large", "cancel"} {
		if res.Kinds[kind] == nil || res.Kinds[kind].Calls == 0 {
			t.Errorf("no %s call was made", kind)
		}
	}
	if res.Children != 0 {
		t.Errorf("%d commands of the server still run after the soak", res.Children)
	}
}
