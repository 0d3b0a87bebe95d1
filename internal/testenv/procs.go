package testenv

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// GroupPIDs lists the live (not zombie) processes whose process group is
// pgid, read from /proc.
func GroupPIDs(pgid int) []int {
	return Procs(func(_, pgrp int) bool { return pgrp == pgid })
}

// ChildPIDs lists the live (not zombie) processes whose parent is pid.
func ChildPIDs(pid int) []int {
	return Procs(func(ppid, _ int) bool { return ppid == pid })
}

// Procs lists the live (not zombie) processes for which match, given the
// parent pid and process group from /proc/PID/stat, is true.
func Procs(match func(ppid, pgrp int) bool) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces: cut at the last ')'.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgrp, _ := strconv.Atoi(f[2])
		if match(ppid, pgrp) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// WaitGroupGone polls until no process of group pgid is left, and returns
// how long that took; it fails the test if some are still there after within.
func WaitGroupGone(t testing.TB, pgid int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if len(GroupPIDs(pgid)) == 0 {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process group %d still has %v after %v", pgid, GroupPIDs(pgid), within)
	return 0
}
