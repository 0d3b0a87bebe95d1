// Package asuser runs filesystem calls with a unix user's rights, inside a
// server that runs as root: the file service's calls for a key with user=
// (issue 20), so that such a key reaches exactly what its user may, never
// what rexecd may.
//
//	err := asuser.Do(asuser.Cred{UID: 1001, GID: 1001, Groups: []uint32{1001, 27}}, func() error {
//		f, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE, 0o644) // checked as uid 1001
//		return err
//	})
//
// Linux keeps credentials per thread. Do runs fn on a goroutine locked to
// its OS thread, whose filesystem uid and gid (setfsuid, setfsgid) and
// supplementary groups (setgroups, as a raw system call: Go's own
// syscall.Setgroups changes every thread) are the user's for the call, and
// rexecd's again after it. The kernel drops the filesystem capabilities
// (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_CHOWN, ...) of a
// thread whose fsuid is not 0, and gives them back with fsuid 0, so the
// checks are the user's. A thread that cannot get its credentials back is
// never used again: Do leaves it locked, and Go ends it with its goroutine.
//
// A file opened inside Do keeps the access it was opened with; reads and
// writes on it need no more checks, from any goroutine. WrapFS wraps a
// filesystem interface (the file service's FS) so that each of its calls
// runs inside Do.
package asuser
