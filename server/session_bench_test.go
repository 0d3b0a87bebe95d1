package server_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/testenv"
)

// BenchmarkSessionStdin pipes 64 MiB of stdin to `cat >/dev/null` per op:
// the cost of the stdin path of a Session (client, HTTP/2, server, pipe).
func BenchmarkSessionStdin(b *testing.B) {
	srv := testenv.StartServer(b, testenv.Options{})
	c := srv.Client(b, nil)
	block := bytes.Repeat([]byte{'x'}, 1<<20)
	const size = 64 << 20
	b.SetBytes(size)
	for b.Loop() {
		var rs []io.Reader
		for range size / len(block) {
			rs = append(rs, bytes.NewReader(block))
		}
		ex, err := c.Session(context.Background(), &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Shell: "cat >/dev/null"}}, io.MultiReader(rs...), io.Discard, io.Discard)
		if err != nil || ex.GetExitCode() != 0 {
			b.Fatalf("exit %v err %v", ex, err)
		}
	}
}
