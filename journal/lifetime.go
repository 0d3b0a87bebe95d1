package journal

import "fmt"

// Lifetime says whether a command outlives the call that started it.
type Lifetime uint8

// The lifetimes; the numbers are the API's (rexec.v1.Lifetime).
const (
	// Call: the command ends with its call. A broken or cancelled stream
	// kills it. What every client gets unless it asks for more.
	Call Lifetime = 1
	// Resumable: a stream that breaks starts the reconnect grace; the
	// command runs on, its output kept (the pipe blocks past MaxBytes of
	// unacknowledged output) until a client attaches or the grace passes.
	Resumable Lifetime = 2
	// Detached: the command outlives its call for good; its output is never
	// blocked by a missing reader (past MaxBytes the oldest is evicted).
	Detached Lifetime = 3
)

func (l Lifetime) String() string {
	switch l {
	case Call:
		return "call"
	case Resumable:
		return "resumable"
	case Detached:
		return "detached"
	}
	return fmt.Sprintf("lifetime(%d)", uint8(l))
}

// MarshalText writes the name, so that meta files read as text.
func (l Lifetime) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads a name written by MarshalText.
func (l *Lifetime) UnmarshalText(b []byte) error {
	for _, v := range []Lifetime{Call, Resumable, Detached} {
		if v.String() == string(b) {
			*l = v
			return nil
		}
	}
	return fmt.Errorf("unknown lifetime %q", b)
}
