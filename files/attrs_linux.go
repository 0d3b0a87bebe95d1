package files

import (
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// setMtime sets f's modification time (and access time) to t, through the
// open file: futimens, so that nothing re-resolves a name.
func setMtime(f *os.File, t time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno error
	if err := rc.Control(func(fd uintptr) {
		// utimensat(fd, NULL, ts, 0) is futimens(fd, ts).
		_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, fd, 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
		if e != 0 {
			errno = e
		}
	}); err != nil {
		return err
	}
	if errno != nil {
		return &os.PathError{Op: "futimens", Path: f.Name(), Err: errno}
	}
	return nil
}

// statfs says how big the filesystem that holds f is, and how much of it
// is free to an unprivileged user.
func statfs(f *os.File) (total, free int64, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var st unix.Statfs_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstatfs(int(fd), &st) }); err != nil {
		return 0, 0, err
	}
	if serr != nil {
		return 0, 0, serr
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize, nil
}

// reserve asks the filesystem for size bytes of f up front (without
// changing its size), so that a full disk shows at the start of an upload
// rather than in its middle. Filesystems without fallocate are fine.
func reserve(f *os.File, size int64) error {
	if size == 0 {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = unix.Fallocate(int(fd), unix.FALLOC_FL_KEEP_SIZE, 0, size) }); err != nil {
		return err
	}
	if ferr == unix.EOPNOTSUPP || ferr == unix.ENOSYS {
		return nil
	}
	return ferr
}
