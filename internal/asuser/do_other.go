//go:build !linux

package asuser

import "errors"

// Do needs per-thread credentials, which only Linux has; elsewhere it
// refuses every call.
func Do(c Cred, fn func() error) error {
	return errors.New("running a call with another user's rights needs Linux")
}
