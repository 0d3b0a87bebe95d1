package cli

import (
	"fmt"
	"strings"

	"github.com/rexec/rexec/internal/transfer"
)

// The exit statuses of the file commands (cp, ls, stat, mkdir, rm, mv, df):
// 0 when every path went; exitPathFailed when any path failed (one line on
// stderr each, naming it and why); ExitFailure when rexec itself could not
// work (connection, auth, a missing scope, usage).
const exitPathFailed = 1

// remotePath is a file command's argument: the server's path, with or
// without the leading ':' that cp needs to tell the sides apart.
func remotePath(arg string) string { return strings.TrimPrefix(arg, ":") }

// pathFailures counts what a file command could not do to its paths, and
// stops it at rexec's own failure.
type pathFailures struct {
	c     *command
	name  string // the command, for the messages: "ls"
	n     int
	fatal error
}

// add records err for path: a fatal one (unreachable, auth, scope) ends the
// command with 255, any other is one line and exit 1. It reports whether
// the command may go on.
func (p *pathFailures) add(path string, err error) bool {
	if transfer.Fatal(err) {
		p.fatal = err
		return false
	}
	p.n++
	fmt.Fprintf(p.c.env.Stderr, "rexec: %s: %s: %s\n", p.name, path, transfer.Why(err))
	return true
}

// status is the command's exit status.
func (p *pathFailures) status() int {
	switch {
	case p.fatal != nil:
		return p.c.fail(p.fatal)
	case p.n > 0:
		return exitPathFailed
	}
	return 0
}

// human writes n bytes as 1.5 GiB (binary units), exact below 1 KiB.
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
