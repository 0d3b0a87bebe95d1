package bench

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
)

func TestSinkHashesWhatItReads(t *testing.T) {
	data := bytes.Repeat([]byte("rexec "), 300_000) // several reads and hasher buffers
	var out bytes.Buffer
	if err := sinkCmd(bytes.NewReader(data), &out); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if err := checkSink(out.Bytes(), int64(len(data)), sum[:]); err != nil {
		t.Fatalf("checkSink(%q): %v", out.String(), err)
	}
	for _, c := range []struct {
		name string
		size int64
		sum  []byte
	}{
		{"one byte short", int64(len(data)) - 1, sum[:]},
		{"another hash", int64(len(data)), make([]byte, 32)},
	} {
		if err := checkSink(out.Bytes(), c.size, c.sum); err == nil || !strings.Contains(err.Error(), "integrity") {
			t.Errorf("%s: checkSink = %v, want an integrity error", c.name, err)
		}
	}
	if err := checkSink([]byte("garbage\n"), 1, sum[:]); err == nil {
		t.Error("checkSink accepted output that is not BYTES HEX")
	}
}
