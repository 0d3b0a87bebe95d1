package rawserver

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerGone reports, without reading, whether the peer of nc has closed or
// reset the connection: poll(2) with POLLRDHUP says so as soon as the FIN
// is in, even behind unread bytes, and a reset shows as POLLERR or POLLHUP.
func peerGone(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	_ = raw.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		if n, err := unix.Poll(fds, 0); err == nil && n > 0 {
			gone = fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0
		}
	})
	return gone
}
