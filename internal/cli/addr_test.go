package cli

import "testing"

func TestWithDefaultPort(t *testing.T) {
	for _, c := range []struct{ addr, want string }{
		{"localhost", "localhost:50051"},
		{"db1.example.com", "db1.example.com:50051"},
		{"10.0.0.7", "10.0.0.7:50051"},
		{"::1", "[::1]:50051"},
		{"[::1]", "[::1]:50051"},
		{"[::1]:7", "[::1]:7"},
		{"localhost:7", "localhost:7"},
		{"", ""},
	} {
		if got := withDefaultPort(c.addr, "127.0.0.1:50051"); got != c.want {
			t.Errorf("withDefaultPort(%q) = %q, want %q", c.addr, got, c.want)
		}
	}
}
