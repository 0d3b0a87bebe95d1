package transfer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/internal/transfer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startRooted(t *testing.T) (*client.Client, string) {
	t.Helper()
	root := t.TempDir()
	k, err := interceptors.GenerateKey("drop", interceptors.ScopeFiles, interceptors.ScopeFilesWrite)
	if err != nil {
		t.Fatal(err)
	}
	k.Root = root
	srv := testenv.StartServer(t, testenv.Options{ExtraKeys: []*interceptors.Key{k}})
	return srv.Client(t, k), root
}

// tree describes a directory: every path with its type, mode, size,
// content and symlink target, for comparing two trees.
func tree(t *testing.T, dir string, mtimes bool) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." || strings.HasPrefix(rel, ".rexec-partial") {
			return nil
		}
		fi, _ := d.Info()
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		switch {
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %d %x", len(b), b[:min(len(b), 16)])
		case fi.Mode().Type() == fs.ModeSymlink:
			target, _ := os.Readlink(p)
			line += " -> " + target
		}
		if mtimes && fi.Mode().Type() != fs.ModeSymlink {
			line += " " + fi.ModTime().UTC().Format(time.RFC3339Nano)
		}
		lines = append(lines, line)
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func makeTree(t *testing.T, dir string) {
	t.Helper()
	write := func(rel string, size int, mode fs.FileMode) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		b := make([]byte, size)
		rand.Read(b)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	write("a.txt", 10, 0o644)
	write("empty", 0, 0o600)
	write("bin/tool", 3<<20+5, 0o755)
	write("deep/er/still/f", 1<<20, 0o640)
	for i := range 12 {
		write(fmt.Sprintf("many/f%02d", i), 1000*i, 0o644)
	}
	os.Mkdir(filepath.Join(dir, "emptydir"), 0o700)
	os.Symlink("a.txt", filepath.Join(dir, "link-file"))
	os.Symlink("deep/er", filepath.Join(dir, "link-dir"))
	os.Symlink("../../a.txt", filepath.Join(dir, "deep/er/up"))
	os.Symlink("nowhere", filepath.Join(dir, "dangling"))
	mt := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d.Type() != fs.ModeSymlink {
			os.Chtimes(p, mt, mt)
		}
		return nil
	})
	// Directory mtimes last, deepest first, as a copy with -p sets them.
	for _, d := range []string{"deep/er/still", "deep/er", "deep", "bin", "many", "emptydir", "."} {
		os.Chtimes(filepath.Join(dir, d), mt, mt)
	}
}

// TestRecursiveRoundTrip: a tree with symlinks (copied as symlinks, never
// followed), modes and mtimes (-p) goes up with -r and comes back equal.
func TestRecursiveRoundTrip(t *testing.T) {
	c, root := startRooted(t)
	src := filepath.Join(t.TempDir(), "tree")
	makeTree(t, src)
	ctx := context.Background()
	res, err := transfer.Copy(ctx, c, []string{src, ":"}, transfer.Options{Recursive: true, Preserve: true, Jobs: 3})
	if err != nil || len(res.Failures) != 0 {
		t.Fatalf("up: %v %v", err, res.Failures)
	}
	if res.Files != 16 {
		t.Errorf("%d files copied, want 16", res.Files)
	}
	if got, want := tree(t, filepath.Join(root, "tree"), true), tree(t, src, true); got != want {
		t.Errorf("the server's tree differs:\n%s\nwant\n%s", got, want)
	}
	back := t.TempDir()
	res, err = transfer.Copy(ctx, c, []string{":tree", back}, transfer.Options{Recursive: true, Preserve: true, Jobs: 2})
	if err != nil || len(res.Failures) != 0 {
		t.Fatalf("down: %v %v", err, res.Failures)
	}
	if got, want := tree(t, filepath.Join(back, "tree"), true), tree(t, src, true); got != want {
		t.Errorf("the tree back differs:\n%s\nwant\n%s", got, want)
	}
	// Without -p: modes masked with 0755, mtimes new, the shape the same.
	res, err = transfer.Copy(ctx, c, []string{src, ":copy2"}, transfer.Options{Recursive: true})
	if err != nil || len(res.Failures) != 0 {
		t.Fatal(err, res.Failures)
	}
	fi, _ := os.Stat(filepath.Join(root, "copy2", "deep/er/still/f"))
	if fi.Mode().Perm() != 0o640 || fi.ModTime().Year() == 2020 {
		t.Errorf("without -p: %v %v", fi.Mode(), fi.ModTime())
	}
}

// TestCopyPaths: scp's rules for where a copy lands, and its errors.
func TestCopyPaths(t *testing.T) {
	c, root := startRooted(t)
	ctx := context.Background()
	local := t.TempDir()
	f1, f2 := filepath.Join(local, "one"), filepath.Join(local, "two")
	os.WriteFile(f1, []byte("1"), 0o644)
	os.WriteFile(f2, []byte("22"), 0o644)
	os.Mkdir(filepath.Join(root, "dir"), 0o755)
	cases := []struct {
		args  []string
		files []string // in the root, after
		fail  string   // a failure that says this
	}{
		{[]string{f1, ":"}, []string{"one"}, ""},
		{[]string{f1, ":renamed"}, []string{"renamed"}, ""},
		{[]string{f1, ":dir"}, []string{"dir/one"}, ""},
		{[]string{f1, f2, ":dir/"}, []string{"dir/one", "dir/two"}, ""},
		{[]string{f1, f2, ":nodir"}, nil, "not a directory"},
		{[]string{local, ":"}, nil, "is a directory (copy it with -r)"},
		{[]string{filepath.Join(local, "missing"), ":"}, nil, "no such file"},
		{[]string{f1, ":nodir/deeper/x"}, nil, "mkdir -p"},
		{[]string{f1, ":../out"}, nil, "leads outside"},
	}
	for _, cs := range cases {
		res, err := transfer.Copy(ctx, c, cs.args, transfer.Options{})
		if err != nil {
			t.Errorf("%v: %v", cs.args, err)
			continue
		}
		if cs.fail == "" && len(res.Failures) > 0 || cs.fail != "" && (len(res.Failures) != 1 || !strings.Contains(res.Failures[0].Error(), cs.fail)) {
			t.Errorf("%v: failures %v, want %q", cs.args, res.Failures, cs.fail)
		}
		for _, f := range cs.files {
			if _, err := os.Stat(filepath.Join(root, f)); err != nil {
				t.Errorf("%v: %s is not there", cs.args, f)
			}
		}
	}
	for _, args := range [][]string{{f1, f2}, {":a", ":b"}, {":a"}} {
		if _, err := transfer.Copy(ctx, c, args, transfer.Options{}); err == nil {
			t.Errorf("%v: no usage error", args)
		}
	}
	// Downloads: into a directory, to a name, several into a directory.
	dl := t.TempDir()
	for _, args := range [][]string{{":one", dl}, {":dir/one", filepath.Join(dl, "x")}, {":dir/one", ":dir/two", dl + "/"}} {
		if res, err := transfer.Copy(ctx, c, args, transfer.Options{}); err != nil || len(res.Failures) > 0 {
			t.Errorf("%v: %v %v", args, err, res.Failures)
		}
	}
	for _, f := range []string{"one", "x", "two"} {
		if _, err := os.Stat(filepath.Join(dl, f)); err != nil {
			t.Errorf("download: %s is not there", f)
		}
	}
	if res, _ := transfer.Copy(ctx, c, []string{":dir", dl}, transfer.Options{}); len(res.Failures) != 1 || !strings.Contains(res.Failures[0].Error(), "-r") {
		t.Errorf("a remote directory without -r: %v", res.Failures)
	}
}

// TestJSONProgress: --progress json writes a start, progress lines that
// only grow, and a done, per file.
func TestJSONProgress(t *testing.T) {
	c, _ := startRooted(t)
	src := filepath.Join(t.TempDir(), "big")
	b := make([]byte, 5<<20)
	rand.Read(b)
	os.WriteFile(src, b, 0o644)
	var out bytes.Buffer
	if _, err := transfer.Copy(context.Background(), c, []string{src, ":big"}, transfer.Options{Progress: transfer.JSON(&out)}); err != nil {
		t.Fatal(err)
	}
	var evs []transfer.JSONEvent
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ev transfer.JSONEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		evs = append(evs, ev)
	}
	if len(evs) < 7 || evs[0].Event != "start" || evs[len(evs)-1].Event != "done" || evs[len(evs)-1].Done != 5<<20 {
		t.Fatalf("events %v", evs)
	}
	var last int64
	for _, ev := range evs[1 : len(evs)-1] {
		if ev.Event != "progress" || ev.Done < last || ev.Sent < ev.Done || ev.Path != src {
			t.Errorf("event %+v after done=%d", ev, last)
		}
		last = ev.Done
	}
}

// hostile is a FileService that lies: it lists a name that climbs out, a
// symlink out of the tree followed by a directory of the same name, and a
// file under that name. A recursive download from it must write nothing
// outside its destination.
type hostile struct {
	rexecv1.UnimplementedFileServiceServer
	outside string
}

func (h *hostile) Stat(_ context.Context, req *rexecv1.StatRequest) (*rexecv1.StatResponse, error) {
	typ := rexecv1.FileType_FILE_TYPE_DIRECTORY
	if strings.HasSuffix(req.GetPath(), "f") {
		typ = rexecv1.FileType_FILE_TYPE_REGULAR
	}
	return &rexecv1.StatResponse{Info: &rexecv1.FileInfo{Name: req.GetPath(), Type: typ, Size: 3, Mode: 0o755}}, nil
}

func (h *hostile) List(req *rexecv1.ListRequest, st rexecv1.FileService_ListServer) error {
	dir, reg, link := rexecv1.FileType_FILE_TYPE_DIRECTORY, rexecv1.FileType_FILE_TYPE_REGULAR, rexecv1.FileType_FILE_TYPE_SYMLINK
	switch req.GetPath() {
	case "t":
		return st.Send(&rexecv1.ListResponse{Entries: []*rexecv1.FileInfo{
			{Name: "../escaped-f", Type: reg, Size: 3},
			{Name: "a/b-f", Type: reg, Size: 3},
			{Name: "ln", Type: link, SymlinkTarget: h.outside},
			{Name: "ln", Type: dir, Mode: 0o755},
			{Name: "sub", Type: dir, Mode: 0o755},
		}})
	case "t/sub":
		return st.Send(&rexecv1.ListResponse{Entries: []*rexecv1.FileInfo{
			{Name: "up", Type: link, SymlinkTarget: "../../.."},
			{Name: "ok-f", Type: reg, Size: 3},
		}})
	}
	return st.Send(&rexecv1.ListResponse{})
}

func (h *hostile) Download(req *rexecv1.DownloadRequest, st rexecv1.FileService_DownloadServer) error {
	st.Send(&rexecv1.DownloadResponse{Kind: &rexecv1.DownloadResponse_Info{Info: &rexecv1.FileInfo{Size: 3}}})
	st.Send(&rexecv1.DownloadResponse{Kind: &rexecv1.DownloadResponse_Chunk{Chunk: &rexecv1.Chunk{Data: []byte("bad")}}})
	sum := [32]byte{}
	copy(sum[:], "not the hash")
	if strings.HasSuffix(req.GetPath(), "ok-f") {
		sum = sha256Sum([]byte("bad"))
	}
	return st.Send(&rexecv1.DownloadResponse{Kind: &rexecv1.DownloadResponse_Done{Done: &rexecv1.DownloadDone{Sha256: sum[:], End: 3}}})
}

// TestHostileServer: the kubectl cp class of bug (a tree from the server
// that writes outside its destination) cannot happen.
func TestHostileServer(t *testing.T) {
	top := t.TempDir()
	outside, dst := filepath.Join(top, "outside"), filepath.Join(top, "dst")
	os.Mkdir(outside, 0o755)
	os.Mkdir(dst, 0o755)
	g := grpc.NewServer()
	rexecv1.RegisterFileServiceServer(g, &hostile{outside: outside})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(lis)
	defer g.Stop()
	c, err := client.New(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := transfer.Copy(context.Background(), c, []string{":t", dst}, transfer.Options{Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("written outside the destination: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(top, "escaped-f")); err == nil {
		t.Error("../escaped-f was written")
	}
	var msgs []string
	for _, f := range res.Failures {
		msgs = append(msgs, f.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{":t/../escaped-f: the server listed a name", ":t/a/b-f: the server listed a name", "ln: file exists"} {
		if !strings.Contains(all, want) {
			t.Errorf("no failure saying %q in:\n%s", want, all)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dst, "t", "sub", "ok-f")); err != nil || string(b) != "bad" {
		t.Errorf("the one good file: %q %v", b, err)
	}
	t.Logf("failures:\n%s", all)
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
