package runner

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
)

// Spec says what to run.
type Spec struct {
	// Shell is run as `/bin/sh -c Shell`. Exactly one of Shell and Argv is set.
	Shell string
	// Argv is run with no shell; Argv[0], unless it holds a slash, is looked
	// up in the PATH the command gets (Env's, else the login's default).
	Argv []string
	// Env entries ("KEY=VALUE") are added to the login environment the
	// command starts with (HOME, USER, LOGNAME, SHELL, PATH, MAIL, TERM
	// with a tty, Options.EnvFromDaemon), overriding it; nothing else of
	// the server's environment reaches the command.
	Env []string
	// Dir is the working directory; empty means the user's home directory
	// ("/" when it does not exist).
	Dir string
	// User runs the command as this unix user: its uid, gid and
	// supplementary groups, its login environment, its home as the
	// default directory. Empty means the user the server runs as (whose
	// login environment and home the command gets all the same).
	User string
	// Limits are the command's resource limits; zero fields limit nothing.
	Limits Limits
	// Owner names who runs the command (a key id), for OwnerMax.
	Owner string
	// OwnerMax bounds Owner's commands running at once, beside
	// Options.MaxConcurrent; 0 means no bound of its own.
	OwnerMax int
	// Timeout kills the command after this long; zero means Options.MaxTimeout.
	Timeout time.Duration
	// Stdin is copied to the command's stdin, then closed; nil means /dev/null,
	// unless OpenStdin is set.
	Stdin io.Reader
	// OpenStdin leaves stdin open for Process.Stdin. Set Stdin or OpenStdin,
	// not both: Stdin's copy would race the writer of Process.Stdin (a
	// caller with initial bytes writes them to Process.Stdin first).
	OpenStdin bool
	// TTY runs the command on a pseudo-terminal of this size; nil means pipes.
	TTY *TTY
	// MaxOutput is the output budget in bytes; zero means Options.MaxOutput.
	MaxOutput int64
	// Audit attributes (peer, key id, transport) go on both audit lines.
	Audit []slog.Attr
}

// TTY asks for a pseudo-terminal.
type TTY struct {
	Rows, Cols uint16
	// Term is the TERM value; empty means "xterm-256color".
	Term string
}

// FieldError says which field of a Spec is wrong. Precondition is true when
// the field is well formed but the host is not in a state to use it (a
// directory that does not exist).
type FieldError struct {
	Field        string
	Problem      string
	Precondition bool
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// maxArgStrlen is Linux's MAX_ARG_STRLEN: the longest single argument or
// environment string execve takes, its terminating NUL included (32 pages of
// 4 KiB; larger pages only raise it). A longer one fails the start with E2BIG.
const maxArgStrlen = 32 * 4096

// maxTermBytes bounds a terminal's TERM value (TTY.Term); terminfo names
// are a few dozen bytes.
const maxTermBytes = 256

// overStrlen says whether a string of n bytes is over maxArgStrlen once
// execve has added its NUL.
func overStrlen(n int) bool { return n+1 > maxArgStrlen }

// check validates s against the limits before anything is started or allocated.
func (o *Options) check(s *Spec) error {
	switch {
	case s.Shell == "" && len(s.Argv) == 0:
		return fieldErr("command", "empty: set shell (a /bin/sh command line) or argv")
	case s.Shell != "" && len(s.Argv) > 0:
		return fieldErr("command", "both shell and argv are set: set one")
	case len(s.Shell) > o.MaxArgBytes:
		return fieldErr("shell", "%d bytes, over the limit of %d", len(s.Shell), o.MaxArgBytes)
	case overStrlen(len(s.Shell)):
		return fieldErr("shell", "%d bytes, over the kernel's limit of %d for one argument", len(s.Shell), maxArgStrlen-1)
	case strings.IndexByte(s.Shell, 0) >= 0:
		return fieldErr("shell", "contains a NUL byte")
	case len(s.Argv) > 0 && s.Argv[0] == "":
		return fieldErr("argv", "argv[0] is empty")
	}
	total := 0
	for i, a := range s.Argv {
		total += len(a)
		if strings.IndexByte(a, 0) >= 0 {
			return fieldErr("argv", "argv[%d] contains a NUL byte", i)
		}
		if overStrlen(len(a)) {
			return fieldErr("argv", "argv[%d] is %d bytes, over the kernel's limit of %d for one argument", i, len(a), maxArgStrlen-1)
		}
	}
	if total > o.MaxArgBytes {
		return fieldErr("argv", "%d bytes, over the limit of %d", total, o.MaxArgBytes)
	}
	if len(s.Env) > o.MaxEnv {
		return fieldErr("env", "%d entries, over the limit of %d", len(s.Env), o.MaxEnv)
	}
	total = 0
	for i, e := range s.Env {
		total += len(e)
		k, _, ok := strings.Cut(e, "=")
		switch {
		case !ok || k == "":
			return fieldErr("env", "env[%d] %q is not KEY=VALUE", i, clip(e, 40))
		case strings.IndexByte(e, 0) >= 0:
			return fieldErr("env", "env[%d] contains a NUL byte", i)
		case overStrlen(len(e)):
			return fieldErr("env", "env[%d] is %d bytes, over the kernel's limit of %d for one entry", i, len(e), maxArgStrlen-1)
		}
	}
	if total > o.MaxArgBytes {
		return fieldErr("env", "%d bytes, over the limit of %d", total, o.MaxArgBytes)
	}
	switch {
	case s.Timeout < 0:
		return fieldErr("timeout", "negative (%v)", s.Timeout)
	case s.Timeout > o.MaxTimeout:
		return fieldErr("timeout", "%v is over the server's maximum of %v", s.Timeout, o.MaxTimeout)
	case s.MaxOutput < 0:
		return fieldErr("max_output_bytes", "negative")
	case strings.IndexByte(s.Dir, 0) >= 0:
		return fieldErr("dir", "contains a NUL byte")
	case s.OwnerMax < 0:
		return fieldErr("owner_max", "negative")
	}
	if err := s.Limits.check(); err != nil {
		return err
	}
	if t := s.TTY; t != nil {
		switch {
		case t.Rows == 0 || t.Cols == 0:
			return fieldErr("tty.size", "rows and cols must both be set (got %dx%d)", t.Rows, t.Cols)
		case len(t.Term) > maxTermBytes:
			return fieldErr("tty.term", "%d bytes, over the limit of %d", len(t.Term), maxTermBytes)
		case strings.IndexByte(t.Term, 0) >= 0:
			return fieldErr("tty.term", "contains a NUL byte")
		}
	}
	if s.Dir != "" {
		fi, err := os.Stat(s.Dir)
		switch {
		case err != nil:
			return &FieldError{Field: "dir", Problem: fmt.Sprintf("%q: no such directory on the server", s.Dir), Precondition: true}
		case !fi.IsDir():
			return &FieldError{Field: "dir", Problem: fmt.Sprintf("%q is not a directory", s.Dir), Precondition: true}
		}
	}
	return nil
}

// Describe is a short printable form of the command, for logs.
func (s *Spec) Describe() string {
	if s.Shell != "" {
		return clip(s.Shell, 200)
	}
	return clip(strings.Join(s.Argv, " "), 200)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
