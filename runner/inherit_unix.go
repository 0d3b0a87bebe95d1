//go:build unix

package runner

import (
	"math"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

var inheritOnce sync.Once

// closeInheritedOnExec marks every descriptor from 3 up close-on-exec, once
// per process. Go opens its own files close-on-exec, but a server started as
// `(exec 7>>launcher.log; exec rexecd)` holds fd 7 without the flag, and
// every command it starts would inherit it (and could write the launcher's
// log). Marking them at the first New is enough: nothing in this process
// opens a descriptor without the flag afterwards.
func closeInheritedOnExec() {
	inheritOnce.Do(func() {
		if unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC) == nil {
			return
		}
		// Before Linux 5.11: one at a time.
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return
		}
		for _, e := range ents {
			if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= 3 {
				unix.CloseOnExec(fd)
			}
		}
	})
}
