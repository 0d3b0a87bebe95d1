package journal

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
)

// Every execution gets a directory and a meta file, and making them is
// the dearest step of a short command's start: on ext4 a new inode is
// looked for past the recently deleted ones (recently_deleted and
// find_inode_bit in perf), 0.7 ms of system time for a mkdir on this
// project's machine, as much again for the meta file, where renaming a
// directory takes 20 µs and appending to an empty file 6 µs. So the
// journal keeps a few spare directories, each with an empty meta file,
// in a directory of its own that no execution id can name (spareDir): a
// new execution renames one to its id and appends its meta to the file
// that is there. The filler makes them in spareDir/new and moves each
// into spareDir when it is whole: a mkdir holds its parent's lock for
// the whole inode search, which a new execution's rename out of spareDir
// (and into the journal's directory) must not wait for. An ended execution that is deleted (bounds, retention)
// becomes a spare, renamed first (so that it is gone at once, as a
// RemoveAll made it), then emptied; while none is left, a background
// filler makes new ones, off the commands' way.
//
// A crash leaves nothing half made that a restart could take for an
// execution: a spare only becomes one by a rename, after which its
// meta is appended as a new directory's was; a spare being emptied is
// emptied again by the next Open.

// spareDir is the journal's subdirectory of spares (an execution id is
// hex), and spareNew the filler's, under it.
const (
	spareDir = ".spares"
	spareNew = "new"
)

// maxSpares bounds the spare directories; the filler starts when fewer
// than half are left.
const maxSpares = 32

// spares is the journal's spare directories.
type spares struct {
	dir string // the journal's spareDir

	mu      sync.Mutex
	ready   []string // paths of spares, each with an empty meta file
	filling bool
}

// take returns a spare's path, or "" when none is left.
func (s *spares) take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.ready)
	if n == 0 {
		return ""
	}
	p := s.ready[n-1]
	s.ready = s.ready[:n-1]
	return p
}

// put adds the ready spare p, or reports false when there are enough.
func (s *spares) put(p string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ready) >= maxSpares {
		return false
	}
	s.ready = append(s.ready, p)
	return true
}

// needFill reports whether the filler should start, and if so marks it
// running.
func (s *spares) needFill() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.filling || len(s.ready) > maxSpares/2 {
		return false
	}
	s.filling = true
	return true
}

func (s *spares) filled() {
	s.mu.Lock()
	s.filling = false
	s.mu.Unlock()
}

func (s *spares) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ready)
}

// newName returns a fresh name for a spare directory.
func newName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// makeSpare makes a new spare directory with its empty meta file, in
// spareNew, and moves it into spareDir.
func (s *spares) makeSpare() (string, error) {
	name := newName()
	work := filepath.Join(s.dir, spareNew, name)
	if err := os.Mkdir(work, 0o700); err != nil {
		return "", err
	}
	p := filepath.Join(s.dir, name)
	err := emptySpare(work)
	if err == nil {
		err = os.Rename(work, p)
	}
	if err != nil {
		_ = os.RemoveAll(work)
		return "", err
	}
	return p, nil
}

// emptySpare leaves the spare p holding only an empty meta file.
func emptySpare(p string) error {
	ents, err := os.ReadDir(p)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() != metaFile {
			if err := os.RemoveAll(filepath.Join(p, e.Name())); err != nil {
				return err
			}
		}
	}
	f, err := os.OpenFile(filepath.Join(p, metaFile), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// takeDir makes dir, a new execution's directory, from a spare when
// there is one, and starts the filler when few are left.
func (j *Journal) takeDir(dir string) error {
	defer j.refillSpares()
	for {
		p := j.spares.take()
		if p == "" {
			return os.Mkdir(dir, 0o700)
		}
		if err := os.Rename(p, dir); err == nil {
			return nil
		}
		_ = os.RemoveAll(p) // not a usable spare any more: the next one
	}
}

// retireDir deletes an ended execution's directory: it becomes a spare
// when fewer than maxSpares are kept, else it is removed.
func (j *Journal) retireDir(dir string) {
	if j.spares.count() >= maxSpares {
		_ = os.RemoveAll(dir)
		return
	}
	p := filepath.Join(j.spares.dir, newName())
	if err := os.Rename(dir, p); err != nil {
		_ = os.RemoveAll(dir)
		return
	}
	if err := emptySpare(p); err != nil || !j.spares.put(p) {
		_ = os.RemoveAll(p)
	}
}

// openSpares takes the spares a previous server left (each emptied
// again: a crash may have left one half emptied; past maxSpares removed),
// drops what its filler left half made, and makes spareNew.
func (j *Journal) openSpares() error {
	_ = os.RemoveAll(filepath.Join(j.spares.dir, spareNew))
	if err := os.MkdirAll(filepath.Join(j.spares.dir, spareNew), 0o700); err != nil {
		return err
	}
	ents, err := os.ReadDir(j.spares.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() == spareNew {
			continue
		}
		p := filepath.Join(j.spares.dir, e.Name())
		if !e.IsDir() || j.spares.count() >= maxSpares || emptySpare(p) != nil || !j.spares.put(p) {
			_ = os.RemoveAll(p)
		}
	}
	return nil
}

// refillSpares starts the background filler when fewer than half the
// spares are left and it does not run.
func (j *Journal) refillSpares() {
	j.mu.Lock()
	defer j.mu.Unlock() // Close sets closed under it, and then waits for bg
	if j.closed || !j.spares.needFill() {
		return
	}
	j.bg.Add(1)
	go func() {
		defer j.bg.Done()
		defer j.spares.filled()
		for j.spares.count() < maxSpares {
			select {
			case <-j.stop:
				return
			default:
			}
			p, err := j.spares.makeSpare()
			if err != nil {
				j.log.Debug("journal: cannot make a spare directory; executions make their own", "err", err)
				return
			}
			if !j.spares.put(p) {
				_ = os.RemoveAll(p)
				return
			}
		}
	}()
}
