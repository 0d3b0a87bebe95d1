//go:build unix

package journal_test

import (
	"os"
	"syscall"
)

// inode is fi's inode number.
func inode(fi os.FileInfo) uint64 { return fi.Sys().(*syscall.Stat_t).Ino }
