package files_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/rexec/rexec/client"
	"github.com/rexec/rexec/files"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/server"
)

// startFromSource begins an upload of src to dst and writes its first n
// bytes, then breaks the stream, as a killed client would.
func startFromSource(t *testing.T, c *client.Client, src, dst string, n int64) string {
	t.Helper()
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(src)
	st, err := c.Files().StartUpload(context.Background(), &rexecv1.StartUploadRequest{
		Path: dst, Source: &rexecv1.FileIdentity{Size: fi.Size(), Mtime: timestamp(fi.ModTime())}, Mode: 0o644,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	up, err := c.Files().Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	up.Send(&rexecv1.UploadRequest{Kind: &rexecv1.UploadRequest_UploadId{UploadId: st.GetUploadId()}})
	if _, err := up.Recv(); err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off < n; off += 1 << 20 {
		end := min(off+1<<20, n)
		up.Send(&rexecv1.UploadRequest{Kind: &rexecv1.UploadRequest_Chunk{Chunk: &rexecv1.Chunk{Offset: off, Data: data[off:end]}}})
		if m, err := up.Recv(); err != nil || m.GetCommittedSize() != end {
			t.Fatalf("ack %v %v", m, err)
		}
	}
	cancel() // the client "dies": the server keeps what it acknowledged
	waitCommitted(t, c, st.GetUploadId(), n)
	return st.GetUploadId()
}

// waitCommitted polls until the server's state of upload id is saved with
// n bytes and no stream holds it (the cancelled stream's handler ends
// asynchronously).
func waitCommitted(t *testing.T, c *client.Client, id string, n int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		q, err := c.Files().QueryUpload(context.Background(), &rexecv1.QueryUploadRequest{UploadId: id})
		if err == nil && q.GetStatus().GetCommittedSize() == n && !q.GetStatus().GetActive() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload %s: %v %v, want %d committed and no stream", id, q, err, n)
		}
	}
}

// TestResumeUpload: a resumed upload sends only what the server does not
// have, and the file is whole.
func TestResumeUpload(t *testing.T) {
	e := startRooted(t, 0)
	src, sum := randomFile(t, t.TempDir(), 5<<20+123)
	startFromSource(t, e.c, src, "r.bin", 3<<20)
	if _, err := os.Stat(filepath.Join(e.root, "r.bin")); err == nil {
		t.Fatal("the destination holds a partial file")
	}
	res, err := e.c.Upload(context.Background(), src, "r.bin", client.TransferOptions{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed != 3<<20 || res.Sent != 2<<20+123 {
		t.Errorf("resumed at %d, sent %d; want 3 MiB and the rest", res.Resumed, res.Sent)
	}
	if !bytes.Equal(fileSum(t, filepath.Join(e.root, "r.bin")), sum) {
		t.Error("sha256 differs")
	}
	// Without --resume a partial upload is dropped and the copy starts over.
	startFromSource(t, e.c, src, "s.bin", 1<<20)
	res, err = e.c.Upload(context.Background(), src, "s.bin", client.TransferOptions{})
	if err != nil || res.Resumed != 0 || res.Sent != 5<<20+123 {
		t.Fatalf("no resume: %+v %v", res, err)
	}
	if l, _ := e.c.Files().ListUploads(context.Background(), &rexecv1.ListUploadsRequest{}); len(l.GetUploads()) != 0 {
		t.Errorf("partial uploads left: %v", l)
	}
}

// TestResumeRefusedWhenSourceChanged: a resume never splices two versions:
// another size or mtime is refused by the server, the same size and mtime
// with other first bytes by the client's hash of them.
func TestResumeRefusedWhenSourceChanged(t *testing.T) {
	e := startRooted(t, 0)
	dir := t.TempDir()
	src, _ := randomFile(t, dir, 3<<20)
	startFromSource(t, e.c, src, "c.bin", 2<<20)
	fi, _ := os.Stat(src)

	// The same bytes, a new mtime.
	later := fi.ModTime().Add(time.Second)
	os.Chtimes(src, later, later)
	_, err := e.c.Upload(context.Background(), src, "c.bin", client.TransferOptions{Resume: true})
	if codeOf(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "source changed") {
		t.Fatalf("new mtime: %v", err)
	}
	// The old mtime, the first byte changed.
	b, _ := os.ReadFile(src)
	b[0] ^= 0xff
	os.WriteFile(src, b, 0o640)
	os.Chtimes(src, fi.ModTime(), fi.ModTime())
	_, err = e.c.Upload(context.Background(), src, "c.bin", client.TransferOptions{Resume: true})
	if !errors.Is(err, client.ErrSourceChanged) {
		t.Fatalf("same size and mtime, other bytes: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.root, "c.bin")); err == nil {
		t.Fatal("something was written at the destination")
	}
	// Without --resume it goes.
	if _, err := e.c.Upload(context.Background(), src, "c.bin", client.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	if !bytes.Equal(fileSum(t, filepath.Join(e.root, "c.bin")), s[:]) {
		t.Error("sha256 differs")
	}
}

// TestUploadHashMismatch: a finish whose SHA-256 is not the server's is
// DataLoss, leaves nothing at the destination, and drops the upload.
func TestUploadHashMismatch(t *testing.T) {
	e := startRooted(t, 0)
	os.WriteFile(filepath.Join(e.root, "keep"), []byte("old"), 0o644)
	ctx := context.Background()
	for _, dst := range []string{"new", "keep"} {
		st, err := e.c.Files().StartUpload(ctx, &rexecv1.StartUploadRequest{Path: dst, Source: &rexecv1.FileIdentity{Size: 4}})
		if err != nil {
			t.Fatal(err)
		}
		up, _ := e.c.Files().Upload(ctx)
		up.Send(&rexecv1.UploadRequest{Kind: &rexecv1.UploadRequest_UploadId{UploadId: st.GetUploadId()}})
		up.Recv()
		up.Send(&rexecv1.UploadRequest{Kind: &rexecv1.UploadRequest_Chunk{Chunk: &rexecv1.Chunk{Data: []byte("abcd")}}})
		up.Recv()
		wrong := sha256.Sum256([]byte("abce"))
		up.Send(&rexecv1.UploadRequest{Kind: &rexecv1.UploadRequest_FinishSha256{FinishSha256: wrong[:]}})
		_, err = up.Recv()
		if codeOf(err) != codes.DataLoss || !strings.Contains(err.Error(), "nothing was written") {
			t.Fatalf("%s: %v", dst, err)
		}
		if _, err := e.c.Files().QueryUpload(ctx, &rexecv1.QueryUploadRequest{UploadId: st.GetUploadId()}); codeOf(err) != codes.NotFound {
			t.Errorf("the upload is still there: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(e.root, "new")); err == nil {
		t.Error("new exists")
	}
	if b, _ := os.ReadFile(filepath.Join(e.root, "keep")); string(b) != "old" {
		t.Errorf("keep holds %q", b)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, ".rexec-partial")); len(ents) != 0 {
		t.Errorf("partial files left: %v", ents)
	}
}

// TestUploadProtocolErrors: an offset that is not the committed size, a
// chunk past the declared size, a finish before the end, a second stream.
func TestUploadProtocolErrors(t *testing.T) {
	e := startRooted(t, 0)
	ctx := context.Background()
	fsc := e.c.Files()
	st, _ := fsc.StartUpload(ctx, &rexecv1.StartUploadRequest{Path: "p", Source: &rexecv1.FileIdentity{Size: 10}})
	id := st.GetUploadId()
	open := func() rexecv1.FileService_UploadClient {
		up, _ := fsc.Upload(ctx)
		up.Send(&rexecv1.UploadRequest{Kind: &rexecv1.UploadRequest_UploadId{UploadId: id}})
		if _, err := up.Recv(); err != nil {
			t.Fatal(err)
		}
		return up
	}
	chunk := func(up rexecv1.FileService_UploadClient, off int64, n int) error {
		up.Send(&rexecv1.UploadRequest{Kind: &rexecv1.UploadRequest_Chunk{Chunk: &rexecv1.Chunk{Offset: off, Data: make([]byte, n)}}})
		_, err := up.Recv()
		return err
	}
	if err := chunk(open(), 3, 1); codeOf(err) != codes.OutOfRange {
		t.Errorf("offset past the committed size: %v", err)
	}
	if err := chunk(open(), 0, 11); codeOf(err) != codes.InvalidArgument {
		t.Errorf("past the size: %v", err)
	}
	up := open()
	if err := chunk(up, 0, 4); err != nil {
		t.Fatal(err)
	}
	up.Send(&rexecv1.UploadRequest{Kind: &rexecv1.UploadRequest_FinishSha256{FinishSha256: make([]byte, 32)}})
	if _, err := up.Recv(); codeOf(err) != codes.FailedPrecondition {
		t.Errorf("finish at 4 of 10: %v", err)
	}
	first := open()
	if err := chunk(first, 4, 1); err != nil {
		t.Fatal(err)
	}
	second := open() // takes it over
	if err := chunk(first, 5, 1); codeOf(err) != codes.Aborted {
		t.Errorf("the first stream after a takeover: %v", err)
	}
	if err := chunk(second, 5, 5); err != nil {
		t.Errorf("the second stream: %v", err)
	}
	if _, err := fsc.QueryUpload(ctx, &rexecv1.QueryUploadRequest{UploadId: "../../etc"}); codeOf(err) != codes.InvalidArgument {
		t.Errorf("a malformed id: %v", err)
	}
	up, _ = fsc.Upload(ctx)
	up.Send(&rexecv1.UploadRequest{Kind: &rexecv1.UploadRequest_Chunk{Chunk: &rexecv1.Chunk{}}})
	if _, err := up.Recv(); codeOf(err) != codes.InvalidArgument {
		t.Errorf("no id first: %v", err)
	}
}

// TestServerRestartMidUpload: an in-process server stopped while an upload
// runs saves its state; a new server over the same root resumes it, and
// the resume sends at most what was in flight.
func TestServerRestartMidUpload(t *testing.T) {
	root := t.TempDir()
	k, _ := interceptors.GenerateKey("drop", interceptors.ScopeFiles, interceptors.ScopeFilesWrite)
	k.Root = root
	src, sum := randomFile(t, t.TempDir(), 24<<20)
	start := func() *testenv.Server {
		return testenv.StartServer(t, testenv.Options{ExtraKeys: []*interceptors.Key{k},
			Server: server.Config{Files: &files.Config{StateDir: t.TempDir(), Checkpoint: time.Hour}}})
	}
	srv := start()
	c := srv.Client(t, k)
	var last client.Progress
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_, err := c.Upload(context.Background(), src, "big", client.TransferOptions{ChunkSize: 256 << 10, Window: 2 << 20,
			Progress: func(p client.Progress) {
				last = p
				if p.Done >= 8<<20 {
					srv.Server.Stop() // the server goes away mid-upload
				}
			}})
		if err == nil {
			t.Error("the upload finished through a server stop")
		}
	}()
	<-stopped
	acked := last.Done
	srv2 := start()
	res, err := srv2.Client(t, k).Upload(context.Background(), src, "big", client.TransferOptions{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed < acked {
		t.Errorf("resumed at %d, but the server had acknowledged %d", res.Resumed, acked)
	}
	if !bytes.Equal(fileSum(t, filepath.Join(root, "big")), sum) {
		t.Error("sha256 differs")
	}
	t.Logf("acknowledged %d before the stop, resumed at %d, sent %d of %d", acked, res.Resumed, res.Sent, int64(24<<20))
}

// TestPartialUploadsExpire: a partial upload untouched for the TTL is
// removed, with its bytes.
func TestPartialUploadsExpire(t *testing.T) {
	root := t.TempDir()
	k, _ := interceptors.GenerateKey("drop", interceptors.ScopeFiles, interceptors.ScopeFilesWrite)
	k.Root = root
	srv := testenv.StartServer(t, testenv.Options{ExtraKeys: []*interceptors.Key{k},
		Server: server.Config{Files: &files.Config{StateDir: t.TempDir(), PartialTTL: time.Second}}})
	c := srv.Client(t, k)
	src, _ := randomFile(t, t.TempDir(), 100)
	id := startFromSource(t, c, src, "x", 50)
	l, err := c.Files().ListUploads(context.Background(), &rexecv1.ListUploadsRequest{})
	if err != nil || len(l.GetUploads()) != 1 || l.GetUploads()[0].GetUploadId() != id || l.GetUploads()[0].GetCommittedSize() != 50 {
		t.Fatalf("listed %v %v", l, err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ents, _ := os.ReadDir(filepath.Join(root, ".rexec-partial"))
		if len(ents) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still there after 20s with a 1s TTL: %v", ents)
		}
	}
	if !strings.Contains(srv.Log.String(), "partial upload expired") {
		t.Error("no log line for the expiry")
	}
	if _, err := c.Files().QueryUpload(context.Background(), &rexecv1.QueryUploadRequest{UploadId: id}); codeOf(err) != codes.NotFound {
		t.Errorf("query after expiry: %v", err)
	}
}

// TestResumeDownload: a download cut short leaves a partial file beside its
// destination (never the destination), and a resume continues it; a
// partial file of another version of the source is refused.
func TestResumeDownload(t *testing.T) {
	e := startRooted(t, 0)
	data := make([]byte, 3<<20+7)
	for i := range data {
		data[i] = byte(i * 7)
	}
	os.WriteFile(filepath.Join(e.root, "d.bin"), data, 0o644)
	local := t.TempDir()
	dst := filepath.Join(local, "d.bin")
	ctx, cancel := context.WithCancel(context.Background())
	_, err := e.c.Download(ctx, "d.bin", dst, client.TransferOptions{Progress: func(p client.Progress) {
		if p.Done >= 1<<20 {
			cancel()
		}
	}})
	if err == nil {
		t.Fatal("a cancelled download succeeded")
	}
	if _, err := os.Stat(dst); err == nil {
		t.Fatal("the destination exists after a cut download")
	}
	parts, _ := filepath.Glob(filepath.Join(local, ".d.bin.rexec-*.part"))
	if len(parts) != 1 {
		t.Fatalf("partial files: %v", parts)
	}
	res, err := e.c.Download(context.Background(), "d.bin", dst, client.TransferOptions{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed < 1<<20 || res.Resumed+res.Sent != int64(len(data)) {
		t.Errorf("resumed at %d, sent %d", res.Resumed, res.Sent)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Error("the file differs")
	}
	// A partial file of another version: refused, and without --resume replaced.
	os.WriteFile(filepath.Join(local, ".e.bin.rexec-5-5.part"), []byte("other"), 0o600)
	os.WriteFile(filepath.Join(e.root, "e.bin"), data[:100], 0o644)
	if _, err := e.c.Download(context.Background(), "e.bin", filepath.Join(local, "e.bin"), client.TransferOptions{Resume: true}); !errors.Is(err, client.ErrSourceChanged) {
		t.Errorf("a partial of another version: %v", err)
	}
	if _, err := e.c.Download(context.Background(), "e.bin", filepath.Join(local, "e.bin"), client.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	if parts, _ := filepath.Glob(filepath.Join(local, ".*.part")); len(parts) != 0 {
		t.Errorf("partial files left: %v", parts)
	}
}
