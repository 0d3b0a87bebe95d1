//go:build unix

package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockDir takes dir for this process alone: two servers on one journal
// would each take the other's running executions for a dead server's and
// end them. The lock (flock on dir/LOCK) goes with the process, however it
// ends; the file says whose it is.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by another rexecd (pid %s): give each its own --state-dir", dir, strings.TrimSpace(string(b)))
		}
		return nil, err
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// unlockDir gives dir up. The flock is released before the file is closed:
// a close alone leaves it held while a child forked meanwhile (by any
// goroutine of this process, before its exec closes the inherited
// descriptor) still holds a copy, and a journal opened again at once (a
// test, an in-process restart) would find its own process in the way.
func unlockDir(f *os.File) {
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	f.Close()
}
