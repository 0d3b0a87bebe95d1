package files_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
)

// attackEnv is a real server with three confined keys: a and a2 share the
// root, b has its own (another key's root is outside too), q has a quota.
// outside holds what no key may reach.
type attackEnv struct {
	srv                     *testenv.Server
	top, root, rootB, rootQ string
	outside                 string
	a, a2, b, q             *client.Client
	keyA                    *interceptors.Key
}

func startAttackEnv(t *testing.T) *attackEnv {
	t.Helper()
	e := &attackEnv{top: t.TempDir()}
	e.root, e.rootB, e.rootQ = filepath.Join(e.top, "root"), filepath.Join(e.top, "rootB"), filepath.Join(e.top, "rootQ")
	e.outside = filepath.Join(e.top, "outside")
	for _, d := range []string{e.root, e.rootB, e.rootQ, filepath.Join(e.outside, "dir")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, data := range map[string]string{
		filepath.Join(e.outside, "secret"):   "the secret outside every root\n",
		filepath.Join(e.outside, "victim"):   "a file outside, hard-linked into the root\n",
		filepath.Join(e.rootB, "b-file"):     "key b's file\n",
		filepath.Join(e.outside, "dir", "x"): "x\n",
	} {
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	key := func(id, root string, quota int64) *interceptors.Key {
		k, err := interceptors.GenerateKey(id, interceptors.ScopeFiles, interceptors.ScopeFilesWrite)
		if err != nil {
			t.Fatal(err)
		}
		k.Root, k.Quota = root, quota
		return k
	}
	ka, ka2, kb, kq := key("a", e.root, 0), key("a2", e.root, 0), key("b", e.rootB, 0), key("q", e.rootQ, 1<<20)
	e.srv = testenv.StartServer(t, testenv.Options{ExtraKeys: []*interceptors.Key{ka, ka2, kb, kq}})
	e.a, e.a2, e.b, e.q, e.keyA = e.srv.Client(t, ka), e.srv.Client(t, ka2), e.srv.Client(t, kb), e.srv.Client(t, kq), ka
	return e
}

// timeout bounds a row's call: a FIFO the server opened would block, and
// the row would end with DeadlineExceeded instead of its code.
const timeout = 20 * time.Second

// download asks the server for path with the Download call itself (the
// client's Download would stat first and refuse a FIFO on its own).
func (e *attackEnv) download(c *client.Client, path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, err := c.Files().Download(ctx, &rexecv1.DownloadRequest{Path: path})
	if err != nil {
		return err
	}
	for {
		if _, err := st.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func (e *attackEnv) upload(c *client.Client, dst string, size int) error {
	src := filepath.Join(e.top, "up.bin")
	if err := os.WriteFile(src, make([]byte, size), 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := c.Upload(ctx, src, dst, client.TransferOptions{})
	return err
}

func list(c *client.Client, path string) error {
	st, err := c.Files().List(context.Background(), &rexecv1.ListRequest{Path: path})
	if err != nil {
		return err
	}
	for {
		if _, err := st.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func codeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus().Code()
	}
	return codes.Unknown
}

// TestAttackTable: each row is an attempt to reach past a key's root, or
// to make the server open what it must not; each asserts the code, and that
// nothing outside the root was read, created or changed (inotify on the
// outside directories sees no open, read or write during the row, and the
// tree is the same after it, byte for byte). README's attack table lists
// these rows.
func TestAttackTable(t *testing.T) {
	e := startAttackEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fsc := e.a.Files()
	w := newWatcher(t, e.outside, filepath.Join(e.outside, "dir"), e.rootB)
	// The root itself, to see that a FIFO or a device is never opened.
	rw := newWatcher(t, e.root)
	mk := func(t *testing.T, f func() error) {
		t.Helper()
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	mk(t, func() error { return os.Mkdir(filepath.Join(e.root, "a"), 0o755) })
	mk(t, func() error { return os.Symlink("/etc", filepath.Join(e.root, "etc-link")) })
	mk(t, func() error { return os.Symlink(e.outside, filepath.Join(e.root, "out-abs")) })
	mk(t, func() error { return os.Symlink("../outside", filepath.Join(e.root, "out-rel")) })
	mk(t, func() error { return os.Symlink("../..", filepath.Join(e.root, "up2")) })
	mk(t, func() error { return syscall.Mkfifo(filepath.Join(e.root, "fifo"), 0o644) })
	mk(t, func() error { return os.Link(filepath.Join(e.outside, "victim"), filepath.Join(e.root, "hl")) })
	device := syscall.Mknod(filepath.Join(e.root, "null"), syscall.S_IFCHR|0o666, int(1<<8|3)) // /dev/null's numbers
	long := strings.Repeat("d/", 2100) + "f"

	rows := []struct {
		name string
		code codes.Code
		do   func() error
	}{
		{"../x", codes.PermissionDenied, func() error { return e.download(e.a, "../outside/secret") }},
		{"../x upload", codes.PermissionDenied, func() error { return e.upload(e.a, "../outside/new", 10) }},
		{"a/../../x", codes.PermissionDenied, func() error { return e.download(e.a, "a/../../outside/secret") }},
		{"/etc/passwd", codes.PermissionDenied, func() error { return e.download(e.a, "/etc/passwd") }},
		{"absolute path of a file outside", codes.PermissionDenied, func() error { return e.download(e.a, filepath.Join(e.outside, "secret")) }},
		{"absolute path to list", codes.PermissionDenied, func() error { return list(e.a, e.outside) }},
		{"NUL byte", codes.InvalidArgument, func() error { return e.download(e.a, "a\x00/../../outside/secret") }},
		{"NUL byte in mkdir", codes.InvalidArgument, func() error {
			_, err := fsc.Mkdir(ctx, &rexecv1.MkdirRequest{Path: "x\x00y"})
			return err
		}},
		{"path over 4096 bytes", codes.InvalidArgument, func() error {
			_, err := fsc.Stat(ctx, &rexecv1.StatRequest{Path: long})
			return err
		}},
		{"symlink to /etc", codes.PermissionDenied, func() error { return e.download(e.a, "etc-link/passwd") }},
		{"symlink to /etc, listed", codes.PermissionDenied, func() error { return list(e.a, "etc-link") }},
		{"symlink to an absolute outside dir, upload through it", codes.PermissionDenied, func() error { return e.upload(e.a, "out-abs/new", 10) }},
		{"symlink to ../outside, download through it", codes.PermissionDenied, func() error { return e.download(e.a, "out-rel/secret") }},
		{"symlink to ../outside, list", codes.PermissionDenied, func() error { return list(e.a, "out-rel/dir") }},
		{"symlink to ../..", codes.PermissionDenied, func() error { return list(e.a, "up2") }},
		{"symlink to ../.., stat followed", codes.PermissionDenied, func() error {
			_, err := fsc.Stat(ctx, &rexecv1.StatRequest{Path: "up2", Follow: true})
			return err
		}},
		{"mkdir -p through a symlinked parent", codes.PermissionDenied, func() error {
			_, err := fsc.Mkdir(ctx, &rexecv1.MkdirRequest{Path: "out-rel/new/deeper", Parents: true})
			return err
		}},
		{"mkdir -p through an absolute symlinked parent", codes.PermissionDenied, func() error {
			_, err := fsc.Mkdir(ctx, &rexecv1.MkdirRequest{Path: "out-abs/new", Parents: true})
			return err
		}},
		{"rename out of the root", codes.PermissionDenied, func() error {
			_, err := fsc.Rename(ctx, &rexecv1.RenameRequest{From: "a", To: "../outside/a"})
			return err
		}},
		{"rename through a symlink out", codes.PermissionDenied, func() error {
			_, err := fsc.Rename(ctx, &rexecv1.RenameRequest{From: "out-rel/secret", To: "stolen"})
			return err
		}},
		{"remove through a symlink out", codes.PermissionDenied, func() error {
			_, err := fsc.Remove(ctx, &rexecv1.RemoveRequest{Path: "out-rel/secret"})
			return err
		}},
		{"rm -r through a symlink out", codes.PermissionDenied, func() error {
			_, err := fsc.Remove(ctx, &rexecv1.RemoveRequest{Path: "out-abs/dir", Recursive: true})
			return err
		}},
		{"chmod through a symlink out", codes.PermissionDenied, func() error {
			_, err := fsc.SetAttributes(ctx, &rexecv1.SetAttributesRequest{Path: "out-rel/secret", Mode: proto.Uint32(0o777)})
			return err
		}},
		{"symlink made to /etc", codes.PermissionDenied, func() error {
			_, err := fsc.Symlink(ctx, &rexecv1.SymlinkRequest{Target: "/etc", Path: "mine"})
			return err
		}},
		{"symlink made to ../../outside", codes.PermissionDenied, func() error {
			_, err := fsc.Symlink(ctx, &rexecv1.SymlinkRequest{Target: "../../outside", Path: "a/mine"})
			return err
		}},
		{"the partial uploads' directory", codes.PermissionDenied, func() error { return list(e.a, "a/../.rexec-partial") }},
		{"a FIFO inside the root", codes.FailedPrecondition, func() error { return e.download(e.a, "fifo") }},
		{"a FIFO as an upload's destination", codes.FailedPrecondition, func() error { return e.upload(e.a, "fifo", 10) }},
		{"a FIFO's attributes", codes.FailedPrecondition, func() error {
			_, err := fsc.SetAttributes(ctx, &rexecv1.SetAttributesRequest{Path: "fifo", Mode: proto.Uint32(0o600)})
			return err
		}},
		{"a device file inside the root", codes.FailedPrecondition, func() error {
			if device != nil {
				return status.Error(codes.FailedPrecondition, "mknod: "+device.Error())
			}
			return e.download(e.a, "null")
		}},
		{"key a naming key b's root", codes.PermissionDenied, func() error { return e.download(e.a, "../rootB/b-file") }},
		{"key a naming key b's root, absolute", codes.PermissionDenied, func() error { return e.download(e.a, filepath.Join(e.rootB, "b-file")) }},
		{"key a writing into key b's root", codes.PermissionDenied, func() error { return e.upload(e.a, "../rootB/new", 10) }},
		{"a hard link to a file outside, written", codes.FailedPrecondition, func() error { return e.upload(e.a, "hl", 10) }},
		{"a hard link to a file outside, chmod", codes.FailedPrecondition, func() error {
			_, err := fsc.SetAttributes(ctx, &rexecv1.SetAttributesRequest{Path: "hl", Mode: proto.Uint32(0o777)})
			return err
		}},
	}
	if device != nil {
		t.Logf("mknod of a device file failed (%v): the device row checks nothing here", device)
	}
	before := snapshot(t, e.outside) + snapshot(t, e.rootB)
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			w.events()
			rw.events()
			err := r.do()
			if got := codeOf(err); got != r.code {
				t.Errorf("got %v (%v), want %v", got, err, r.code)
			}
			if ev := w.events(); len(ev) > 0 {
				t.Errorf("outside the root, during the row: %v", ev)
			}
			for _, ev := range rw.events() {
				name, what, _ := strings.Cut(filepath.Base(ev), " ")
				if (name == "fifo" || name == "null" || name == "hl") && (strings.Contains(what, "OPEN") || strings.Contains(what, "MODIFY")) {
					t.Errorf("in the root: %s", ev)
				}
			}
			if after := snapshot(t, e.outside) + snapshot(t, e.rootB); after != before {
				t.Errorf("outside changed:\nbefore\n%s\nafter\n%s", before, after)
			}
			w.events()
		})
	}
	if _, err := os.Lstat(filepath.Join(e.root, "mine")); err == nil {
		t.Error("a refused symlink was made")
	}
}

// TestAttackDirectorySwap: a directory of the root is swapped for a
// symlink out of it and back, over and over, while uploads into it and
// mkdir -p under it run. Each call either lands inside the root or is
// refused; nothing outside is read, created or changed.
func TestAttackDirectorySwap(t *testing.T) {
	e := startAttackEnv(t)
	w := newWatcher(t, e.outside, filepath.Join(e.outside, "dir"))
	before := snapshot(t, e.outside)
	w.events()
	d, parked := filepath.Join(e.root, "d"), filepath.Join(e.root, "d-parked")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	swapped := make(chan int)
	go func() {
		n := 0
		defer func() { swapped <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			// d becomes a symlink out of the root, then a directory again.
			if os.Rename(d, parked) != nil {
				continue
			}
			target := "../outside"
			if n%2 == 1 {
				target = e.outside
			}
			if err := os.Symlink(target, d); err == nil {
				n++
				time.Sleep(50 * time.Microsecond)
				os.Remove(d)
			}
			os.Rename(parked, d)
		}
	}()
	const rounds = 150
	codesSeen := map[codes.Code]int{}
	fsc := e.a.Files()
	ctx := context.Background()
	for i := range rounds {
		name := "d/f" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		err := e.upload(e.a, name, 100+i)
		codesSeen[codeOf(err)]++
		switch codeOf(err) {
		case codes.OK, codes.PermissionDenied, codes.NotFound, codes.FailedPrecondition:
		default:
			t.Errorf("upload %d: %v", i, err)
		}
		_, err = fsc.Mkdir(ctx, &rexecv1.MkdirRequest{Path: "d/sub/" + name, Parents: true})
		codesSeen[codeOf(err)]++
		switch codeOf(err) {
		case codes.OK, codes.PermissionDenied, codes.NotFound, codes.FailedPrecondition, codes.AlreadyExists:
		default:
			t.Errorf("mkdir %d: %v", i, err)
		}
	}
	close(stop)
	n := <-swapped
	t.Logf("%d swaps; codes of %d calls: %v", n, 2*rounds, codesSeen)
	if ev := w.events(); len(ev) > 0 {
		t.Errorf("outside the root: %v", ev)
	}
	if after := snapshot(t, e.outside); after != before {
		t.Errorf("outside changed:\n%s\nto\n%s", before, after)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, ".rexec-partial")); len(ents) != 0 {
		// a refused commit leaves its partial for a resume: that is inside the root
		t.Logf("%d partial files left inside the root", len(ents))
	}
}

// TestAttackQuota: an upload past the key's quota is refused before a byte
// is sent and leaves nothing; finished files and partial uploads both count.
func TestAttackQuota(t *testing.T) {
	e := startAttackEnv(t)
	ctx := context.Background()
	fsc := e.q.Files()
	if err := e.upload(e.q, "big", 2<<20); codeOf(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "quota") {
		t.Fatalf("2 MiB into a 1 MiB quota: %v", err)
	}
	if err := e.upload(e.q, "a", 600<<10); err != nil {
		t.Fatal(err)
	}
	if err := e.upload(e.q, "b", 600<<10); codeOf(err) != codes.ResourceExhausted {
		t.Fatalf("a finished file counts: %v", err)
	}
	// A partial upload reserves its whole size.
	if _, err := fsc.Remove(ctx, &rexecv1.RemoveRequest{Path: "a"}); err != nil {
		t.Fatal(err)
	}
	st, err := fsc.StartUpload(ctx, &rexecv1.StartUploadRequest{Path: "p", Source: &rexecv1.FileIdentity{Size: 700 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.upload(e.q, "c", 400<<10); codeOf(err) != codes.ResourceExhausted {
		t.Fatalf("a partial upload counts: %v", err)
	}
	u, err := fsc.Usage(ctx, &rexecv1.UsageRequest{})
	if err != nil || u.GetQuotaBytes() != 1<<20 || u.GetPartialBytes() != 700<<10 || u.GetUsedBytes() != 700<<10 {
		t.Fatalf("usage: %v %v", u, err)
	}
	if _, err := fsc.CancelUpload(ctx, &rexecv1.CancelUploadRequest{UploadId: st.GetUploadId()}); err != nil {
		t.Fatal(err)
	}
	if err := e.upload(e.q, "c", 400<<10); err != nil {
		t.Fatalf("after the cancel: %v", err)
	}
	for _, name := range []string{"big", "b", "p"} {
		if _, err := os.Lstat(filepath.Join(e.rootQ, name)); err == nil {
			t.Errorf("%s exists after a refused upload", name)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(e.rootQ, ".rexec-partial")); len(ents) != 0 {
		t.Errorf("partial files left: %v", ents)
	}
}

// TestAttackUploadIDOfAnotherKey: an upload id is the key's own: another
// key, of the same root or another, cannot write, query or cancel it, and
// it stays as it was.
func TestAttackUploadIDOfAnotherKey(t *testing.T) {
	e := startAttackEnv(t)
	ctx := context.Background()
	st, err := e.a.Files().StartUpload(ctx, &rexecv1.StartUploadRequest{Path: "mine", Source: &rexecv1.FileIdentity{Size: 100}})
	if err != nil {
		t.Fatal(err)
	}
	id := st.GetUploadId()
	writeSome(t, e.a, id, 0, 40)
	for name, c := range map[string]*client.Client{"a2 (same root)": e.a2, "b (another root)": e.b} {
		fsc := c.Files()
		_, qerr := fsc.QueryUpload(ctx, &rexecv1.QueryUploadRequest{UploadId: id})
		_, cerr := fsc.CancelUpload(ctx, &rexecv1.CancelUploadRequest{UploadId: id})
		werr := openUpload(c, id)
		for what, err := range map[string]error{"query": qerr, "cancel": cerr, "write": werr} {
			if codeOf(err) != codes.NotFound {
				t.Errorf("%s, %s: %v, want NotFound", name, what, err)
			}
		}
		l, err := fsc.ListUploads(ctx, &rexecv1.ListUploadsRequest{})
		if err != nil || len(l.GetUploads()) != 0 {
			t.Errorf("%s lists %v %v", name, l, err)
		}
	}
	q, err := e.a.Files().QueryUpload(ctx, &rexecv1.QueryUploadRequest{UploadId: id})
	if err != nil || q.GetStatus().GetCommittedSize() != 40 || q.GetStatus().GetPath() != "mine" {
		t.Fatalf("key a's upload after the others tried: %v %v", q, err)
	}
}

// writeSome writes n zero bytes at off of upload id, and ends the stream
// without finishing.
func writeSome(t *testing.T, c *client.Client, id string, off, n int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	up, err := c.Files().Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Send(&rexecv1.UploadRequest{Kind: &rexecv1.UploadRequest_UploadId{UploadId: id}}); err != nil {
		t.Fatal(err)
	}
	if m, err := up.Recv(); err != nil || m.GetOpened().GetCommittedSize() != off {
		t.Fatalf("opened: %v %v", m, err)
	}
	if err := up.Send(&rexecv1.UploadRequest{Kind: &rexecv1.UploadRequest_Chunk{Chunk: &rexecv1.Chunk{Offset: off, Data: make([]byte, n)}}}); err != nil {
		t.Fatal(err)
	}
	if m, err := up.Recv(); err != nil || m.GetCommittedSize() != off+n {
		t.Fatalf("ack: %v %v", m, err)
	}
	up.CloseSend()
	if _, err := up.Recv(); err == nil {
		t.Fatal("an upload without finish ended OK")
	}
}

// openUpload opens upload id for writing and returns the server's answer.
func openUpload(c *client.Client, id string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	up, err := c.Files().Upload(ctx)
	if err != nil {
		return err
	}
	if err := up.Send(&rexecv1.UploadRequest{Kind: &rexecv1.UploadRequest_UploadId{UploadId: id}}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	_, err = up.Recv()
	return err
}
