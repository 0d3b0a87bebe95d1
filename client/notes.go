package client

import (
	"fmt"
	"time"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// ExitNotes are the lines rexec prints on stderr about an exit that its
// status alone does not tell: a timeout, a shutdown, dropped output, output
// held open by a background process. None for a plain exit.
func ExitNotes(e *rexecv1.Exited) []string {
	var notes []string
	switch {
	case e.GetTimedOut():
		notes = append(notes, fmt.Sprintf("rexec: command timed out after %v and was killed", e.GetDuration().AsDuration().Round(time.Millisecond)))
	case e.GetReason() == rexecv1.EndReason_END_REASON_SHUTDOWN:
		notes = append(notes, "rexec: the server shut down and killed the command")
	case e.GetReason() == rexecv1.EndReason_END_REASON_OOM:
		msg := e.GetMessage()
		if msg == "" {
			msg = "out of memory: the kernel's OOM killer ended the command at its memory limit"
		}
		notes = append(notes, "rexec: "+msg)
	case e.GetReason() == rexecv1.EndReason_END_REASON_DISCONNECTED:
		notes = append(notes, "rexec: the client's connection broke and none came back within the server's reconnect grace: the command was killed")
	}
	if e.GetDroppedBytes() > 0 {
		notes = append(notes, fmt.Sprintf("rexec: output budget reached: %d bytes dropped", e.GetDroppedBytes()))
	}
	if e.GetOutputIncomplete() {
		notes = append(notes, "rexec: the command exited but a background process held its output open; the rest was not read")
	}
	return notes
}
