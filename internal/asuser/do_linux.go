//go:build linux

package asuser

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Do runs fn with c's filesystem rights; see the package doc. It returns
// fn's error, or why the thread could not take c's (or give them back).
func Do(c Cred, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := threadCred()
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		err = setThread(c)
		if err == nil {
			err = fn()
		} else {
			err = fmt.Errorf("take the rights of uid %d: %w", c.UID, err)
		}
		if rerr := setThread(orig); rerr != nil {
			// Left locked: the thread ends with this goroutine.
			done <- fmt.Errorf("%w: %v (the thread is given up)", ErrRestore, rerr)
			return
		}
		runtime.UnlockOSThread()
		done <- err
	}()
	return <-done
}

// threadCred is this thread's filesystem uid and gid and its groups.
func threadCred() (Cred, error) {
	var c Cred
	c.UID = uint32(setfsuid(-1)) // an invalid id changes nothing and returns the current one
	c.GID = uint32(setfsgid(-1))
	n, _, errno := unix.RawSyscall(unix.SYS_GETGROUPS, 0, 0, 0)
	if errno != 0 {
		return c, fmt.Errorf("getgroups: %w", errno)
	}
	if n > 0 {
		c.Groups = make([]uint32, n)
		m, _, errno := unix.RawSyscall(unix.SYS_GETGROUPS, n, uintptr(unsafe.Pointer(&c.Groups[0])), 0)
		if errno != 0 {
			return c, fmt.Errorf("getgroups: %w", errno)
		}
		c.Groups = c.Groups[:m]
	}
	return c, nil
}

// setThread gives this thread c's groups, fsgid and fsuid, in that order
// (groups and gid while the thread still may change them), and checks that
// the kernel took each.
func setThread(c Cred) error {
	var p unsafe.Pointer
	if len(c.Groups) > 0 {
		p = unsafe.Pointer(&c.Groups[0])
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(c.Groups)), uintptr(p), 0); errno != 0 {
		return fmt.Errorf("setgroups: %w", errno)
	}
	setfsgid(int(c.GID))
	if got := setfsgid(-1); got != int(c.GID) {
		return fmt.Errorf("setfsgid(%d): the thread's fsgid is %d", c.GID, got)
	}
	setfsuid(int(c.UID))
	if got := setfsuid(-1); got != int(c.UID) {
		return fmt.Errorf("setfsuid(%d): the thread's fsuid is %d", c.UID, got)
	}
	return nil
}

// setfsuid and setfsgid return the previous id and never fail; -1 only
// asks (the kernel refuses it as an id).
func setfsuid(id int) int {
	r, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, uintptr(id), 0, 0)
	return int(int32(r))
}

func setfsgid(id int) int {
	r, _, _ := unix.RawSyscall(unix.SYS_SETFSGID, uintptr(id), 0, 0)
	return int(int32(r))
}
