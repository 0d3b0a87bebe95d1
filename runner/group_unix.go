//go:build unix

package runner

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// errEnded is returned by a signal to a command whose group is gone.
var errEnded = errors.New("the command has ended")

// group is a command's process group, and the one way to signal it.
//
// A process group is named by its leader's pid, and a pid is free for
// reuse once the leader has been reaped and no member is left: a kill(-pgid)
// after that may reach another command's group. So the leader is not reaped
// when it exits: it is only observed (waitid with WNOWAIT), and stays a
// zombie, which keeps its pid and so the group's id taken, until reap has
// killed what is left of the group. After reap, the group is never
// signalled again. Every signal to a command goes through here: the
// lifetime's TERM and KILL, the client's signals, the final kill.
//
// A command on a terminal leads a session of its own, in which a job-control
// shell puts each job in a group of its own: for it, the final kill reaches
// every group of the session (killSession).
type group struct {
	cmd     *exec.Cmd
	guard   *Guard
	session bool // the leader leads its own session (a terminal's)
	// cell is the command's cgroup, nil without cgroups: a KILL then
	// reaches every process of the command (cgroup.kill), also those that
	// left the group (setsid, double fork).
	cell *cell

	mu     sync.Mutex
	pgid   int
	tty    *os.File // the terminal's master, for its foreground group; nil without one
	reaped bool
}

// watch closes exited once the leader has exited, without reaping it.
func (g *group) watch(exited chan<- struct{}) {
	defer close(exited)
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, g.pgid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return // exited (or ECHILD, which cannot happen: only reap reaps)
		}
	}
}

// signal sends sig to the whole group.
func (g *group) signal(sig syscall.Signal) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.kill(g.pgid, sig)
}

// signalForeground sends sig to the terminal's foreground process group
// (the job the user sees), or to the whole group without a terminal or once
// the terminal is closed.
func (g *group) signalForeground(sig syscall.Signal) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	pgid := g.pgid
	if g.tty != nil && !g.reaped {
		// The terminal holds a reference to its foreground group, so its id
		// is not reused while it is the foreground.
		_ = control(g.tty, func(fd int) error {
			fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
			if err == nil && fg > 0 {
				pgid = fg
			}
			return err
		})
	}
	return g.kill(pgid, sig)
}

func (g *group) kill(pgid int, sig syscall.Signal) error {
	if g.reaped {
		return errEnded
	}
	// The group outlives its leader while any member lives, so this reaches
	// descendants after the leader exited; ESRCH means none is left.
	if sig == syscall.SIGKILL {
		g.cell.kill()
	}
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %v: %w", sig, err)
	}
	return nil
}

// reap kills what is left of the group (and of its session, when it leads
// one), forgets it, and only then reaps the leader (which must have exited),
// freeing its pid. With a cgroup it kills every process in it and waits (at
// most within) until none is left, so that no process of the command
// outlives it. It returns the leader's status, and whether the cgroup is
// empty (true without one).
func (g *group) reap(within time.Duration) (*os.ProcessState, bool) {
	g.mu.Lock()
	g.cell.kill()
	_ = syscall.Kill(-g.pgid, syscall.SIGKILL)
	if g.session {
		killSession(g.pgid)
	}
	g.guard.remove(g.pgid)
	g.reaped = true
	g.mu.Unlock()
	empty := g.cell.waitEmpty(within)
	// The pipes are os.Files, so Wait has no copying goroutine to wait for:
	// it reaps the zombie at once.
	_ = g.cmd.Wait()
	return g.cmd.ProcessState, empty
}
