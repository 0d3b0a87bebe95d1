package files

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// upload is a partial upload while some call holds it (acquire/release).
// Its state on disk is as new as st whenever no stream writes it.
type upload struct {
	store string // the callFS.store it belongs to
	refs  int    // calls holding it; guarded by Service.mu

	mu sync.Mutex // guards everything below
	st uploadState
	h  sha256Hash // the hash of st.Committed bytes
	f  *os.File   // the partial file, open while a stream writes
	// owner is the generation of the stream that may write: a new stream
	// takes the upload over by moving it on, and an older one ends at its
	// next chunk.
	owner uint64
	saved time.Time // when st was last saved
	// gone: committed, cancelled or dropped; every holder ends.
	gone bool
}

// acquire returns c's upload id, from memory or from its state on disk, if
// c's key started it; release it when done. An upload of another key, or
// of another root, is NotFound, as one that does not exist.
func (s *Service) acquire(c *callFS, id string) (*upload, error) {
	notFound := refuse(refuseNotFound, "no partial upload %s for key %q (it finished, was cancelled or expired; `rexec ls --partial` lists them)", id, c.key.ID)
	if !validUploadID(id) {
		return nil, refuse(refuseInvalid, "upload_id %q is not an upload id (32 hex digits)", id)
	}
	s.mu.Lock()
	if u := s.uploads[id]; u != nil {
		defer s.mu.Unlock()
		if u.store != c.store || u.st.Key != c.key.ID {
			return nil, notFound
		}
		u.refs++
		return u, nil
	}
	s.mu.Unlock()
	st, err := c.loadState(id)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, errBadState):
		return nil, notFound
	case err != nil:
		return nil, err
	case st.Key != c.key.ID:
		return nil, notFound
	}
	h, _ := hashAt(st) // loadState checked it
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.uploads[id]; u != nil { // loaded meanwhile by another call
		u.refs++
		return u, nil
	}
	u := &upload{store: c.store, refs: 1, st: *st, h: h, saved: st.Updated}
	s.uploads[id] = u
	return u, nil
}

// release gives u back; the last holder closes its file.
func (s *Service) release(u *upload) {
	s.mu.Lock()
	u.refs--
	last := u.refs == 0
	if last && s.uploads[u.st.ID] == u {
		delete(s.uploads, u.st.ID)
	}
	s.mu.Unlock()
	if last {
		u.mu.Lock()
		if u.f != nil {
			u.f.Close()
			u.f = nil
		}
		u.mu.Unlock()
	}
}

// active reports whether a call holds upload id of c's store.
func (s *Service) active(c *callFS, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.uploads[id]
	return u != nil && u.store == c.store
}

// StartUpload starts an upload, or finds the partial one to resume.
func (s *Service) StartUpload(ctx context.Context, req *rexecv1.StartUploadRequest) (*rexecv1.StartUploadResponse, error) {
	c, err := s.begin(ctx)
	if err != nil {
		return nil, toStatus(req.GetPath(), err)
	}
	defer c.Close()
	resp, err := s.startUpload(c, req)
	s.auditResult(ctx, "upload started", req.GetPath(), err,
		slog.String("upload_id", resp.GetUploadId()), slog.Int64("size", req.GetSource().GetSize()),
		slog.Int64("committed", resp.GetCommittedSize()), slog.Bool("resumed", resp.GetResumed()))
	return resp, toStatus(req.GetPath(), err)
}

func (s *Service) startUpload(c *callFS, req *rexecv1.StartUploadRequest) (*rexecv1.StartUploadResponse, error) {
	name, err := c.name("path", req.GetPath())
	if err != nil {
		return nil, err
	}
	if len(req.GetPath()) > 0 && req.GetPath()[len(req.GetPath())-1] == '/' {
		return nil, refuse(refuseInvalid, "path %q ends in /: name the file to write", req.GetPath())
	}
	name = filepath.Clean(name)
	src := req.GetSource()
	if src.GetSize() < 0 {
		return nil, refuse(refuseInvalid, "source.size %d is negative", src.GetSize())
	}
	if src.GetMtime() != nil && src.GetMtime().CheckValid() != nil {
		return nil, refuse(refuseInvalid, "source.mtime is not a valid time")
	}
	if err := c.checkDestination(name, req.GetPath()); err != nil {
		return nil, err
	}
	st := s.storeOf(c)
	st.mu.Lock()
	defer st.mu.Unlock()
	s.sweep(c, st, false)
	states, _, err := c.listStates()
	if err != nil {
		return nil, err
	}
	var prev *uploadState
	for _, p := range states {
		if p.Key != c.key.ID || p.Path != name {
			continue
		}
		if prev != nil { // two partials of one destination: keep the newer
			older := prev
			if p.Updated.Before(prev.Updated) {
				older, p = p, prev
			}
			s.drop(c, older.ID)
		}
		prev = p
	}
	mtime := src.GetMtime().AsTime()
	if src.GetMtime() == nil {
		mtime = time.Unix(0, 0)
	}
	if prev != nil {
		same := prev.Size == src.GetSize() && prev.mtime().Equal(mtime)
		switch {
		case req.GetResume() && same:
			u, err := s.acquire(c, prev.ID)
			if err != nil {
				return nil, err
			}
			defer s.release(u)
			u.mu.Lock()
			committed := u.st.Committed
			u.mu.Unlock()
			return &rexecv1.StartUploadResponse{UploadId: prev.ID, CommittedSize: committed, Resumed: true}, nil
		case req.GetResume():
			return nil, refuse(refuseState, "%s: the source changed since the first attempt (it had %d bytes and mtime %s, it has %d bytes and mtime %s): copy it again without --resume",
				display(req.GetPath()), prev.Size, prev.mtime().UTC().Format(time.RFC3339Nano), src.GetSize(), mtime.UTC().Format(time.RFC3339Nano))
		}
		s.drop(c, prev.ID)
	}
	if c.key.Quota > 0 {
		used, _, partial, err := s.usage(c, st, states)
		if err != nil {
			return nil, err
		}
		if prev != nil {
			used -= prev.Size // dropped just now
		}
		if used+src.GetSize() > c.key.Quota {
			return nil, refuse(refuseQuota, "%s: %d bytes would pass key %q's quota of %d bytes (%d used, %d of them by partial uploads): remove files (`rexec rm`) or partial uploads (`rexec ls --partial`)",
				display(req.GetPath()), src.GetSize(), c.key.ID, c.key.Quota, used, partial)
		}
	}
	now := s.cfg.Now()
	state := &uploadState{
		ID: newUploadID(), Key: c.key.ID, Path: name, Size: src.GetSize(),
		MtimeSec: mtime.Unix(), MtimeNsec: int32(mtime.Nanosecond()),
		Mode: req.GetMode(), Preserve: req.GetPreserve(), Created: now, Updated: now,
	}
	if err := c.MkdirAll(c.partialDir, 0o700); err != nil {
		return nil, err
	}
	f, err := c.OpenFile(c.partPath(state.ID), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	err = reserve(f, state.Size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = c.saveState(state)
	}
	if err != nil {
		c.dropPartial(state.ID)
		return nil, err
	}
	return &rexecv1.StartUploadResponse{UploadId: state.ID}, nil
}

// checkDestination says whether an upload may replace name (what the
// request called path): a regular file with one link, a symlink (replaced
// itself, never followed), or nothing, in an existing directory.
func (c *callFS) checkDestination(name, path string) error {
	fi, err := c.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		dir, err := c.Stat(filepath.Dir(name))
		if errors.Is(err, fs.ErrNotExist) {
			return refuse(refuseNotFound, "the directory of %s does not exist: make it first (`rexec mkdir -p`)", display(path))
		}
		if err != nil {
			return err
		}
		if !dir.IsDir() {
			return refuse(refuseNotServed, "the parent of %s is a %s, not a directory", display(path), typeName(dir.Mode()))
		}
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		return refuse(refuseNotServed, "%s is a directory: name the file inside it (`rexec cp` does when the destination ends in /)", display(path))
	case fi.Mode().Type() == fs.ModeSymlink:
		return nil
	case !fi.Mode().IsRegular():
		return refuse(refuseNotServed, "%s is a %s: rexec serves regular files, directories and symlinks only, and never opens or replaces anything else", display(path), typeName(fi.Mode()))
	case nlink(fi) > 1:
		return refuse(refuseNotServed, "%s has %d hard links: rexec does not write through a hard link (replacing it would split it from its other names, one of which may be outside the root); remove it first", display(path), nlink(fi))
	}
	return nil
}

// drop removes upload id of c (the caller holds the store's lock): its
// streams end at their next chunk.
func (s *Service) drop(c *callFS, id string) {
	s.mu.Lock()
	u := s.uploads[id]
	s.mu.Unlock()
	if u != nil && u.store == c.store {
		u.mu.Lock()
		u.gone = true
		if u.f != nil {
			u.f.Close()
			u.f = nil
		}
		u.mu.Unlock()
	}
	c.dropPartial(id)
}

// Upload writes an upload's bytes; see the proto.
func (s *Service) Upload(stream rexecv1.FileService_UploadServer) error {
	s.calls.Add(1)
	defer s.calls.Done()
	ctx := stream.Context()
	c, err := s.begin(ctx)
	if err != nil {
		return toStatus("", err)
	}
	defer c.Close()
	first, err := stream.Recv()
	if err != nil {
		return toStatus("", err)
	}
	id := first.GetUploadId()
	if id == "" {
		return toStatus("", refuse(refuseInvalid, "the first message of an Upload names the upload (upload_id, from StartUpload)"))
	}
	u, err := s.acquire(c, id)
	if err != nil {
		return toStatus("", err)
	}
	defer s.release(u)
	gen, opened, err := u.open(c)
	path := u.st.Path
	if err != nil {
		return toStatus(path, err)
	}
	if err := stream.Send(&rexecv1.UploadResponse{Kind: &rexecv1.UploadResponse_Opened{Opened: opened}}); err != nil {
		u.checkpoint(c, gen, s.cfg.Now())
		return err
	}
	info, sum, err := s.receive(ctx, c, u, gen, stream)
	if info == nil {
		// Whatever happened, what landed is kept for a resume.
		u.checkpoint(c, gen, s.cfg.Now())
	}
	attrs := []slog.Attr{slog.String("upload_id", id), slog.Int64("size", u.st.Size), slog.Int64("committed", u.committed())}
	if sum != nil {
		attrs = append(attrs, slog.String("sha256", hex.EncodeToString(sum)))
	}
	s.auditResult(ctx, "upload ended", display(path), err, attrs...)
	if err != nil {
		return toStatus(display(path), err)
	}
	return stream.Send(&rexecv1.UploadResponse{Kind: &rexecv1.UploadResponse_Done{Done: &rexecv1.UploadDone{Info: info, Sha256: sum}}})
}

// receive takes chunks until finish, and commits. It returns the new
// file's info on success; on any error the caller checkpoints.
func (s *Service) receive(ctx context.Context, c *callFS, u *upload, gen uint64, stream rexecv1.FileService_UploadServer) (*rexecv1.FileInfo, []byte, error) {
	type recvd struct {
		m   *rexecv1.UploadRequest
		err error
	}
	// Recv runs on its own goroutine so that the end of the server's grace
	// (base) ends the upload while it waits for a chunk; it stops once the
	// handler has returned (the stream ends, Recv fails).
	msgs := make(chan recvd)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			m, err := stream.Recv()
			select {
			case msgs <- recvd{m, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var ack rexecv1.UploadResponse
	var committed rexecv1.UploadResponse_CommittedSize
	ack.Kind = &committed
	for {
		var r recvd
		select {
		case <-s.base.Done():
			return nil, nil, refuse(refuseUnavailable, "rexecd is shutting down; %d bytes of %s are kept: run the same copy with --resume to go on", u.committed(), display(u.st.Path))
		case r = <-msgs:
		}
		if errors.Is(r.err, io.EOF) {
			return nil, nil, refuse(refuseInvalid, "the Upload stream ended without finish_sha256; %d bytes are kept for a resume", u.committed())
		}
		if r.err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			return nil, nil, r.err
		}
		switch k := r.m.GetKind().(type) {
		case *rexecv1.UploadRequest_Chunk:
			n, err := u.write(c, gen, k.Chunk, s.cfg.Now(), s.cfg.Checkpoint)
			if err != nil {
				return nil, nil, err
			}
			committed.CommittedSize = n
			if err := stream.Send(&ack); err != nil {
				return nil, nil, err
			}
		case *rexecv1.UploadRequest_FinishSha256:
			info, err := s.commit(c, u, gen, k.FinishSha256)
			if err != nil {
				return nil, nil, err
			}
			return info, k.FinishSha256, nil
		case *rexecv1.UploadRequest_UploadId:
			return nil, nil, refuse(refuseInvalid, "upload_id comes only in the first message of an Upload")
		default:
			return nil, nil, refuse(refuseInvalid, "an empty UploadRequest: send chunk or finish_sha256")
		}
	}
}

// committed is u's committed size now.
func (u *upload) committed() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.st.Committed
}

// open takes u over for a new stream: it returns the stream's generation
// and where u stands. The partial file is opened (and cut back to the
// committed size: bytes past it may be from before a crash) if no stream
// had it open.
func (u *upload) open(c *callFS) (uint64, *rexecv1.UploadOpened, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.gone {
		return 0, nil, refuse(refuseNotFound, "upload %s was finished, cancelled or dropped", u.st.ID)
	}
	if u.f == nil {
		f, err := c.OpenFile(c.partPath(u.st.ID), os.O_RDWR, 0)
		if err != nil {
			return 0, nil, err
		}
		fi, err := f.Stat()
		if err == nil && fi.Size() < u.st.Committed {
			err = refuse(refuseState, "the partial file of upload %s has %d bytes, its state says %d: cancel it and copy again", u.st.ID, fi.Size(), u.st.Committed)
		}
		if err == nil {
			err = f.Truncate(u.st.Committed)
		}
		if err != nil {
			f.Close()
			return 0, nil, err
		}
		u.f = f
	}
	u.owner++
	return u.owner, &rexecv1.UploadOpened{CommittedSize: u.st.Committed, CommittedSha256: u.h.Sum(nil)}, nil
}

// write writes one chunk, which must start at the committed size, and
// returns the new committed size; it saves the state every checkpoint.
func (u *upload) write(c *callFS, gen uint64, ch *rexecv1.Chunk, now time.Time, checkpoint time.Duration) (int64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.mayWrite(gen); err != nil {
		return 0, err
	}
	off, data := ch.GetOffset(), ch.GetData()
	if off != u.st.Committed {
		return 0, refuse(refuseRange, "a chunk at offset %d, but the server has %d bytes of upload %s: send from there", off, u.st.Committed, u.st.ID)
	}
	if int64(len(data)) > u.st.Size-off {
		return 0, refuse(refuseInvalid, "a chunk of %d bytes at offset %d passes the upload's size of %d bytes", len(data), off, u.st.Size)
	}
	if err := u.writeHashed(data, off); err != nil {
		return 0, err
	}
	u.st.Committed += int64(len(data))
	if now.Sub(u.saved) >= checkpoint {
		if err := u.saveLocked(c, now); err != nil {
			return 0, err
		}
	}
	return u.st.Committed, nil
}

// writeHashed writes data at off and hashes it at the same time (the two
// largest costs of an upload on the server, each about a core's worth at
// a GB/s). If the write fails the hash is put back as it was, so that it
// still matches the committed bytes.
func (u *upload) writeHashed(data []byte, off int64) error {
	before, err := u.h.MarshalBinary()
	if err != nil {
		return err
	}
	hashed := make(chan struct{})
	go func() {
		u.h.Write(data)
		close(hashed)
	}()
	_, err = u.f.WriteAt(data, off)
	<-hashed
	if err != nil {
		if rerr := u.h.UnmarshalBinary(before); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	return err
}

func (u *upload) mayWrite(gen uint64) error {
	switch {
	case u.gone:
		return refuse(refuseNotFound, "upload %s was cancelled or dropped while this stream wrote it", u.st.ID)
	case u.owner != gen:
		return refuse(refuseAborted, "another stream took upload %s over (a second `rexec cp --resume` of it?)", u.st.ID)
	}
	return nil
}

// checkpoint saves u's state if the stream of gen still owns it.
func (u *upload) checkpoint(c *callFS, gen uint64, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.mayWrite(gen) == nil && u.f != nil {
		_ = u.saveLocked(c, now) // a failure keeps the last state, which is consistent
	}
}

// saveLocked syncs the committed bytes, then saves the state that counts them.
func (u *upload) saveLocked(c *callFS, now time.Time) error {
	if err := u.f.Sync(); err != nil {
		return err
	}
	hs, err := u.h.MarshalBinary()
	if err != nil {
		return err
	}
	st := u.st
	st.Hash, st.Updated = hs, now
	if err := c.saveState(&st); err != nil {
		return err
	}
	u.st.Hash, u.st.Updated, u.saved = hs, now, now
	return nil
}

// commit puts a whole, hash-checked upload at its destination: size and
// SHA-256 compared, mode and mtime set, fsync, rename into place, fsync of
// the directory. A hash that differs drops the upload (DataLoss) and leaves
// the destination as it was.
func (s *Service) commit(c *callFS, u *upload, gen uint64, want []byte) (*rexecv1.FileInfo, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.mayWrite(gen); err != nil {
		return nil, err
	}
	path := display(u.st.Path)
	if u.st.Committed != u.st.Size {
		return nil, refuse(refuseState, "%s: finish after %d of %d bytes: send the rest first", path, u.st.Committed, u.st.Size)
	}
	got := u.h.Sum(nil)
	if !bytes.Equal(got, want) {
		u.gone = true
		u.f.Close()
		u.f = nil
		c.dropPartial(u.st.ID)
		return nil, refuse(refuseDataLoss, "%s: the SHA-256 of the %d bytes the server received is %x, the client's is %x: nothing was written there; copy it again",
			path, u.st.Size, got, want)
	}
	if err := c.checkDestination(u.st.Path, path); err != nil {
		return nil, err
	}
	var replaced int64
	if fi, err := c.Lstat(u.st.Path); err == nil && fi.Mode().IsRegular() {
		replaced = fi.Size()
	}
	if err := c.asUser(func() error { return finishFile(u.f, &u.st) }); err != nil {
		return nil, err
	}
	err := c.Rename(c.partPath(u.st.ID), u.st.Path)
	if errors.Is(err, syscall.EXDEV) {
		err = c.copyInto(u.f, &u.st)
	}
	if err != nil {
		return nil, err
	}
	u.gone = true
	u.f.Close()
	u.f = nil
	s.storeOf(c).counted(u.st.Size - replaced) // before the reservation goes: never under
	c.dropPartial(u.st.ID)
	if err := c.syncDir(filepath.Dir(u.st.Path)); err != nil {
		return nil, err
	}
	fi, err := c.Lstat(u.st.Path)
	if err != nil {
		return nil, err
	}
	return fileInfo(path, fi, ""), nil
}

// finishFile gives a complete upload its mode (and with preserve its
// mtime) and syncs it.
func finishFile(f *os.File, st *uploadState) error {
	if err := f.Chmod(uploadMode(st.Mode, st.Preserve)); err != nil {
		return err
	}
	if st.Preserve {
		if err := setMtime(f, st.mtime()); err != nil {
			return err
		}
	}
	return f.Sync()
}

// uploadMode is the mode a new file gets: 0644 when none was sent; else
// mode & 0755 (as a umask of 022 gives), or mode & 0777 with preserve.
// Setuid, setgid and sticky are never set.
func uploadMode(mode uint32, preserve bool) fs.FileMode {
	switch {
	case mode == 0:
		return 0o644
	case preserve:
		return fs.FileMode(mode & 0o777)
	}
	return fs.FileMode(mode & 0o755)
}

// copyInto is the commit of an upload whose partial file is on another
// filesystem than its destination (a key without a root whose state
// directory is elsewhere): a copy into a temporary file beside the
// destination, fsync, rename.
func (c *callFS) copyInto(src *os.File, st *uploadState) error {
	tmp := filepath.Join(filepath.Dir(st.Path), fmt.Sprintf(".%s.rexec-%s.tmp", filepath.Base(st.Path), st.ID))
	dst, err := c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, io.NewSectionReader(src, 0, st.Size))
	if err == nil {
		err = c.asUser(func() error { return finishFile(dst, st) })
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = c.Rename(tmp, st.Path)
	}
	if err != nil {
		_ = c.Remove(tmp)
	}
	return err
}

// QueryUpload says how much of an upload the server has.
func (s *Service) QueryUpload(ctx context.Context, req *rexecv1.QueryUploadRequest) (*rexecv1.QueryUploadResponse, error) {
	c, err := s.begin(ctx)
	if err != nil {
		return nil, toStatus("", err)
	}
	defer c.Close()
	u, err := s.acquire(c, req.GetUploadId())
	if err != nil {
		return nil, toStatus("", err)
	}
	defer s.release(u)
	u.mu.Lock()
	st := u.st
	active := u.f != nil
	u.mu.Unlock()
	return &rexecv1.QueryUploadResponse{Status: s.uploadStatus(c, &st, active)}, nil
}

// CancelUpload drops a partial upload.
func (s *Service) CancelUpload(ctx context.Context, req *rexecv1.CancelUploadRequest) (*rexecv1.CancelUploadResponse, error) {
	c, err := s.begin(ctx)
	if err != nil {
		return nil, toStatus("", err)
	}
	defer c.Close()
	u, err := s.acquire(c, req.GetUploadId())
	if err != nil {
		return nil, toStatus("", err)
	}
	path := display(u.st.Path)
	st := s.storeOf(c)
	st.mu.Lock()
	s.drop(c, u.st.ID)
	st.mu.Unlock()
	s.release(u)
	s.auditResult(ctx, "upload cancelled", path, nil, slog.String("upload_id", req.GetUploadId()))
	return &rexecv1.CancelUploadResponse{}, nil
}

// ListUploads lists the key's partial uploads.
func (s *Service) ListUploads(ctx context.Context, _ *rexecv1.ListUploadsRequest) (*rexecv1.ListUploadsResponse, error) {
	c, err := s.begin(ctx)
	if err != nil {
		return nil, toStatus("", err)
	}
	defer c.Close()
	s.sweep(c, s.storeOf(c), true)
	states, _, err := c.listStates()
	if err != nil {
		return nil, toStatus("", err)
	}
	resp := &rexecv1.ListUploadsResponse{}
	for _, st := range states {
		if st.Key != c.key.ID {
			continue
		}
		active := false
		s.mu.Lock()
		if u := s.uploads[st.ID]; u != nil && u.store == c.store {
			s.mu.Unlock()
			u.mu.Lock()
			*st, active = u.st, u.f != nil
			u.mu.Unlock()
		} else {
			s.mu.Unlock()
		}
		resp.Uploads = append(resp.Uploads, s.uploadStatus(c, st, active))
	}
	return resp, nil
}

func (s *Service) uploadStatus(c *callFS, st *uploadState, active bool) *rexecv1.UploadStatus {
	return &rexecv1.UploadStatus{
		UploadId:      st.ID,
		Path:          display(st.Path),
		Source:        &rexecv1.FileIdentity{Size: st.Size, Mtime: timestamppb.New(st.mtime())},
		CommittedSize: st.Committed,
		Updated:       timestamppb.New(st.Updated),
		Expires:       timestamppb.New(st.Updated.Add(s.cfg.PartialTTL)),
		Active:        active,
	}
}
