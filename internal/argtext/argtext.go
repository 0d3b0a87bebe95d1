// Package argtext refuses a command whose words are not text. Unix argv,
// environment and paths are bytes, but rexec's API carries them as strings:
// proto3 string fields must be UTF-8, and the raw transport's command is
// JSON. A byte that is not UTF-8 would be refused by a gRPC marshaller with
// a confusing message, or silently changed to U+FFFD by a lenient JSON
// encoder, so that a command acts on another name than the one given. Both
// Go clients call Check before they send anything:
//
//	if err := argtext.Check(req); err != nil {
//		return err // argument 2 "\xffab" is not valid UTF-8; rexec passes text arguments
//	}
package argtext

import (
	"fmt"
	"unicode/utf8"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// Error names the first word of a command that is not valid UTF-8.
type Error struct {
	// What names the word as a user gave it: "argument 2", "the shell
	// command", "env entry 0", "dir", "tty term".
	What string
	// Value is the word itself.
	Value string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s is not valid UTF-8; rexec passes text arguments", e.What, quote(e.Value))
}

// quote shows a word with its bad bytes escaped, cut to a readable length.
func quote(s string) string {
	const max = 40
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// Check returns an *Error for the first word of req that is not valid UTF-8:
// its shell command, an argument (counted from 0, the program), an
// environment entry or its working directory.
func Check(req *rexecv1.RunRequest) error {
	if s := req.GetShell(); !utf8.ValidString(s) {
		return &Error{What: "the shell command", Value: s}
	}
	for i, a := range req.GetArgv() {
		if !utf8.ValidString(a) {
			return &Error{What: fmt.Sprintf("argument %d", i), Value: a}
		}
	}
	for i, e := range req.GetEnv() {
		if !utf8.ValidString(e) {
			return &Error{What: fmt.Sprintf("env entry %d", i), Value: e}
		}
	}
	if d := req.GetDir(); !utf8.ValidString(d) {
		return &Error{What: "dir", Value: d}
	}
	return nil
}

// CheckSession is Check for a Session's start, its terminal's TERM included.
func CheckSession(start *rexecv1.SessionStart) error {
	if err := Check(start.GetCommand()); err != nil {
		return err
	}
	if t := start.GetTty().GetTerm(); !utf8.ValidString(t) {
		return &Error{What: "tty term", Value: t}
	}
	return nil
}
