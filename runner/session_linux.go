package runner

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// maxSessionSweeps bounds killSession's passes over /proc. Each pass kills
// every group it finds; another pass is needed only when a member moved to a
// new group of the session (setpgid) while the last one ran.
const maxSessionSweeps = 10

// killSession sends SIGKILL to every process group of the session led by
// the command on a terminal, sid: the jobs a job-control shell put in groups
// of their own. The shell passes the terminal's hangup on to them only if it
// gets to (a shell KILLed first, one with a HUP trap, a job that ignores
// SIGHUP or was disowned), so the end of the call cannot rest on it.
//
// The session is named by the leader's pid, which the unreaped leader keeps
// taken (see group), so no other session can have that id. A process forked
// by a member of a group being killed is in that group, or is not created
// (fork fails once a fatal signal is pending). The caller holds g.mu.
func killSession(sid int) {
	killed := map[int]bool{sid: true} // the leader's own group: reap kills it
	for range maxSessionSweeps {
		found := false
		for _, pgrp := range sessionGroups(sid) {
			if !killed[pgrp] {
				killed[pgrp], found = true, true
				_ = syscall.Kill(-pgrp, syscall.SIGKILL)
			}
		}
		if !found {
			return
		}
	}
}

// sessionGroups lists the process groups of the live (not zombie) processes
// in session sid, from /proc.
func sessionGroups(sid int) []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	var groups []int
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		stat, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		if pgrp, ok := sessionMember(stat, sid); ok {
			groups = append(groups, pgrp)
		}
	}
	return groups
}

// sessionMember parses a /proc/PID/stat line ("pid (comm) state ppid pgrp
// session …"; comm may hold spaces and parentheses) and returns the
// process's group when it is alive and in session sid.
func sessionMember(stat []byte, sid int) (int, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 4 || f[0][0] == 'Z' || f[0][0] == 'X' {
		return 0, false
	}
	session, err := strconv.Atoi(string(f[3]))
	if err != nil || session != sid {
		return 0, false
	}
	pgrp, err := strconv.Atoi(string(f[2]))
	return pgrp, err == nil
}
