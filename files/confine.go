package files

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/asuser"
)

// FS is every filesystem operation a file call makes: names go in, open
// files and facts come out, and nothing reaches the filesystem another way
// (operations on a file FS opened — read, write, fstat, fsync — aside).
// *os.Root is one: for a key with a root, every name resolves inside it,
// symlinks are followed only while they stay inside, and `..`, absolute
// names and escapes are errors. hostFS is the other, for a key without a
// root. For a key with user= either is wrapped so that every call runs
// with that user's rights (asuser.WrapFS), never rexecd's.
type FS = asuser.FS

var _ FS = (*os.Root)(nil)

// callFS is what one call reaches: the key, its FS, and where that FS keeps
// partial uploads. Service.open makes one per call; close it at the end.
type callFS struct {
	FS
	key *interceptors.Key
	// rooted: names are relative to the key's root, and the FS is its
	// *os.Root. Otherwise names are absolute host paths.
	rooted bool
	// partialDir is where partial uploads go, a name in FS.
	partialDir string
	// store names the partial directory among all the server's, for the
	// in-memory registry of uploads: the root's path, or "" for the host's.
	store string
	// home is where relative names start for a key without a root.
	home string
	// asUser runs fn with the key's user's rights: the operations on an
	// open file that the kernel checks at the call (fchmod, futimens), not
	// at the open. For a key without user=, it just runs fn.
	asUser func(fn func() error) error
}

// partialDirName is the directory inside a root that holds its partial
// uploads. Calls may not name it (reservedName).
const partialDirName = ".rexec-partial"

// open returns the filesystem that a call of key reaches. This is the one
// place where a call's filesystem is chosen: a key with a root gets an
// *os.Root opened at it (a root that is missing, or not a directory, is
// FailedPrecondition naming it), any other key the host filesystem.
func (s *Service) open(key *interceptors.Key) (*callFS, error) {
	if key == nil {
		return nil, &refusal{kind: refuseUnauthenticated, msg: "this call has no key"}
	}
	if key.User != "" {
		return s.openAsUser(key)
	}
	direct := func(fn func() error) error { return fn() }
	if key.Root == "" {
		return &callFS{FS: hostFS{}, key: key, partialDir: filepath.Join(s.cfg.StateDir, "partial"), home: s.cfg.Home, asUser: direct}, nil
	}
	r, err := os.OpenRoot(key.Root)
	if err != nil {
		return nil, &refusal{kind: refuseState, msg: fmt.Sprintf("the root of key %q (%s) cannot be opened on the server: %v; fix root= in the key file or make the directory",
			key.ID, key.Root, errors.Unwrap(err))}
	}
	return &callFS{FS: r, key: key, rooted: true, partialDir: partialDirName, store: key.Root, asUser: direct}, nil
}

// openAsUser is open for a key with user=: the same filesystem, with every
// call made with the user's rights, on a thread whose filesystem ids and
// groups are the user's (asuser), so the kernel checks each path as it
// would the user's own call. The root is opened as the user too. Relative
// names start in the user's home, and a key without a root keeps its
// partial uploads there (~/.local/state/rexec/partial), where the user may
// write.
func (s *Service) openAsUser(key *interceptors.Key) (*callFS, error) {
	cred, home, err := asuser.Lookup(key.User)
	if err != nil {
		return nil, &refusal{kind: refuseState, msg: fmt.Sprintf("the user of key %q (%s) cannot be found on the server: %v; fix user= in the key file or make the user",
			key.ID, key.User, err)}
	}
	do := func(fn func() error) error { return asuser.Do(cred, fn) }
	if key.Root == "" {
		return &callFS{FS: asuser.WrapFS(hostFS{}, cred), key: key, home: filepath.Clean(home), asUser: do,
			partialDir: filepath.Join(home, ".local", "state", "rexec", "partial"), store: "user:" + key.User}, nil
	}
	var r *os.Root
	if err := do(func() (err error) { r, err = os.OpenRoot(key.Root); return err }); err != nil {
		return nil, &refusal{kind: refuseState, msg: fmt.Sprintf("the root of key %q (%s) cannot be opened on the server as its user %s: %v; fix root= in the key file or the directory's rights",
			key.ID, key.Root, key.User, errors.Unwrap(err))}
	}
	return &callFS{FS: asuser.WrapFS(r, cred), key: key, rooted: true, partialDir: partialDirName, store: key.Root, asUser: do}, nil
}

// hostFS is the filesystem as rexecd's user reaches it, for keys without a
// root (as sftp without a chroot). Names are absolute host paths
// (Service.name makes them so).
type hostFS struct{}

func (hostFS) OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}
func (hostFS) Lstat(name string) (fs.FileInfo, error)       { return os.Lstat(name) }
func (hostFS) Stat(name string) (fs.FileInfo, error)        { return os.Stat(name) }
func (hostFS) Mkdir(name string, perm fs.FileMode) error    { return os.Mkdir(name, perm) }
func (hostFS) MkdirAll(name string, perm fs.FileMode) error { return os.MkdirAll(name, perm) }
func (hostFS) Remove(name string) error                     { return os.Remove(name) }
func (hostFS) RemoveAll(name string) error                  { return os.RemoveAll(name) }
func (hostFS) Rename(oldname, newname string) error         { return os.Rename(oldname, newname) }
func (hostFS) Symlink(oldname, newname string) error        { return os.Symlink(oldname, newname) }
func (hostFS) Readlink(name string) (string, error)         { return os.Readlink(name) }
func (hostFS) Close() error                                 { return nil }

// errEscapes is the error os.Root gives for a name that leaves it (an
// absolute name, a `..` that climbs out, a symlink that leads out). Go does
// not export it; this takes it from a call that must fail with it, so that
// errors.Is finds it by identity rather than by its text.
var errEscapes = sync.OnceValue(func() error {
	r, err := os.OpenRoot("/")
	if err != nil {
		return errors.New("path escapes from parent")
	}
	defer r.Close()
	_, err = r.Lstat("/")
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
})

// escapes reports whether err is os.Root refusing a name that leaves it.
func escapes(err error) bool { return err != nil && errors.Is(err, errEscapes()) }
