//go:build unix

package runner

import (
	"os"
	"runtime"
	"syscall"
	"time"
)

// leaderUsage is the part of a leader's rusage that Usage reports.
type leaderUsage struct {
	user, system time.Duration
	maxRSS       int64 // bytes
}

// rusage reads st's rusage: the leader's, with the descendants it waited
// for (wait4 adds theirs).
func rusage(st *os.ProcessState) (leaderUsage, bool) {
	if st == nil {
		return leaderUsage{}, false
	}
	ru, ok := st.SysUsage().(*syscall.Rusage)
	if !ok {
		return leaderUsage{}, false
	}
	return leaderUsage{
		user:   time.Duration(ru.Utime.Nano()),
		system: time.Duration(ru.Stime.Nano()),
		maxRSS: maxRSSBytes(ru),
	}, true
}

// maxRSSBytes is ru's ru_maxrss in bytes.
func maxRSSBytes(ru *syscall.Rusage) int64 {
	rss := int64(ru.Maxrss)
	if runtime.GOOS != "darwin" {
		rss *= 1024 // Linux counts KiB, macOS bytes
	}
	return rss
}

// ownPeakRSS is this process's peak resident set, in bytes (its own
// ru_maxrss: VmHWM, read with one getrusage rather than /proc/self/status
// and its parsing on every command's start), or 0 where it cannot be read.
//
// A command's ru_maxrss is not only its own: Linux keeps, as the maxrss of
// a process that called execve, the high-water mark of the address space it
// left, and Go starts commands with vfork, whose address space is this
// process's. So a command's ru_maxrss is at least this process's peak as
// it started, and only a figure above that is the command's own.
func ownPeakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return maxRSSBytes(&ru)
}
