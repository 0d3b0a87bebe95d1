package cliflag

import "testing"

func TestSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		auto bool
		want int64
		ok   bool
		str  string
	}{
		{"0", false, 0, true, "0"},
		{"1536", false, 1536, true, "1536"},
		{"512M", false, 512 << 20, true, "512M"},
		{"2g", false, 2 << 30, true, "2G"},
		{"1024K", false, 1 << 20, true, "1M"},
		{"auto", true, -1, true, "auto"},
		{"auto", false, 0, false, ""},
		{"", false, 0, false, ""},
		{"-5", false, 0, false, ""},
		{"1.5G", false, 0, false, ""},
		{"5MB", false, 0, false, ""},
		{"99999999999T", false, 0, false, ""},
	} {
		var n int64
		z := Size{N: &n, Auto: c.auto}
		err := z.Set(c.in)
		if (err == nil) != c.ok || (c.ok && (n != c.want || z.String() != c.str)) {
			t.Errorf("Set(%q) auto=%v: %d %q err %v, want %d %q ok=%v", c.in, c.auto, n, z.String(), err, c.want, c.str, c.ok)
		}
	}
}
