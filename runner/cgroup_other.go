//go:build unix && !linux

package runner

import (
	"errors"
	"log/slog"
	"syscall"
	"time"
)

// cgroups exist only on Linux; elsewhere commands run in process groups.
type cgroups struct{}

func newCgroups(string, int, *slog.Logger) (*cgroups, error) {
	return nil, errors.New("cgroups exist only on Linux")
}

func (*cgroups) describe() Isolation        { return Isolation{} }
func (*cgroups) refuse(Limits) error        { return nil }
func (*cgroups) take(Limits) (*cell, error) { return nil, errors.New("no cgroups") }
func (*cgroups) close() error               { return nil }

type cell struct{}

func (*cell) start(_ *syscall.SysProcAttr, fork func() (int, error)) error {
	_, err := fork()
	return err
}
func (*cell) kill()                        {}
func (*cell) populated() bool              { return false }
func (*cell) waitEmpty(time.Duration) bool { return true }
func (*cell) usage(*Usage) uint64          { return 0 }
func (*cell) oomEvents() <-chan struct{}   { return nil }
func (*cell) release()                     {}

func (*cgroups) limitsMemory() bool { return false }
