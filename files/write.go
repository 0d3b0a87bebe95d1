package files

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// Mkdir makes a directory (with parents: every missing parent, and an
// existing directory is fine). A symlinked parent is followed only while it
// stays inside the root.
func (s *Service) Mkdir(ctx context.Context, req *rexecv1.MkdirRequest) (*rexecv1.MkdirResponse, error) {
	err := s.change(ctx, req.GetPath(), func(c *callFS) error {
		name, err := c.name("path", req.GetPath())
		if err != nil {
			return err
		}
		perm := fs.FileMode(req.GetMode() & 0o777)
		if req.GetMode() == 0 {
			perm = 0o755
		}
		if req.GetParents() {
			return c.MkdirAll(name, perm)
		}
		return c.Mkdir(name, perm)
	}, "mkdir", slog.Bool("parents", req.GetParents()))
	if err != nil {
		return nil, err
	}
	return &rexecv1.MkdirResponse{}, nil
}

// Remove removes a path; a directory with its contents only when
// recursive. Symlinks are removed, never followed.
func (s *Service) Remove(ctx context.Context, req *rexecv1.RemoveRequest) (*rexecv1.RemoveResponse, error) {
	err := s.change(ctx, req.GetPath(), func(c *callFS) error {
		name, err := c.name("path", req.GetPath())
		if err != nil {
			return err
		}
		if c.isTop(name) {
			return refuse(refuseInvalid, "path %q is the key's root (or /): it cannot be removed", display(req.GetPath()))
		}
		if !req.GetRecursive() {
			fi, err := c.Lstat(name)
			if err != nil {
				return err
			}
			err = c.Remove(name)
			if err == nil && fi.Mode().IsRegular() && nlink(fi) == 1 {
				s.storeOf(c).counted(-fi.Size())
			}
			return err
		}
		if _, err := c.Lstat(name); err != nil {
			return err // RemoveAll would say nothing of a path that is not there
		}
		defer s.storeOf(c).recount()
		return c.RemoveAll(name)
	}, "remove", slog.Bool("recursive", req.GetRecursive()))
	if err != nil {
		return nil, err
	}
	return &rexecv1.RemoveResponse{}, nil
}

// Rename renames a path, as rename(2): what the new name held is replaced.
func (s *Service) Rename(ctx context.Context, req *rexecv1.RenameRequest) (*rexecv1.RenameResponse, error) {
	err := s.change(ctx, req.GetFrom(), func(c *callFS) error {
		from, err := c.name("from", req.GetFrom())
		if err != nil {
			return err
		}
		to, err := c.name("to", req.GetTo())
		if err != nil {
			return err
		}
		if c.isTop(from) || c.isTop(to) {
			return refuse(refuseInvalid, "the key's root (or /) cannot be renamed, nor replaced")
		}
		if fi, err := c.Lstat(to); err == nil && fi.Mode().IsRegular() {
			defer s.storeOf(c).recount() // the file it held is gone
		}
		err = c.Rename(from, to)
		var le *os.LinkError
		if errors.As(err, &le) && errors.Is(err, fs.ErrNotExist) {
			return refuse(refuseNotFound, "%s does not exist, or the directory of %s does not", display(req.GetFrom()), display(req.GetTo()))
		}
		return err
	}, "rename", slog.String("to", req.GetTo()))
	if err != nil {
		return nil, err
	}
	return &rexecv1.RenameResponse{}, nil
}

// Symlink makes a symlink. For a key with a root the target must be
// relative and, read from the link's directory, stay inside the root and
// out of the partial uploads: rexec's own calls would never follow one out
// anyway (os.Root), but other programs reading the root might.
func (s *Service) Symlink(ctx context.Context, req *rexecv1.SymlinkRequest) (*rexecv1.SymlinkResponse, error) {
	err := s.change(ctx, req.GetPath(), func(c *callFS) error {
		name, err := c.name("path", req.GetPath())
		if err != nil {
			return err
		}
		target := req.GetTarget()
		switch {
		case target == "":
			return refuse(refuseInvalid, "target is empty")
		case len(target) > MaxPath || strings.IndexByte(target, 0) >= 0:
			return refuse(refuseInvalid, "target is over %d bytes or has a NUL byte", MaxPath)
		case c.isTop(name):
			return refuse(refuseInvalid, "path %q is the key's root", display(req.GetPath()))
		}
		if c.rooted {
			if err := checkTarget(filepath.Clean(name), target, req.GetPath()); err != nil {
				return err
			}
		}
		if !req.GetReplace() {
			return c.Symlink(target, name)
		}
		if fi, err := c.Lstat(name); err == nil && fi.IsDir() {
			return refuse(refuseNotServed, "%s is a directory: a symlink does not replace one", display(req.GetPath()))
		}
		tmp := filepath.Join(filepath.Dir(name), fmt.Sprintf(".%s.rexec-%s.link", filepath.Base(name), newUploadID()[:12]))
		if err := c.Symlink(target, tmp); err != nil {
			return err
		}
		if err := c.Rename(tmp, name); err != nil {
			_ = c.Remove(tmp)
			return err
		}
		return nil
	}, "symlink", slog.String("target", req.GetTarget()))
	if err != nil {
		return nil, err
	}
	return &rexecv1.SymlinkResponse{}, nil
}

// checkTarget refuses a symlink target for a rooted key's link at name
// (clean, relative to the root) that is absolute, climbs out of the root
// read from the link's directory, or reaches the partial uploads.
func checkTarget(name, target, path string) error {
	if filepath.IsAbs(target) {
		return refuse(refuseOutside, "symlink target %q is absolute: a key with a root may only make relative links that stay inside it", target)
	}
	resolved := filepath.Join(filepath.Dir(name), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return refuse(refuseOutside, "symlink target %q of %s leads outside the root", target, display(path))
	}
	if first, _, _ := strings.Cut(resolved, "/"); first == partialDirName {
		return refuse(refuseOutside, "symlink target %q of %s leads into %s, where the server keeps partial uploads", target, display(path), partialDirName)
	}
	return nil
}

// SetAttributes sets a file's or directory's mode and mtime through the
// open file (fchmod, futimens), never through a name that could be swapped.
func (s *Service) SetAttributes(ctx context.Context, req *rexecv1.SetAttributesRequest) (*rexecv1.SetAttributesResponse, error) {
	err := s.change(ctx, req.GetPath(), func(c *callFS) error {
		name, err := c.name("path", req.GetPath())
		if err != nil {
			return err
		}
		if req.GetMtime() != nil && req.GetMtime().CheckValid() != nil {
			return refuse(refuseInvalid, "mtime is not a valid time")
		}
		fi, err := c.Stat(name)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
		case !fi.Mode().IsRegular():
			return notRegular(req.GetPath(), fi)
		case nlink(fi) > 1:
			return refuse(refuseNotServed, "%s has %d hard links: rexec does not change a file through a hard link", display(req.GetPath()), nlink(fi))
		}
		f, err := c.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		ofi, err := f.Stat()
		if err != nil {
			return err
		}
		if !sameFile(fi, ofi) {
			return refuse(refuseState, "%s changed while it was opened: try again", display(req.GetPath()))
		}
		// fchmod and futimens are checked as the call's thread is, not as
		// the file was opened: with a user= key's rights, or a file opened
		// for reading could have its mode set by rexecd's.
		return c.asUser(func() error {
			if req.Mode != nil {
				m := fs.FileMode(req.GetMode() & 0o777)
				if req.GetMode()&0o2000 != 0 {
					m |= fs.ModeSetgid
				}
				if req.GetMode()&0o1000 != 0 {
					m |= fs.ModeSticky
				}
				if err := f.Chmod(m); err != nil {
					return err
				}
			}
			if req.GetMtime() != nil {
				return setMtime(f, req.GetMtime().AsTime())
			}
			return nil
		})
	}, "set attributes")
	if err != nil {
		return nil, err
	}
	return &rexecv1.SetAttributesResponse{}, nil
}

// change runs one call that changes files: it opens the key's
// filesystem, runs do, writes the audit line and returns the status.
func (s *Service) change(ctx context.Context, path string, do func(c *callFS) error, op string, attrs ...slog.Attr) error {
	c, err := s.begin(ctx)
	if err == nil {
		err = do(c)
		c.Close()
	}
	s.auditResult(ctx, op, display(path), err, attrs...)
	return toStatus(path, err)
}
