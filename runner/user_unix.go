//go:build unix

package runner

import (
	"os/exec"
	"os/user"
	"strconv"
)

// ttyGroup is the gid of group "tty", which owns terminals; gid when the
// host has no such group.
func ttyGroup(gid uint32) int {
	if g, err := user.LookupGroup("tty"); err == nil {
		if n, err := strconv.Atoi(g.Gid); err == nil {
			return n
		}
	}
	return int(gid)
}

// withRlimits makes cmd start under l's rlimits: Go's os/exec cannot set a
// child's rlimits, and setting them in this process would limit the server
// (they are per process, not per thread). So the command starts as
//
//	/bin/sh -c 'ulimit -n N || exit 126; ulimit -f B || exit 126; exec "$0" "$@"' ARGV...
//
// which sets both the soft and the hard limit (POSIX sh counts -f in
// 512-byte blocks) before the command's first instruction, in its own
// process (exec keeps the pid). A shell command gets the lines in front of
// its own script instead, with no second exec. The one visible change:
// argv[0] of an argv command is its resolved path.
func withRlimits(cmd *exec.Cmd, l Limits) {
	pre := ""
	if l.NoFile != 0 {
		pre += "ulimit -n " + strconv.FormatInt(l.NoFile, 10) + " || exit 126; "
	}
	if l.FSize != 0 {
		pre += "ulimit -f " + strconv.FormatInt(max(l.FSize/512, 1), 10) + " || exit 126; "
	}
	if cmd.Path == "/bin/sh" && len(cmd.Args) == 3 && cmd.Args[1] == "-c" {
		cmd.Args[2] = pre + "\n" + cmd.Args[2]
		return
	}
	cmd.Args = append([]string{"/bin/sh", "-c", pre + `exec "$0" "$@"`, cmd.Path}, cmd.Args[1:]...)
	cmd.Path = "/bin/sh"
}
