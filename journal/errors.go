package journal

import "errors"

// Domain errors; the transports map them to their wire.
var (
	// ErrNotFound: no execution with that id that the caller may see (an
	// execution of another key is not found either: its existence is not
	// confirmed to a key that has no business with it).
	ErrNotFound = errors.New("no such execution")
	// ErrNotAttachable: the execution ends with its call (Call), so no other
	// stream may take it over; its journal can still be read.
	ErrNotAttachable = errors.New("the execution ends with its call: it was started neither resumable nor detached")
	// ErrTakenOver ends an attachment whose execution another client attached.
	ErrTakenOver = errors.New("another client attached to the execution")
	// ErrDetachedStream is returned by an attachment's calls after it closed.
	ErrDetachedStream = errors.New("the attachment has ended")
	// ErrNoStdin: the execution has no live stdin (it was started by Run, or
	// detached).
	ErrNoStdin = errors.New("the execution has no stdin to write to: only a session's command has one")
	// ErrStdinClosed: stdin (or its close) after stdin was closed.
	ErrStdinClosed = errors.New("stdin is already closed")
	// ErrGone: the journal deleted the execution (retention, or the total
	// bound) while it was read.
	ErrGone = errors.New("the execution's journal was deleted (its retention passed, or the journal's total bound)")
	// ErrClosed: the journal is closed.
	ErrClosed = errors.New("the journal is closed")
)
