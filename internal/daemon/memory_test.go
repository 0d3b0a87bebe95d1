package daemon

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestSetMemoryLimit: the flag's value is the runtime's limit; auto is
// $GOMEMLIMIT's when set, else the base and an allowance per command; 0 is
// none.
func TestSetMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1)) // as before the test
	for _, c := range []struct {
		flag     int64
		env      string
		want     int64 // -1: whatever the runtime had
		wantText string
	}{
		{256 << 20, "", 256 << 20, "256MiB"},
		{-1, "", 24<<20 + 10*256<<10, "26MiB"},
		{0, "", math.MaxInt64, "none"},
		{-1, "300MiB", -1, "300MiB ($GOMEMLIMIT)"},
	} {
		t.Setenv("GOMEMLIMIT", c.env)
		before := debug.SetMemoryLimit(-1)
		text := setMemoryLimit(c.flag, 10)
		got := debug.SetMemoryLimit(-1)
		want := c.want
		if want == -1 {
			want = before
		}
		if got != want || text != c.wantText {
			t.Errorf("flag %d, GOMEMLIMIT %q: limit %d %q, want %d %q", c.flag, c.env, got, text, want, c.wantText)
		}
	}
}
