package files

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// Stat describes one path.
func (s *Service) Stat(ctx context.Context, req *rexecv1.StatRequest) (*rexecv1.StatResponse, error) {
	c, err := s.begin(ctx)
	if err != nil {
		return nil, toStatus(req.GetPath(), err)
	}
	defer c.Close()
	info, err := c.stat(req.GetPath(), req.GetFollow())
	if err != nil {
		return nil, toStatus(req.GetPath(), err)
	}
	return &rexecv1.StatResponse{Info: info}, nil
}

func (c *callFS) stat(path string, follow bool) (*rexecv1.FileInfo, error) {
	name, err := c.name("path", path)
	if err != nil {
		return nil, err
	}
	fi, err := c.Lstat(name)
	if err == nil && follow && fi.Mode().Type() == fs.ModeSymlink {
		fi, err = c.Stat(name)
	}
	if err != nil {
		return nil, err
	}
	var target string
	if fi.Mode().Type() == fs.ModeSymlink {
		if target, err = c.Readlink(name); err != nil {
			return nil, err
		}
	}
	return fileInfo(display(path), fi, target), nil
}

// listPage bounds one ListResponse: entries, and bytes of names and
// targets (a page stays far below gRPC's 4 MiB message limit).
const (
	listPageEntries = 1000
	listPageBytes   = 1 << 20
)

// List streams a directory's entries, a page per message; a path that is
// not a directory is listed as itself. Entries are described as lstat sees
// them: a symlink is listed, never followed.
func (s *Service) List(req *rexecv1.ListRequest, stream rexecv1.FileService_ListServer) error {
	c, err := s.begin(stream.Context())
	if err != nil {
		return toStatus(req.GetPath(), err)
	}
	defer c.Close()
	return toStatus(req.GetPath(), c.list(req.GetPath(), stream.Send))
}

func (c *callFS) list(path string, send func(*rexecv1.ListResponse) error) error {
	name, err := c.name("path", path)
	if err != nil {
		return err
	}
	fi, err := c.Stat(name)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		info, err := c.stat(path, false)
		if err != nil {
			return err
		}
		return send(&rexecv1.ListResponse{Entries: []*rexecv1.FileInfo{info}})
	}
	d, err := c.OpenFile(name, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	page := &rexecv1.ListResponse{}
	bytes := 0
	flush := func() error {
		if len(page.Entries) == 0 {
			return nil
		}
		err := send(page)
		page, bytes = &rexecv1.ListResponse{}, 0
		return err
	}
	// The partial uploads of a root are not its files: `rexec ls --partial`
	// shows them. Nothing is hidden from a key without a root.
	hide := c.rooted && filepath.Clean(name) == "."
	sent := false
	for {
		ents, rerr := d.ReadDir(256)
		for _, e := range ents {
			if hide && e.Name() == partialDirName {
				continue
			}
			efi, err := e.Info() // lstat, relative to the open directory
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since ReadDir
			}
			if err != nil {
				return err
			}
			var target string
			if efi.Mode().Type() == fs.ModeSymlink {
				target, _ = c.Readlink(filepath.Join(name, e.Name()))
			}
			info := fileInfo(e.Name(), efi, target)
			page.Entries = append(page.Entries, info)
			bytes += len(info.Name) + len(info.SymlinkTarget) + 64
			if len(page.Entries) >= listPageEntries || bytes >= listPageBytes {
				if err := flush(); err != nil {
					return err
				}
				sent = true
			}
		}
		if rerr != nil || len(ents) == 0 {
			if rerr != nil && !errors.Is(rerr, io.EOF) {
				return rerr
			}
			break
		}
	}
	if !sent && len(page.Entries) == 0 {
		return send(page) // an empty directory: one empty page, so the client knows it listed
	}
	return flush()
}

// openRegular opens name for reading if it is a regular file, and never
// opens anything else: it looks first (a FIFO would block the open, a
// device may act on it), then opens without blocking and checks that what
// it opened is the regular file it looked at.
func (c *callFS) openRegular(name, path string) (*os.File, fs.FileInfo, error) {
	fi, err := c.Stat(name)
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, notRegular(path, fi)
	}
	f, err := c.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	ofi, err := f.Stat()
	if err == nil && (!ofi.Mode().IsRegular() || !sameFile(fi, ofi)) {
		err = refuse(refuseState, "%s changed while it was opened: try again", display(path))
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, ofi, nil
}

func notRegular(path string, fi fs.FileInfo) error {
	if fi.IsDir() {
		return refuse(refuseNotServed, "%s is a directory (copy it with -r)", display(path))
	}
	return refuse(refuseNotServed, "%s is a %s: rexec serves regular files, directories and symlinks only, and never opens anything else", display(path), typeName(fi.Mode()))
}

// Download streams a regular file; see the proto.
func (s *Service) Download(req *rexecv1.DownloadRequest, stream rexecv1.FileService_DownloadServer) error {
	c, err := s.begin(stream.Context())
	if err != nil {
		return toStatus(req.GetPath(), err)
	}
	defer c.Close()
	return toStatus(req.GetPath(), s.download(c, req, stream.Send))
}

func (s *Service) download(c *callFS, req *rexecv1.DownloadRequest, send func(*rexecv1.DownloadResponse) error) error {
	name, err := c.name("path", req.GetPath())
	if err != nil {
		return err
	}
	if req.GetOffset() < 0 || req.GetLimit() < 0 {
		return refuse(refuseInvalid, "offset (%d) and limit (%d) may not be negative", req.GetOffset(), req.GetLimit())
	}
	f, fi, err := c.openRegular(name, req.GetPath())
	if err != nil {
		return err
	}
	defer f.Close()
	if e := req.GetExpect(); e != nil && (e.GetSize() != fi.Size() || !e.GetMtime().AsTime().Equal(fi.ModTime())) {
		return refuse(refuseState, "%s changed since the download began (it had %d bytes and mtime %s, it has %d and %s): download it again without --resume",
			display(req.GetPath()), e.GetSize(), e.GetMtime().AsTime().UTC(), fi.Size(), fi.ModTime().UTC())
	}
	if req.GetOffset() > fi.Size() {
		return refuse(refuseRange, "offset %d is past the end of %s (%d bytes)", req.GetOffset(), display(req.GetPath()), fi.Size())
	}
	if err := send(&rexecv1.DownloadResponse{Kind: &rexecv1.DownloadResponse_Info{Info: fileInfo(display(req.GetPath()), fi, "")}}); err != nil {
		return err
	}
	h := sha256.New()
	off := req.GetOffset()
	if off > 0 {
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, off)); err != nil {
			return err
		}
	}
	end := int64(-1)
	if req.GetLimit() > 0 {
		end = off + req.GetLimit()
	}
	// Reading and hashing run a chunk or two ahead of sending, on their own
	// goroutine, so that hashing one chunk overlaps sending the last. One
	// message for every chunk: Send marshals before it returns.
	chunks := readAhead(f, off, end, s.cfg.ChunkSize, h)
	defer chunks.stop()
	chunk := &rexecv1.Chunk{}
	msg := &rexecv1.DownloadResponse{Kind: &rexecv1.DownloadResponse_Chunk{Chunk: chunk}}
	for c := range chunks.ready {
		chunk.Offset, chunk.Data = c.off, c.buf
		if err := send(msg); err != nil {
			return err
		}
		off = c.off + int64(len(c.buf))
		chunks.free <- c.buf[:cap(c.buf)]
	}
	if err := chunks.err; err != nil {
		return err
	}
	return send(&rexecv1.DownloadResponse{Kind: &rexecv1.DownloadResponse_Done{Done: &rexecv1.DownloadDone{Sha256: h.Sum(nil), End: off}}})
}

// reader reads a file ahead of its sender, hashing what it reads.
type reader struct {
	ready chan readChunk // closed at the end, or on an error (then err)
	free  chan []byte
	done  chan struct{}
	err   error // set before ready is closed
}

type readChunk struct {
	off int64
	buf []byte
}

// readAhead reads f from off to end (-1: to EOF) in chunks of size, into
// h, up to three chunks ahead of the receiver of ready.
func readAhead(f io.ReaderAt, off, end int64, size int, h io.Writer) *reader {
	const ahead = 2
	r := &reader{ready: make(chan readChunk, ahead), free: make(chan []byte, ahead), done: make(chan struct{})}
	for range ahead {
		r.free <- make([]byte, size)
	}
	go func() {
		defer close(r.ready)
		for end < 0 || off < end {
			var buf []byte
			select {
			case buf = <-r.free:
			case <-r.done:
				return
			}
			want := len(buf)
			if end >= 0 {
				want = int(min(int64(want), end-off))
			}
			n, err := f.ReadAt(buf[:want], off)
			if n > 0 {
				h.Write(buf[:n])
				r.ready <- readChunk{off, buf[:n]}
				off += int64(n)
			}
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				r.err = err
				return
			}
		}
	}()
	return r
}

// stop ends the reader and waits for it, so that its hash is not written
// after the caller has moved on.
func (r *reader) stop() {
	close(r.done)
	for range r.ready {
	}
}
