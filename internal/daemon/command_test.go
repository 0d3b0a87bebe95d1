package daemon_test

import (
	"bytes"
	"net"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/daemon"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRexecdExitStatus: 0 for --help and --version, 2 and one line for a
// usage error, 1 and one line when serving fails.
func TestRexecdExitStatus(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	key, err := interceptors.GenerateKey("k")
	if err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir() + "/keys"
	if err := os.WriteFile(keys, []byte(key.Line()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args    []string
		want    int
		errLine string // what the one stderr line starts with; "" for none
	}{
		{[]string{"--help"}, 0, ""},
		{[]string{"--version"}, 0, ""},
		{[]string{"--bogus"}, 2, "rexecd: unknown flag --bogus"},
		{[]string{"-listen", "x"}, 2, "rexecd: -listen: a long flag takes two dashes: --listen"},
		{[]string{"--max-concurrent", "many"}, 2, `rexecd: --max-concurrent "many": `},
		{[]string{"--log-format", "xml"}, 2, `rexecd: --log-format "xml": want text or json`},
		{[]string{"serve"}, 2, `rexecd: unexpected argument "serve"`},
		{[]string{"--memory-limit", "1.5G"}, 2, `rexecd: --memory-limit "1.5G": want a byte count, or a number with K, M, G or T (powers of 1024), like 512M, or auto`},
		{[]string{"--listen", taken.Addr().String(), "--keys", keys, "--state-dir", t.TempDir()}, 1, "rexecd: listen: "},
		{[]string{"--journal-max", "1000"}, 2, "rexecd: --journal-max 1000: want 0 (no journal) or at least 1048576 bytes"},
		{[]string{"--journal-max", "8388608", "--journal-total", "1048576"}, 2, "rexecd: --journal-total 1048576 is less than --journal-max 8388608"},
		{[]string{"--reconnect-grace", "-1s"}, 2, `rexecd: --reconnect-grace "-1s": want a duration of 0 or more`},
		{[]string{"--skew", "10s"}, 2, "rexecd: --skew 10s: give more than 10s (rexec's client presents one token for up to 10s)"},
		{[]string{"--retain", "0"}, 2, "rexecd: --retain 0s: want a positive duration"},
		{[]string{"--retain-count", "0"}, 2, "rexecd: --retain-count 0: want at least 1"},
		{[]string{"--pprof"}, 2, "rexecd: --pprof needs --metrics-listen: the profiles are served on the metrics listener"},
		{[]string{"--otlp-endpoint", "localhost:4317"}, 2, `rexecd: --otlp-endpoint "localhost:4317": want the URL of an OTLP/gRPC collector: http://HOST:4317`},
		{[]string{"--listen", "127.0.0.1:0", "--keys", keys, "--metrics-listen", "0.0.0.0:0", "--state-dir", t.TempDir()}, 1,
			"rexecd: refusing --metrics-listen 0.0.0.0:0 (bound "},
		{[]string{"--listen", "127.0.0.1:0", "--keys", keys, "--metrics-listen", taken.Addr().String(), "--state-dir", t.TempDir()}, 1,
			"rexecd: --metrics-listen: listen tcp " + taken.Addr().String()},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		got := daemon.Rexecd(c.args, &stdout, &stderr, func(string) string { return "" })
		if got != c.want {
			t.Errorf("rexecd %v: exit %d, want %d (stderr %q)", c.args, got, c.want, stderr.String())
		}
		// A failing start logs first (a created key file, say): its error is the last line.
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		last := lines[len(lines)-1]
		switch {
		case c.errLine == "" && stderr.Len() > 0:
			t.Errorf("rexecd %v: stderr %q, want none", c.args, stderr.String())
		case c.errLine != "" && (!strings.HasPrefix(last, c.errLine) || (c.want == 2 && len(lines) != 1)):
			t.Errorf("rexecd %v: stderr %q, want one line starting %q", c.args, stderr.String(), c.errLine)
		}
	}
}
