package runner

import "golang.org/x/sys/unix"

// setPipeSize sets the capacity of the pipe fd (Linux's F_SETPIPE_SZ).
func setPipeSize(fd, size int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, size)
	return err
}
