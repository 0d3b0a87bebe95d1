package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"testing"
	"time"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/testenv"
)

// TestThroughput measures a file's bytes through stdout, raw socket vs gRPC,
// in one run against one server. It reports; it asserts only the sha256.
// It is skipped unless REXEC_THROUGHPUT_FILE names the file, e.g.:
//
//	head -c 1G /dev/urandom > /tmp/rexec-1g
//	REXEC_THROUGHPUT_FILE=/tmp/rexec-1g go test -run Throughput -v -timeout 30m ./internal/integration
func TestThroughput(t *testing.T) {
	path := os.Getenv("REXEC_THROUGHPUT_FILE")
	if path == "" {
		t.Skip("set REXEC_THROUGHPUT_FILE to a large file to measure")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.New()
	size, err := io.Copy(want, f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	srv := testenv.StartServer(t, testenv.Options{Raw: true})
	for _, tr := range transports(t, srv) {
		h := sha256.New()
		start := time.Now()
		ex, err := tr.run(context.Background(), &rexecv1.RunRequest{Argv: []string{"cat", path}}, h, io.Discard)
		d := time.Since(start)
		if err != nil || ex.GetExitCode() != 0 {
			t.Fatalf("%s: %v %v", tr.name, ex, err)
		}
		if !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
			t.Errorf("%s: sha256 differs", tr.name)
		}
		t.Logf("%-4s %d bytes in %v: %.0f MB/s (sha256 equal)", tr.name, size, d.Round(time.Millisecond), float64(size)/d.Seconds()/1e6)
	}
}
