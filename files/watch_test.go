package files_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// watcher reports every open, read, write, create, delete, rename or
// attribute change in some directories (inotify), so that a test can say
// "nothing there was read, created or changed" and mean it: a stat alone
// makes no event, an open or a listing does.
type watcher struct {
	fd   int
	dirs map[int32]string
}

func newWatcher(t *testing.T, dirs ...string) *watcher {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	w := &watcher{fd: fd, dirs: map[int32]string{}}
	t.Cleanup(func() { unix.Close(fd) })
	for _, d := range dirs {
		wd, err := unix.InotifyAddWatch(fd, d, unix.IN_ALL_EVENTS&^unix.IN_CLOSE_NOWRITE)
		if err != nil {
			t.Fatalf("inotify watch %s: %v", d, err)
		}
		w.dirs[int32(wd)] = d
	}
	return w
}

// events returns (and forgets) what happened since the last call.
func (w *watcher) events() []string {
	var out []string
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(w.fd, buf)
		if n <= 0 || err != nil {
			return out
		}
		for b := buf[:n]; len(b) >= unix.SizeofInotifyEvent; {
			wd := int32(binary.NativeEndian.Uint32(b[0:]))
			mask := binary.NativeEndian.Uint32(b[4:])
			l := binary.NativeEndian.Uint32(b[12:])
			name := string(bytes.TrimRight(b[unix.SizeofInotifyEvent:unix.SizeofInotifyEvent+int(l)], "\x00"))
			b = b[unix.SizeofInotifyEvent+int(l):]
			if mask&unix.IN_IGNORED != 0 {
				continue
			}
			out = append(out, fmt.Sprintf("%s %s", filepath.Join(w.dirs[wd], name), maskNames(mask)))
		}
	}
}

func maskNames(m uint32) string {
	var s []string
	for _, f := range []struct {
		bit  uint32
		name string
	}{
		{unix.IN_ACCESS, "ACCESS"}, {unix.IN_MODIFY, "MODIFY"}, {unix.IN_ATTRIB, "ATTRIB"},
		{unix.IN_CLOSE_WRITE, "CLOSE_WRITE"}, {unix.IN_OPEN, "OPEN"}, {unix.IN_MOVED_FROM, "MOVED_FROM"},
		{unix.IN_MOVED_TO, "MOVED_TO"}, {unix.IN_CREATE, "CREATE"}, {unix.IN_DELETE, "DELETE"},
		{unix.IN_DELETE_SELF, "DELETE_SELF"}, {unix.IN_MOVE_SELF, "MOVE_SELF"},
	} {
		if m&f.bit != 0 {
			s = append(s, f.name)
		}
	}
	return strings.Join(s, "|")
}

// snapshot describes a tree: every path's type, mode, size, mtime and, for
// a regular file, its SHA-256. Two equal snapshots: nothing was created,
// removed or changed.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v %d %d", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
