//go:build linux

package client

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// stdinPipeSize is what a Session asks of a pipe on its stdin: room for
// several messages, so that the writer (cat, tar, a dump) runs ahead while
// a message is in flight, and each read takes a whole StdinChunk where the
// kernel's 64 KiB pipe gave half of one.
const stdinPipeSize = 1 << 20

// growPipe enlarges r's pipe buffer when r is a pipe, best effort: the
// kernel caps it (/proc/sys/fs/pipe-max-size, and pipe-user-pages-soft for
// a user without CAP_SYS_RESOURCE), and a smaller pipe only reads smaller.
func growPipe(r io.Reader) {
	f, ok := r.(*os.File)
	if !ok {
		return
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = sc.Control(func(fd uintptr) {
		if n, err := unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0); err == nil && n < stdinPipeSize {
			_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, stdinPipeSize)
		}
	})
}
