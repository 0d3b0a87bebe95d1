// Package transfer is the engine of `rexec cp`: it copies files and trees
// between this machine and a server over the FileService, N files in
// flight, resumable, checked end to end with SHA-256 (client.Upload and
// client.Download do each file), and tells a Progress how each file goes.
// The CLI parses the arguments and prints; everything else is here.
//
//	res, err := transfer.Copy(ctx, c, []string{"big.iso", ":drop/"}, transfer.Options{Resume: true})
//	// err: rexec itself could not work (usage, connection, auth): exit 255
//	// res.Failures: one per path that could not be copied: exit 1
package transfer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
)

// Endpoint is one argument of cp: a local path, or a remote one, written
// with a leading ':' (":" alone is the key's root, or its home directory).
// A local path that starts with ':' is written "./:name".
type Endpoint struct {
	Remote bool
	Path   string
}

// Parse reads one argument.
func Parse(arg string) Endpoint {
	if rest, ok := strings.CutPrefix(arg, ":"); ok {
		return Endpoint{Remote: true, Path: rest}
	}
	return Endpoint{Path: arg}
}

func (e Endpoint) String() string {
	if e.Remote {
		return ":" + e.Path
	}
	return e.Path
}

// Options configure Copy.
type Options struct {
	// Recursive copies directories with everything in them (-r).
	Recursive bool
	// Preserve keeps modes and mtimes (-p).
	Preserve bool
	// Resume goes on from partial transfers (--resume).
	Resume bool
	// Jobs is how many files are in flight at once (-j). By default 4.
	Jobs int
	// Progress is told of every file. By default nothing is.
	Progress Progress
}

// UsageError is a command line Copy cannot run (exit 255).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Failure is one path that could not be copied.
type Failure struct {
	Path string // as the user would name it (":remote" or local)
	Err  error
}

func (f Failure) Error() string { return f.Path + ": " + Why(f.Err) }

// Result is what a Copy did.
type Result struct {
	Files    int   // regular files copied
	Bytes    int64 // bytes they hold
	Sent     int64 // bytes moved (less than Bytes when resumed)
	Failures []Failure
}

// Copy copies args[:len-1] to the last arg: one side remote, the other
// local. Its error is rexec's own failure (usage, connection, auth), after
// which nothing more was tried; a path that could not be copied is a
// Failure in the result, and the others go on.
func Copy(ctx context.Context, c *client.Client, args []string, o Options) (*Result, error) {
	if len(args) < 2 {
		return nil, &UsageError{"cp needs a source and a destination: rexec cp SRC... DST (a remote path starts with ':')"}
	}
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.Progress == nil {
		o.Progress = None()
	}
	dst := Parse(args[len(args)-1])
	var srcs []string
	for _, a := range args[:len(args)-1] {
		s := Parse(a)
		if s.Remote == dst.Remote {
			if dst.Remote {
				return nil, &UsageError{fmt.Sprintf("%s and %s are both remote: one side of cp is local", s, dst)}
			}
			return nil, &UsageError{fmt.Sprintf("%s and %s are both local: name the remote side with a leading ':' (like :dir/file)", s, dst)}
		}
		srcs = append(srcs, s.Path)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cp := &copier{ctx: ctx, cancel: cancel, c: c, fsc: c.Files(), o: o, sem: make(chan struct{}, o.Jobs)}
	if dst.Remote {
		cp.upload(srcs, dst.Path)
	} else {
		cp.download(srcs, dst.Path)
	}
	cp.wg.Wait()
	cp.finish()
	o.Progress.Wait()
	if cp.fatal != nil {
		return &cp.res, cp.fatal
	}
	return &cp.res, nil
}

// copier is one Copy.
type copier struct {
	ctx    context.Context
	cancel context.CancelFunc
	c      *client.Client
	fsc    rexecv1.FileServiceClient
	o      Options
	sem    chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	res   Result
	fatal error
	// after runs once every file is done: directory modes and mtimes
	// (deepest first), closing local roots.
	after []func()
}

// Fatal reports whether err means rexec itself cannot work, so that a copy
// stops rather than fail every path alike: the server is unreachable, the
// key is refused, or it lacks the scope.
func Fatal(err error) bool {
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return false
	}
	st := se.GRPCStatus()
	switch st.Code() {
	case codes.Unavailable, codes.Unauthenticated:
		return true
	case codes.PermissionDenied:
		return st.Message() == interceptors.PermissionDeniedMessage
	}
	return false
}

// fail records that name could not be copied, or, for a fatal error,
// stops the copy.
func (cp *copier) fail(name string, err error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if Fatal(err) {
		if cp.fatal == nil {
			cp.fatal = err
			cp.cancel()
		}
		return
	}
	if cp.fatal != nil || errors.Is(err, context.Canceled) && cp.ctx.Err() != nil {
		return // the copy is stopping: its cancelled calls are not failures
	}
	cp.res.Failures = append(cp.res.Failures, Failure{Path: name, Err: err})
}

func (cp *copier) done(r *client.Transferred) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.res.Files++
	cp.res.Bytes += r.Size
	cp.res.Sent += r.Sent
}

// spawn runs f with at most Jobs in flight; it waits for a slot.
func (cp *copier) spawn(f func()) {
	select {
	case cp.sem <- struct{}{}:
	case <-cp.ctx.Done():
		return
	}
	cp.wg.Add(1)
	go func() {
		defer func() { <-cp.sem; cp.wg.Done() }()
		f()
	}()
}

func (cp *copier) later(f func()) {
	cp.mu.Lock()
	cp.after = append(cp.after, f)
	cp.mu.Unlock()
}

func (cp *copier) finish() {
	for i := len(cp.after) - 1; i >= 0; i-- {
		cp.after[i]()
	}
}

func (cp *copier) transferOptions(p FileProgress) client.TransferOptions {
	return client.TransferOptions{Resume: cp.o.Resume, Preserve: cp.o.Preserve, Progress: p.Update}
}

// remoteDir reports whether the remote path is a directory; a key that may
// not stat (files-write alone) is taken at its word.
func (cp *copier) remoteDir(p string) (bool, error) {
	st, err := cp.fsc.Stat(cp.ctx, &rexecv1.StatRequest{Path: p, Follow: true})
	switch {
	case status.Code(err) == codes.NotFound:
		return false, nil
	case status.Code(err) == codes.PermissionDenied && status.Convert(err).Message() == interceptors.PermissionDeniedMessage:
		return false, nil
	case err != nil:
		return false, err
	}
	return st.GetInfo().GetType() == rexecv1.FileType_FILE_TYPE_DIRECTORY, nil
}

// upload copies local srcs to remote dst.
func (cp *copier) upload(srcs []string, dst string) {
	isDir, err := cp.remoteDir(dst)
	if err != nil {
		cp.fail(":"+dst, err)
		return
	}
	into := isDir || len(srcs) > 1 || strings.HasSuffix(dst, "/")
	if into && !isDir && len(srcs) > 1 {
		cp.fail(":"+dst, errors.New("is not a directory on the server (make it with `rexec mkdir -p`)"))
		return
	}
	for _, src := range srcs {
		if cp.ctx.Err() != nil {
			return
		}
		target := dst
		if into {
			target = path.Join(dst, filepath.Base(src))
		}
		fi, err := os.Stat(src) // a symlink named on the command line is followed, as cp does
		switch {
		case err != nil:
			cp.fail(src, err)
		case fi.IsDir() && !cp.o.Recursive:
			cp.fail(src, errors.New("is a directory (copy it with -r)"))
		case fi.IsDir():
			cp.uploadTree(src, target, fi)
		case fi.Mode().IsRegular():
			cp.spawn(func() { cp.uploadFile(src, target, fi) })
		default:
			cp.fail(src, errors.New("is not a regular file or a directory"))
		}
	}
}

func (cp *copier) uploadFile(src, target string, fi fs.FileInfo) {
	p := cp.o.Progress.File(src, fi.Size())
	f, err := os.Open(src)
	var r *client.Transferred
	if err == nil {
		r, err = cp.c.UploadFile(cp.ctx, f, fi, target, cp.transferOptions(p))
		f.Close()
	}
	p.Done(err)
	if err != nil {
		cp.fail(src, err)
		return
	}
	cp.done(r)
}

// dirMode is the mode a copied directory gets: its source's with -p, else
// the source's & 0755.
func (cp *copier) dirMode(m fs.FileMode) uint32 {
	if cp.o.Preserve {
		return uint32(m.Perm())
	}
	return uint32(m.Perm() & 0o755)
}

// uploadTree copies the local directory src to remote target: directories
// and symlinks as they are met (a parent before its children), regular
// files Jobs at a time. Symlinks are copied as symlinks, never followed.
func (cp *copier) uploadTree(src, target string, top fs.FileInfo) {
	mkdir := func(rp string, fi fs.FileInfo) error {
		_, err := cp.fsc.Mkdir(cp.ctx, &rexecv1.MkdirRequest{Path: rp, Parents: true, Mode: cp.dirMode(fi.Mode())})
		if err == nil && cp.o.Preserve {
			mode, mtime := uint32(fi.Mode().Perm()), fi.ModTime()
			cp.later(func() {
				_, err := cp.fsc.SetAttributes(cp.ctx, &rexecv1.SetAttributesRequest{Path: rp, Mode: &mode, Mtime: timestamp(mtime)})
				if err != nil {
					cp.fail(":"+rp, err)
				}
			})
		}
		return err
	}
	if err := mkdir(target, top); err != nil {
		cp.fail(src, err)
		return
	}
	_ = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if cp.ctx.Err() != nil {
			return cp.ctx.Err()
		}
		if err != nil {
			cp.fail(p, err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		rp := path.Join(target, filepath.ToSlash(rel))
		fi, err := d.Info()
		if err != nil {
			cp.fail(p, err)
			return nil
		}
		switch {
		case d.IsDir():
			if err := mkdir(rp, fi); err != nil {
				cp.fail(p, err)
				return fs.SkipDir
			}
		case d.Type() == fs.ModeSymlink:
			link, err := os.Readlink(p)
			if err == nil {
				_, err = cp.fsc.Symlink(cp.ctx, &rexecv1.SymlinkRequest{Target: link, Path: rp, Replace: true})
			}
			if err != nil {
				cp.fail(p, err)
			}
		case d.Type().IsRegular():
			cp.spawn(func() { cp.uploadFile(p, rp, fi) })
		default:
			cp.fail(p, errors.New("is not a regular file, directory or symlink: skipped"))
		}
		return nil
	})
}

// download copies remote srcs to local dst.
func (cp *copier) download(srcs []string, dst string) {
	dfi, derr := os.Stat(dst)
	isDir := derr == nil && dfi.IsDir()
	into := isDir || len(srcs) > 1 || strings.HasSuffix(dst, "/")
	if into && !isDir {
		cp.fail(dst, errors.New("is not a directory"))
		return
	}
	for _, src := range srcs {
		if cp.ctx.Err() != nil {
			return
		}
		st, err := cp.fsc.Stat(cp.ctx, &rexecv1.StatRequest{Path: src, Follow: true})
		if err != nil {
			cp.fail(":"+src, err)
			continue
		}
		info := st.GetInfo()
		target := dst
		if into {
			if base := path.Base(src); base != "." && base != "/" && src != "" {
				target = filepath.Join(dst, base)
			}
		}
		switch info.GetType() {
		case rexecv1.FileType_FILE_TYPE_DIRECTORY:
			if !cp.o.Recursive {
				cp.fail(":"+src, errors.New("is a directory (copy it with -r)"))
				continue
			}
			cp.downloadTree(src, target, info)
		case rexecv1.FileType_FILE_TYPE_REGULAR:
			dir, name := filepath.Split(target)
			if dir == "" {
				dir = "."
			}
			root, err := os.OpenRoot(dir)
			if err != nil {
				cp.fail(target, err)
				continue
			}
			cp.later(func() { root.Close() })
			cp.spawn(func() { cp.downloadFile(src, root, name, info.GetSize()) })
		default:
			cp.fail(":"+src, errors.New("is not a regular file or a directory"))
		}
	}
}

func (cp *copier) downloadFile(src string, root *os.Root, name string, size int64) {
	p := cp.o.Progress.File(":"+src, size)
	r, err := cp.c.DownloadTo(cp.ctx, src, root, name, cp.transferOptions(p))
	p.Done(err)
	if err != nil {
		cp.fail(":"+src, err)
		return
	}
	cp.done(r)
}

// downloadTree copies the remote directory src to local target. Every
// local write goes through an os.Root opened at target, and every name the
// server lists must be one plain name: a server that lists "../x", or a
// symlink and then names a path through it, cannot lead a write outside
// target.
func (cp *copier) downloadTree(src, target string, top *rexecv1.FileInfo) {
	if err := os.Mkdir(target, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		cp.fail(target, err)
		return
	}
	root, err := os.OpenRoot(target)
	if err != nil {
		cp.fail(target, err)
		return
	}
	cp.later(func() { root.Close() })
	cp.localAttrs(root, ".", top)
	cp.walkRemote(src, root, ".")
}

// localAttrs sets a copied directory's mode and mtime once its files are
// done (-p).
func (cp *copier) localAttrs(root *os.Root, name string, info *rexecv1.FileInfo) {
	if !cp.o.Preserve {
		return
	}
	cp.later(func() {
		if err := root.Chmod(name, fs.FileMode(info.GetMode()&0o777)); err != nil {
			cp.fail(name, err)
		}
		mt := info.GetMtime().AsTime()
		if err := root.Chtimes(name, mt, mt); err != nil {
			cp.fail(name, err)
		}
	})
}

// validName reports whether a server's entry name is one plain name.
func validName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, "/\x00")
}

func (cp *copier) walkRemote(rdir string, root *os.Root, ldir string) {
	ents, err := client.List(cp.ctx, cp.fsc, rdir)
	if err != nil {
		cp.fail(":"+rdir, err)
		return
	}
	for _, e := range ents {
		if cp.ctx.Err() != nil {
			return
		}
		if e.GetNameNotUtf8() || !validName(e.GetName()) {
			cp.fail(fmt.Sprintf(":%s/%s", rdir, e.GetName()), errors.New("the server listed a name that is not one plain UTF-8 file name: skipped"))
			continue
		}
		rp := path.Join(rdir, e.GetName())
		lp := filepath.Join(ldir, e.GetName())
		switch e.GetType() {
		case rexecv1.FileType_FILE_TYPE_DIRECTORY:
			err := root.Mkdir(lp, fs.FileMode(cp.dirMode(fs.FileMode(e.GetMode()))))
			if errors.Is(err, fs.ErrExist) {
				if fi, serr := root.Lstat(lp); serr == nil && fi.IsDir() {
					err = nil
				}
			}
			if err != nil {
				cp.fail(lp, err)
				continue
			}
			cp.localAttrs(root, lp, e)
			cp.walkRemote(rp, root, lp)
		case rexecv1.FileType_FILE_TYPE_REGULAR:
			size := e.GetSize()
			cp.spawn(func() { cp.downloadFile(rp, root, lp, size) })
		case rexecv1.FileType_FILE_TYPE_SYMLINK:
			if fi, err := root.Lstat(lp); err == nil && !fi.IsDir() {
				_ = root.Remove(lp)
			}
			if err := root.Symlink(e.GetSymlinkTarget(), lp); err != nil {
				cp.fail(lp, err)
			}
		default:
			cp.fail(":"+rp, errors.New("is not a regular file, directory or symlink: skipped"))
		}
	}
}

// Why is err in one line for a user: the server's message without its
// "rexec: " prefix, or the error.
func Why(err error) string {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return strings.TrimPrefix(se.GRPCStatus().Message(), "rexec: ")
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return strings.TrimPrefix(err.Error(), "rexec: ")
}

func timestamp(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }
