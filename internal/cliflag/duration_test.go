package cliflag_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rexec/rexec/internal/cliflag"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"5", 5 * time.Second, true},
		{"0.5", 500 * time.Millisecond, true},
		{"90", 90 * time.Second, true},
		{"0", 0, true},
		{"5s", 5 * time.Second, true},
		{"1.5m", 90 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"500ms", 500 * time.Millisecond, true},
		{"-1", 0, false},
		{"-1s", 0, false},
		{"1e3", 0, false},
		{".5", 0, false},
		{"5.", 0, false},
		{"abc", 0, false},
		{"", 0, false},
		{"99999999999999", 0, false}, // past time.Duration's range
	} {
		var d time.Duration
		err := cliflag.Duration{D: &d}.Set(c.in)
		if (err == nil) != c.ok || (c.ok && d != c.want) {
			t.Errorf("Set(%q) = %v, %v; want %v, ok=%v", c.in, d, err, c.want, c.ok)
		}
	}
}
