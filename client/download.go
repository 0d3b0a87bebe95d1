package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// Download copies the regular file src on the server to the local path dst.
// It lands in a partial file beside dst (.NAME.rexec-SIZE-MTIME.part) and is
// renamed over dst only once complete and its SHA-256 is the server's; a
// failed download leaves dst as it was and, for a resume, the partial file.
// With o.Resume it goes on from the partial file of the same source.
func (c *Client) Download(ctx context.Context, src, dst string, o TransferOptions) (*Transferred, error) {
	dir, name := filepath.Split(dst)
	if dir == "" {
		dir = "."
	}
	if name == "" {
		return nil, fmt.Errorf("%s names a directory: name the file to write", dst)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return c.DownloadTo(ctx, src, root, name, o)
}

// DownloadTo is Download into the local directory root, as name (a path
// inside root: every local write goes through root, so that nothing a
// server sends — a symlink made earlier in a tree, say — can lead a write
// outside it).
func (c *Client) DownloadTo(ctx context.Context, src string, root *os.Root, name string, o TransferOptions) (*Transferred, error) {
	o.defaults()
	st, err := c.Files().Stat(ctx, &rexecv1.StatRequest{Path: src, Follow: true})
	if err != nil {
		return nil, err
	}
	info := st.GetInfo()
	switch info.GetType() {
	case rexecv1.FileType_FILE_TYPE_REGULAR:
	case rexecv1.FileType_FILE_TYPE_DIRECTORY:
		return nil, fmt.Errorf("%s is a directory (copy it with -r)", src)
	default:
		return nil, fmt.Errorf("%s is not a regular file", src)
	}
	size, mtime := info.GetSize(), info.GetMtime().AsTime()
	part := partialName(name, size, mtime)
	var from int64
	others, err := otherPartials(root, name, part)
	if err != nil {
		return nil, err
	}
	if o.Resume {
		if pfi, err := root.Lstat(part); err == nil && pfi.Mode().IsRegular() && pfi.Size() <= size {
			from = pfi.Size()
		} else if len(others) > 0 {
			return nil, fmt.Errorf("%w: the partial download %s is of another version of %s (size or mtime differ): copy it again without --resume",
				ErrSourceChanged, others[0], src)
		}
	} else {
		for _, p := range append(others, part) {
			_ = root.Remove(p)
		}
	}
	f, err := root.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.Truncate(from); err != nil {
		return nil, err
	}
	h := sha256.New()
	if from > 0 {
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, from)); err != nil {
			return nil, err
		}
	}
	res := &Transferred{Size: size, Resumed: from}
	o.Progress(Progress{Size: size, Done: from, Sent: from, Resumed: from})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Files().Download(ctx, &rexecv1.DownloadRequest{
		Path: src, Offset: from, Expect: &rexecv1.FileIdentity{Size: size, Mtime: info.GetMtime()},
	})
	if err != nil {
		return nil, err
	}
	pos := from
	var done *rexecv1.DownloadDone
	for done == nil {
		if err := ctx.Err(); err != nil {
			return res, err // what arrived stays in the partial file
		}
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return res, errors.New("rexec: the download ended without its hash")
		}
		if err != nil {
			return res, err
		}
		switch k := m.GetKind().(type) {
		case *rexecv1.DownloadResponse_Chunk:
			if k.Chunk.GetOffset() != pos {
				return res, fmt.Errorf("rexec: a chunk at offset %d, expected %d", k.Chunk.GetOffset(), pos)
			}
			data := k.Chunk.GetData()
			if pos+int64(len(data)) > size {
				return res, fmt.Errorf("rexec: the server sent more than the %d bytes of %s", size, src)
			}
			if err := writeHashed(f, h, data, pos); err != nil {
				return res, err
			}
			pos += int64(len(data))
			res.Sent += int64(len(data))
			o.Progress(Progress{Size: size, Done: pos, Sent: pos, Resumed: from})
		case *rexecv1.DownloadResponse_Done:
			done = k.Done
		}
	}
	res.SHA256 = h.Sum(nil)
	if pos != size || done.GetEnd() != size {
		return res, fmt.Errorf("rexec: %s: got %d of %d bytes (it changed while it was read?): copy it again", src, pos, size)
	}
	if !bytes.Equal(done.GetSha256(), res.SHA256) {
		f.Close()
		_ = root.Remove(part)
		return res, fmt.Errorf("%w: %s: the server's is %x, the bytes received hash to %x; nothing was written: copy it again",
			ErrHashMismatch, src, done.GetSha256(), res.SHA256)
	}
	if err := f.Chmod(localMode(info.GetMode(), o.Preserve)); err != nil {
		return res, err
	}
	if err := f.Sync(); err != nil {
		return res, err
	}
	if err := f.Close(); err != nil {
		return res, err
	}
	if o.Preserve {
		if err := root.Chtimes(part, mtime, mtime); err != nil {
			return res, err
		}
	}
	if err := root.Rename(part, name); err != nil {
		return res, err
	}
	return res, syncLocalDir(root, filepath.Dir(name))
}

// partialName is where a download of a source of size and mtime to name
// lands until it is complete: beside it, hidden, named by the source's
// identity so that a resume never continues another version.
func partialName(name string, size int64, mtime time.Time) string {
	return filepath.Join(filepath.Dir(name), fmt.Sprintf(".%s.rexec-%d-%d.part", filepath.Base(name), size, mtime.UnixNano()))
}

// otherPartials lists the partial downloads to name other than part.
func otherPartials(root *os.Root, name, part string) ([]string, error) {
	d, err := root.Open(filepath.Dir(name))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	prefix := "." + filepath.Base(name) + ".rexec-"
	var out []string
	for _, n := range names {
		p := filepath.Join(filepath.Dir(name), n)
		if strings.HasPrefix(n, prefix) && strings.HasSuffix(n, ".part") && p != part {
			out = append(out, p)
		}
	}
	return out, nil
}

// localMode is the mode of a downloaded file: the server's & 0755 (as a
// umask of 022 gives), or & 0777 with preserve; 0644 when the server gives
// none. Setuid, setgid and sticky are never kept.
func localMode(mode uint32, preserve bool) fs.FileMode {
	switch {
	case mode&0o777 == 0:
		return 0o644
	case preserve:
		return fs.FileMode(mode & 0o777)
	}
	return fs.FileMode(mode & 0o755)
}

// syncLocalDir fsyncs a directory of root, so that a rename in it is durable.
func syncLocalDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeHashed writes data at off and hashes it at the same time: the two
// largest costs of receiving a file, each about a core's worth at a GB/s.
func writeHashed(f *os.File, h io.Writer, data []byte, off int64) error {
	hashed := make(chan struct{})
	go func() {
		h.Write(data)
		close(hashed)
	}()
	_, err := f.WriteAt(data, off)
	<-hashed
	return err
}
