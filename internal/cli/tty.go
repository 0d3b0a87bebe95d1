package cli

import (
	"os"
	"sync"

	"golang.org/x/term"
)

// localTerm is the user's terminal, put in raw mode for a tty session so
// that every key (Ctrl-C, Ctrl-Z, arrows) goes to the remote terminal as a
// byte and the remote side alone echoes and interprets it.
type localTerm struct {
	fd    int
	state *term.State
	once  sync.Once
}

// terminalFD is the descriptor of r (a stdin or stdout) when it is a terminal.
func terminalFD(r any) (int, bool) {
	f, ok := r.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// makeRaw puts the terminal fd in raw mode. The caller must call restore on
// every way out: the deferred call covers errors and panics, and the session
// catches SIGINT, SIGTERM and SIGHUP, so none of them ends the process
// before it restores.
func makeRaw(fd int) (*localTerm, error) {
	st, err := term.MakeRaw(fd)
	if err != nil {
		return nil, err
	}
	return &localTerm{fd: fd, state: st}, nil
}

// restore puts the terminal back as it was; more calls do nothing.
func (t *localTerm) restore() {
	if t == nil {
		return
	}
	t.once.Do(func() { _ = term.Restore(t.fd, t.state) })
}

// windowSize is the terminal fd's size, or false when it has none.
func windowSize(fd int) (rows, cols uint16, ok bool) {
	w, h, err := term.GetSize(fd)
	if err != nil || w <= 0 || h <= 0 || w > 0xffff || h > 0xffff {
		return 0, 0, false
	}
	return uint16(h), uint16(w), true
}
