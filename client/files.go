package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/types/known/timestamppb"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// ErrSourceChanged is returned by a resumed transfer whose source is not
// the one the partial transfer came from: it is refused, never spliced.
var ErrSourceChanged = errors.New("the source changed since the first attempt")

// ErrHashMismatch is returned when a transfer's SHA-256 at one end is not
// the other's: nothing was written at the destination.
var ErrHashMismatch = errors.New("SHA-256 mismatch")

// Files is the generated FileService client, for calls that Upload and
// Download do not cover (Stat, List, Mkdir, Remove, Rename, Usage...).
func (c *Client) Files() rexecv1.FileServiceClient { return rexecv1.NewFileServiceClient(c.conn) }

// List reads every page of a remote listing (FileService.List) and returns
// its entries sorted by name.
func List(ctx context.Context, fsc rexecv1.FileServiceClient, path string) ([]*rexecv1.FileInfo, error) {
	st, err := fsc.List(ctx, &rexecv1.ListRequest{Path: path})
	if err != nil {
		return nil, err
	}
	var out []*rexecv1.FileInfo
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			slices.SortFunc(out, func(a, b *rexecv1.FileInfo) int { return strings.Compare(a.GetName(), b.GetName()) })
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, m.GetEntries()...)
	}
}

// Progress is where a transfer stands.
type Progress struct {
	// Size is the file's size.
	Size int64
	// Done is what the destination holds: for an upload the bytes the
	// server committed (acknowledged), for a download the bytes written
	// locally; both count a resumed transfer's first part.
	Done int64
	// Sent is, for an upload, the bytes handed to the connection: Sent -
	// Done is in flight.
	Sent int64
	// Resumed is where this transfer began, > 0 for a resume.
	Resumed int64
}

// TransferOptions configure Upload and Download. Zero fields take the
// defaults below.
type TransferOptions struct {
	// Resume goes on from a partial transfer of the same source to the same
	// destination, if there is one (ErrSourceChanged if its source was
	// another). Without it a partial transfer there is dropped.
	Resume bool
	// Preserve keeps the source's mode (& 0777) and mtime (cp -p).
	Preserve bool
	// ChunkSize is the bytes of one upload message. By default 256 KiB
	// less 64 bytes, which fits the server's message buffers with its
	// framing (files.DefaultChunkSize); at most 2 MiB.
	ChunkSize int
	// Window is how many bytes an upload sends ahead of the server's
	// acknowledgements. It bounds what a broken connection loses: a
	// resumed upload sends again at most Window and one chunk. By default
	// 16 MiB.
	Window int64
	// Progress, when set, is called as the transfer goes (on the
	// transfer's goroutines; it should not block).
	Progress func(Progress)
}

func (o *TransferOptions) defaults() {
	if o.ChunkSize <= 0 || o.ChunkSize > 2<<20 {
		o.ChunkSize = 256<<10 - 64
	}
	if o.Window <= 0 {
		o.Window = 16 << 20
	}
	if o.Progress == nil {
		o.Progress = func(Progress) {}
	}
}

// Transferred is what a finished Upload or Download did.
type Transferred struct {
	Size int64
	// Resumed is where it began (0, or the partial transfer's size).
	Resumed int64
	// Sent is the bytes this call moved (Size - Resumed, plus what a
	// broken earlier stream of the same call had in flight).
	Sent   int64
	SHA256 []byte
	// Info is the destination file as the server describes it (uploads).
	Info *rexecv1.FileInfo
}

// Upload copies the local regular file src to path dst on the server. The
// server writes it to a partial file and puts it at dst only when its size
// and SHA-256 match this side's; a failed upload leaves dst as it was. With
// o.Resume it goes on from the server's partial upload of src to dst.
func (c *Client) Upload(ctx context.Context, src, dst string, o TransferOptions) (*Transferred, error) {
	o.defaults()
	f, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", src)
	}
	return c.UploadFile(ctx, f, fi, dst, o)
}

// UploadFile is Upload of an open file with its FileInfo.
func (c *Client) UploadFile(ctx context.Context, f io.ReaderAt, fi fs.FileInfo, dst string, o TransferOptions) (*Transferred, error) {
	o.defaults()
	files := c.Files()
	start, err := files.StartUpload(ctx, &rexecv1.StartUploadRequest{
		Path:     dst,
		Source:   &rexecv1.FileIdentity{Size: fi.Size(), Mtime: timestamppb.New(fi.ModTime())},
		Mode:     uint32(fi.Mode().Perm()),
		Preserve: o.Preserve,
		Resume:   o.Resume,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := files.Upload(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&rexecv1.UploadRequest{Kind: &rexecv1.UploadRequest_UploadId{UploadId: start.GetUploadId()}}); err != nil {
		return nil, recvErr(stream, err)
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	opened := first.GetOpened()
	if opened == nil {
		return nil, errors.New("rexec: the server did not open the upload")
	}
	size, from := fi.Size(), opened.GetCommittedSize()
	if from < 0 || from > size {
		return nil, fmt.Errorf("rexec: the server has %d bytes of a %d-byte upload", from, size)
	}
	h := sha256.New()
	if from > 0 {
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, from)); err != nil {
			return nil, err
		}
		if !bytes.Equal(h.Sum(nil), opened.GetCommittedSha256()) {
			return nil, fmt.Errorf("%w: its first %d bytes are not what the server has of the partial upload: copy it again without --resume", ErrSourceChanged, from)
		}
	}
	res := &Transferred{Size: size, Resumed: from}
	o.Progress(Progress{Size: size, Done: from, Sent: from, Resumed: from})
	acks := &ackWindow{acked: from, window: o.Window}
	acks.cond = sync.NewCond(&acks.mu)
	// The receiver takes acknowledgements until done (or an error), the
	// sender reads, hashes and sends, at most Window ahead.
	recvDone := make(chan error, 1)
	var done *rexecv1.UploadDone
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				acks.fail(err)
				recvDone <- err
				return
			}
			switch k := m.GetKind().(type) {
			case *rexecv1.UploadResponse_CommittedSize:
				sent := acks.ack(k.CommittedSize)
				o.Progress(Progress{Size: size, Done: k.CommittedSize, Sent: sent, Resumed: from})
			case *rexecv1.UploadResponse_Done:
				done = k.Done
				acks.fail(io.EOF)
				recvDone <- nil
				return
			}
		}
	}()
	sendErr := c.sendChunks(stream, f, from, size, h, acks, o.ChunkSize)
	if sendErr == nil {
		sendErr = stream.Send(&rexecv1.UploadRequest{Kind: &rexecv1.UploadRequest_FinishSha256{FinishSha256: h.Sum(nil)}})
	}
	if sendErr != nil {
		cancel() // the receiver ends too
	}
	rerr := <-recvDone
	res.Sent = acks.sentTotal() - from
	switch {
	case rerr != nil && !errors.Is(rerr, io.EOF):
		return res, rerr // the server's status says more than a failed Send
	case sendErr != nil:
		return res, sendErr
	case done == nil:
		return res, errors.New("rexec: the upload stream ended without done")
	}
	res.SHA256, res.Info = done.GetSha256(), done.GetInfo()
	if !bytes.Equal(res.SHA256, h.Sum(nil)) {
		return res, fmt.Errorf("%w: the server committed %x, this side hashed %x", ErrHashMismatch, res.SHA256, h.Sum(nil))
	}
	return res, nil
}

// sendChunks reads f from off to size, hashes it into h and sends it in
// chunks, waiting whenever Window bytes are unacknowledged. Reading and
// hashing run a chunk or two ahead of sending, on their own goroutine, so
// that hashing one chunk overlaps sending the last.
func (c *Client) sendChunks(stream rexecv1.FileService_UploadClient, f io.ReaderAt, off, size int64, h hash.Hash, acks *ackWindow, chunkSize int) error {
	type chunk struct {
		off int64
		buf []byte
	}
	const ahead = 3
	free := make(chan []byte, ahead)
	for range ahead {
		free <- make([]byte, chunkSize)
	}
	ready := make(chan chunk, ahead)
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		defer close(ready)
		for pos := off; pos < size; {
			var buf []byte
			select {
			case buf = <-free:
			case <-stop:
				return
			}
			n := int(min(int64(len(buf)), size-pos))
			if _, err := f.ReadAt(buf[:n], pos); err != nil {
				if errors.Is(err, io.EOF) {
					err = fmt.Errorf("the source is shorter than its %d bytes (it shrank while it was sent)", size)
				}
				readErr <- err
				return
			}
			h.Write(buf[:n])
			ready <- chunk{pos, buf[:n]}
			pos += int64(n)
		}
	}()
	defer func() {
		close(stop)
		for range ready { // let the reader end before h is read
		}
	}()
	msg := &rexecv1.Chunk{}
	req := &rexecv1.UploadRequest{Kind: &rexecv1.UploadRequest_Chunk{Chunk: msg}}
	for ch := range ready {
		n := int64(len(ch.buf))
		if err := acks.wait(ch.off, n); err != nil {
			return err
		}
		msg.Offset, msg.Data = ch.off, ch.buf
		if err := stream.Send(req); err != nil {
			return err // io.EOF: the server ended the stream; Recv says why
		}
		acks.sent(ch.off + n)
		free <- ch.buf[:cap(ch.buf)]
	}
	select {
	case err := <-readErr:
		return err
	default:
	}
	return nil
}

// ackWindow is how far an upload is sent and acknowledged; the sender waits
// on it while Window bytes are in flight.
type ackWindow struct {
	mu          sync.Mutex
	cond        *sync.Cond
	acked, sout int64
	window      int64
	err         error
}

func (a *ackWindow) wait(off, n int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.err == nil && off+n-a.acked > a.window && off > a.acked {
		a.cond.Wait()
	}
	if a.err != nil && !errors.Is(a.err, io.EOF) {
		return a.err
	}
	return nil
}

func (a *ackWindow) ack(n int64) (sent int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acked = max(a.acked, n)
	a.cond.Broadcast()
	return max(a.sout, a.acked)
}

func (a *ackWindow) sent(n int64) {
	a.mu.Lock()
	a.sout = n
	a.mu.Unlock()
}

func (a *ackWindow) sentTotal() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return max(a.sout, a.acked)
}

func (a *ackWindow) fail(err error) {
	a.mu.Lock()
	if a.err == nil {
		a.err = err
	}
	a.cond.Broadcast()
	a.mu.Unlock()
}

// recvErr turns a Send's io.EOF (the server ended the stream) into the
// server's status.
func recvErr(stream interface {
	Recv() (*rexecv1.UploadResponse, error)
}, err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	for {
		if _, rerr := stream.Recv(); rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return err
			}
			return rerr
		}
	}
}
