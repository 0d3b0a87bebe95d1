//go:build !linux

package runner

import "os"

// CanSetUID reports whether this process may start commands as another
// user: here, whether it is root.
func CanSetUID() bool { return os.Geteuid() == 0 }
