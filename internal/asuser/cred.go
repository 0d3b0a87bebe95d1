package asuser

import "errors"

// Cred is the identity a call runs with.
type Cred struct {
	UID, GID uint32
	// Groups are the supplementary groups; nil is none.
	Groups []uint32
}

// ErrRestore is returned (wrapped) when a thread could not get rexecd's
// credentials back after a call; the thread has been given up.
var ErrRestore = errors.New("could not restore the thread's credentials")
