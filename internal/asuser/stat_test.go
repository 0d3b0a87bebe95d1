//go:build linux

package asuser_test

import (
	"syscall"
	"testing"
)

type fsStat struct{ uid, gid uint32 }

func (s *fsStat) of(t *testing.T, name string) bool {
	var st syscall.Stat_t
	if err := syscall.Stat(name, &st); err != nil {
		t.Error(err)
		return false
	}
	s.uid, s.gid = st.Uid, st.Gid
	return true
}
