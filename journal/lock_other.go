//go:build !unix

package journal

import "os"

// lockDir does nothing where flock is missing.
func lockDir(string) (*os.File, error) { return nil, nil }

// unlockDir closes f.
func unlockDir(f *os.File) { f.Close() }
