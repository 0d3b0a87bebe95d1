package bench

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// sinkReadSize is how much the sink asks of its stdin in one read: more
// than a pipe holds, so that the sink never takes more reads than its
// writer makes it.
const sinkReadSize = 1 << 20

// sinkCmd is `rexec-bench sink`: it hashes its stdin with sha256 (the
// bench's own hasher, off the reading goroutine) and prints "BYTES HEX".
// The stdin rows run it at the far end of every path — a local pipe, ssh,
// rexec — so that every byte they move is checked, with the same cost on
// each.
func sinkCmd(stdin io.Reader, stdout io.Writer) error {
	h := newAsyncHasher()
	buf := make([]byte, sinkReadSize)
	_, err := io.CopyBuffer(struct{ io.Writer }{h}, struct{ io.Reader }{stdin}, buf)
	sum, n := h.Sum()
	if err != nil {
		return fmt.Errorf("sink: reading stdin: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "%d %x\n", n, sum)
	return err
}

// sinkArgv is the command line of the sink: this very executable.
func sinkArgv() ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("the sink is this executable: %w", err)
	}
	return []string{exe, "sink"}, nil
}

// checkSink checks the sink's output against the size and sha256 sent.
func checkSink(out []byte, size int64, want []byte) error {
	n, sum, ok := strings.Cut(strings.TrimSpace(string(out)), " ")
	got, err := strconv.ParseInt(n, 10, 64)
	if !ok || err != nil {
		return fmt.Errorf("sink said %q, want BYTES HEX", out)
	}
	if b, _ := hex.DecodeString(sum); got != size || !bytes.Equal(b, want) {
		return fmt.Errorf("integrity: the sink got %d bytes with another sha256", got)
	}
	return nil
}
