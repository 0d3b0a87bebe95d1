package asuser

import (
	"io/fs"
	"os"
)

// FS is the file service's filesystem interface (files.FS): every call a
// file call makes on names. *os.Root is one.
type FS interface {
	OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error)
	Lstat(name string) (fs.FileInfo, error)
	Stat(name string) (fs.FileInfo, error)
	Mkdir(name string, perm fs.FileMode) error
	MkdirAll(name string, perm fs.FileMode) error
	Remove(name string) error
	RemoveAll(name string) error
	Rename(oldname, newname string) error
	Symlink(oldname, newname string) error
	Readlink(name string) (string, error)
	Close() error
}

// WrapFS returns inner with every call run inside Do with c's rights.
// Close is inner's own.
func WrapFS(inner FS, c Cred) FS { return userFS{inner, c} }

type userFS struct {
	inner FS
	c     Cred
}

// call runs f as the user and returns its value and error.
func call[T any](u userFS, f func() (T, error)) (T, error) {
	var v T
	err := Do(u.c, func() error {
		var err error
		v, err = f()
		return err
	})
	return v, err
}

func (u userFS) OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	return call(u, func() (*os.File, error) { return u.inner.OpenFile(name, flag, perm) })
}
func (u userFS) Lstat(name string) (fs.FileInfo, error) {
	return call(u, func() (fs.FileInfo, error) { return u.inner.Lstat(name) })
}
func (u userFS) Stat(name string) (fs.FileInfo, error) {
	return call(u, func() (fs.FileInfo, error) { return u.inner.Stat(name) })
}
func (u userFS) Mkdir(name string, perm fs.FileMode) error {
	return Do(u.c, func() error { return u.inner.Mkdir(name, perm) })
}
func (u userFS) MkdirAll(name string, perm fs.FileMode) error {
	return Do(u.c, func() error { return u.inner.MkdirAll(name, perm) })
}
func (u userFS) Remove(name string) error {
	return Do(u.c, func() error { return u.inner.Remove(name) })
}
func (u userFS) RemoveAll(name string) error {
	return Do(u.c, func() error { return u.inner.RemoveAll(name) })
}
func (u userFS) Rename(oldname, newname string) error {
	return Do(u.c, func() error { return u.inner.Rename(oldname, newname) })
}
func (u userFS) Symlink(oldname, newname string) error {
	return Do(u.c, func() error { return u.inner.Symlink(oldname, newname) })
}
func (u userFS) Readlink(name string) (string, error) {
	return call(u, func() (string, error) { return u.inner.Readlink(name) })
}
func (u userFS) Close() error { return u.inner.Close() }
