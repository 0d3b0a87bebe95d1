package journal_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rexec/rexec/journal"
)

// spareDirs lists the journal's spares (in .spares, relative to dir) and
// its execution directories.
func spareDirs(t *testing.T, dir string) (spares, execs []string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() && e.Name() != ".spares" {
			execs = append(execs, e.Name())
		}
	}
	ents, err = os.ReadDir(filepath.Join(dir, ".spares"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() && e.Name() != "new" {
			spares = append(spares, filepath.Join(".spares", e.Name()))
		}
	}
	return spares, execs
}

// waitSpares waits (bounded) until the journal dir holds at least n spares.
func waitSpares(t *testing.T, dir string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, _ := spareDirs(t, dir)
		if len(s) >= n {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d spare directories after 10s, want at least %d", len(s), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSpareDirectories: the journal makes spare directories ahead, each
// with an empty meta file; a new execution takes one (its directory is
// the spare renamed, its meta one whole version); a deleted execution's
// directory becomes a spare again, emptied; a restart takes spares for
// spares, never for executions, and empties one a crash left half done.
func TestSpareDirectories(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j := openJournal(t, journal.Options{Dir: dir, MaxEnded: 1})
	spares := waitSpares(t, dir, 32) // all made: the filler has stopped
	for _, s := range spares {
		ents, err := os.ReadDir(filepath.Join(dir, s))
		if err != nil || len(ents) != 1 || ents[0].Name() != "meta.json" {
			t.Fatalf("spare %s holds %v (%v), want only meta.json", s, ents, err)
		}
		if fi, _ := ents[0].Info(); fi.Size() != 0 {
			t.Fatalf("spare %s: meta.json of %d bytes, want empty", s, fi.Size())
		}
	}
	ino := func(p string) uint64 {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return inode(fi)
	}
	spareInodes := map[uint64]bool{}
	for _, s := range spares {
		spareInodes[ino(filepath.Join(dir, s))] = true
	}

	first := runToEnd(t, j, "k", "echo one")
	if !spareInodes[ino(filepath.Join(dir, first.ID()))] {
		t.Errorf("execution %s did not take a spare directory", first.ID())
	}
	b, err := os.ReadFile(filepath.Join(dir, first.ID(), "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], `{"id":"`+first.ID()) {
		t.Errorf("meta.json of an execution in a spare: %q, want its start and its end", b)
	}
	firstIno := ino(filepath.Join(dir, first.ID()))

	// MaxEnded 1: the second's end deletes the first, whose directory
	// becomes a spare, emptied of its output and meta.
	second := runToEnd(t, j, "k", "echo two")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, first.ID())); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first execution's directory is still there after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	recycled := ""
	s, execs := spareDirs(t, dir)
	for _, name := range s {
		if ino(filepath.Join(dir, name)) == firstIno {
			recycled = name
		}
	}
	if recycled == "" {
		t.Fatalf("the deleted execution's directory is not a spare; spares %v", s)
	}
	// Renamed first, then emptied (in the background, after the rename).
	for {
		ents, _ := os.ReadDir(filepath.Join(dir, recycled))
		if len(ents) == 1 && ents[0].Name() == "meta.json" {
			if fi, _ := ents[0].Info(); fi != nil && fi.Size() == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("recycled spare holds %v after 10s, want only an empty meta.json", ents)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(execs) != 1 || execs[0] != second.ID() {
		t.Errorf("execution directories %v, want only %s", execs, second.ID())
	}
	if len(s) > 32 {
		t.Errorf("%d spares, more than the bound (32)", len(s))
	}
	j.Close()

	// A spare that a crash left half emptied: output and a meta line.
	torn := filepath.Join(dir, recycled)
	if err := os.WriteFile(filepath.Join(torn, "1.seg"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(torn, "meta.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	j2 := openJournal(t, journal.Options{Dir: dir, MaxEnded: 1})
	if st := j2.Stats(); st.Executions != 1 || st.Discarded != 0 {
		t.Errorf("after a restart: %+v, want the one execution and nothing discarded", st)
	}
	infos, _ := j2.List(journal.Caller{All: true}, true, 0)
	if len(infos) != 1 || infos[0].ID != second.ID() {
		t.Errorf("after a restart the list is %+v, want only %s", infos, second.ID())
	}
	if ents, _ := os.ReadDir(torn); len(ents) != 1 || ents[0].Name() != "meta.json" {
		t.Errorf("a half-emptied spare after a restart holds %v, want only meta.json", ents)
	} else if fi, _ := ents[0].Info(); fi.Size() != 0 {
		t.Errorf("a half-emptied spare's meta.json after a restart: %d bytes, want empty", fi.Size())
	}
}
