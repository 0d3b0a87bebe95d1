package journal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMetaAppendedAndTorn: the meta file is a log of versions; the last
// whole line is read; a torn last line (a crash mid-append) gives the one
// before it, says so, and a file past metaCompactAt is written whole again.
func TestMetaAppendedAndTorn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "0123456789abcdef")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	m := &meta{ID: filepath.Base(dir), Owner: "k", Command: "true", Lifetime: Call, Started: time.Now().UTC()}
	if err := appendMeta(dir, m); err != nil {
		t.Fatal(err)
	}
	m.LastSeq = 7
	if err := appendMeta(dir, m); err != nil {
		t.Fatal(err)
	}
	got, torn, err := readMeta(dir)
	if err != nil || torn || got.LastSeq != 7 {
		t.Fatalf("after two appends: %+v torn %v err %v, want last_seq 7", got, torn, err)
	}
	path := filepath.Join(dir, metaFile)
	b, _ := os.ReadFile(path)
	if n := strings.Count(string(b), "\n"); n != 2 {
		t.Fatalf("%d lines, want 2:\n%s", n, b)
	}

	// A crash mid-append: half of a third version.
	full := string(b)
	third := full[strings.Index(full, "\n")+1:]
	if err := os.WriteFile(path, []byte(full+third[:len(third)/2]), 0o600); err != nil {
		t.Fatal(err)
	}
	got, torn, err = readMeta(dir)
	if err != nil || !torn || got.LastSeq != 7 {
		t.Fatalf("with a torn last line: %+v torn %v err %v, want the version before it (last_seq 7) and torn", got, torn, err)
	}

	// Nothing whole: an error, not a zero meta.
	if err := os.WriteFile(path, []byte(`{"id":"0123`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _, err := readMeta(dir); err == nil {
		t.Fatalf("a file with no whole line read as %+v", got)
	}

	// Past metaCompactAt the file is one line again.
	if err := writeMeta(dir, m); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		m.EvictedRecords = int64(i)
		if err := appendMeta(dir, m); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() > metaCompactAt+1024 {
		t.Fatalf("after 1000 appends: %v %v, want at most about %d bytes", fi.Size(), err, metaCompactAt)
	}
	if got, torn, err := readMeta(dir); err != nil || torn || got.EvictedRecords != 999 {
		t.Fatalf("after compaction: %+v torn %v err %v, want evicted_records 999", got, torn, err)
	}
}
