package files_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/rexec/rexec/client"
	"github.com/rexec/rexec/files"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/server"
)

func listAll(t *testing.T, c *client.Client, path string) (pages int, entries []*rexecv1.FileInfo) {
	t.Helper()
	st, err := c.Files().List(context.Background(), &rexecv1.ListRequest{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := st.Recv()
		if err == io.EOF {
			return pages, entries
		}
		if err != nil {
			t.Fatalf("list %s: %v", path, err)
		}
		pages++
		entries = append(entries, m.GetEntries()...)
	}
}

// TestCalls: mkdir, list, stat, symlink, rename, set attributes and
// remove do what their names say, and each change writes an audit line.
func TestCalls(t *testing.T) {
	e := startRooted(t, 0)
	ctx := context.Background()
	fsc := e.c.Files()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(fsc.Mkdir(ctx, &rexecv1.MkdirRequest{Path: "a/b/c", Parents: true}))
	if _, err := fsc.Mkdir(ctx, &rexecv1.MkdirRequest{Path: "a/b"}); codeOf(err) != codes.AlreadyExists {
		t.Errorf("mkdir of an existing directory: %v", err)
	}
	must(fsc.Mkdir(ctx, &rexecv1.MkdirRequest{Path: "a/b", Parents: true})) // -p: fine
	if _, err := fsc.Mkdir(ctx, &rexecv1.MkdirRequest{Path: "x/y"}); codeOf(err) != codes.NotFound {
		t.Errorf("mkdir without parents: %v", err)
	}
	os.WriteFile(filepath.Join(e.root, "a", "f"), []byte("hello"), 0o600)
	must(fsc.Symlink(ctx, &rexecv1.SymlinkRequest{Target: "b/c", Path: "a/link"}))
	must(fsc.Symlink(ctx, &rexecv1.SymlinkRequest{Target: "../f", Path: "a/b/up"}))
	if _, err := fsc.Symlink(ctx, &rexecv1.SymlinkRequest{Target: "f", Path: "a/link"}); codeOf(err) != codes.AlreadyExists {
		t.Errorf("symlink over one: %v", err)
	}
	must(fsc.Symlink(ctx, &rexecv1.SymlinkRequest{Target: "f", Path: "a/link2", Replace: true}))
	must(fsc.Symlink(ctx, &rexecv1.SymlinkRequest{Target: "b", Path: "a/link2", Replace: true}))

	_, ents := listAll(t, e.c, "a")
	got := map[string]*rexecv1.FileInfo{}
	for _, en := range ents {
		got[en.GetName()] = en
	}
	if len(got) != 4 || got["f"].GetSize() != 5 || got["f"].GetMode() != 0o600 || got["f"].GetType() != rexecv1.FileType_FILE_TYPE_REGULAR ||
		got["b"].GetType() != rexecv1.FileType_FILE_TYPE_DIRECTORY || got["link"].GetSymlinkTarget() != "b/c" || got["link2"].GetSymlinkTarget() != "b" {
		t.Errorf("list a: %v", ents)
	}
	if _, root := listAll(t, e.c, ""); len(root) != 1 || root[0].GetName() != "a" {
		t.Errorf("the root lists %v (the partial directory is hidden)", root)
	}
	st, err := fsc.Stat(ctx, &rexecv1.StatRequest{Path: "a/b/up"})
	if err != nil || st.GetInfo().GetType() != rexecv1.FileType_FILE_TYPE_SYMLINK {
		t.Fatalf("stat of a link: %v %v", st, err)
	}
	st, err = fsc.Stat(ctx, &rexecv1.StatRequest{Path: "a/b/up", Follow: true})
	if err != nil || st.GetInfo().GetSize() != 5 {
		t.Fatalf("stat through a link: %v %v", st, err)
	}
	if _, one := listAll(t, e.c, "a/f"); len(one) != 1 || one[0].GetName() != "a/f" {
		t.Errorf("list of a file: %v", one)
	}

	mt := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
	must(fsc.SetAttributes(ctx, &rexecv1.SetAttributesRequest{Path: "a/f", Mode: proto.Uint32(0o640), Mtime: timestamp(mt)}))
	fi, _ := os.Stat(filepath.Join(e.root, "a", "f"))
	if fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(mt) {
		t.Errorf("set attributes: %v %v", fi.Mode(), fi.ModTime())
	}
	must(fsc.Rename(ctx, &rexecv1.RenameRequest{From: "a/f", To: "a/b/g"}))
	if _, err := os.Stat(filepath.Join(e.root, "a", "b", "g")); err != nil {
		t.Error(err)
	}
	if _, err := fsc.Remove(ctx, &rexecv1.RemoveRequest{Path: "a"}); codeOf(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "rm -r") {
		t.Errorf("rm of a full directory: %v", err)
	}
	if _, err := fsc.Remove(ctx, &rexecv1.RemoveRequest{Path: ".", Recursive: true}); codeOf(err) != codes.InvalidArgument {
		t.Errorf("rm -r of the root: %v", err)
	}
	if _, err := fsc.Remove(ctx, &rexecv1.RemoveRequest{Path: "nope", Recursive: true}); codeOf(err) != codes.NotFound {
		t.Errorf("rm -r of nothing: %v", err)
	}
	must(fsc.Remove(ctx, &rexecv1.RemoveRequest{Path: "a", Recursive: true}))
	if ents, _ := os.ReadDir(e.root); len(ents) != 0 {
		t.Errorf("left after rm -r: %v", ents)
	}

	audit := e.srv.Log.String()
	for _, want := range []string{
		`msg=mkdir log=audit transport=grpc`, `key_id=drop path=a/b/c parents=true code=OK`,
		`msg=symlink`, `msg="set attributes"`, `msg=rename`, `to=a/b/g code=OK`,
		`msg=remove`, `path=a recursive=true code=OK`, `path=a recursive=false code=FailedPrecondition`,
	} {
		if !strings.Contains(audit, want) {
			t.Errorf("no audit line with %q", want)
		}
	}
}

// TestUploadAudit: an upload writes an audit line when it starts and when
// it ends, with its size and SHA-256.
func TestUploadAudit(t *testing.T) {
	e := startRooted(t, 0)
	src, sum := randomFile(t, t.TempDir(), 1000)
	if _, err := e.c.Upload(context.Background(), src, "u", client.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	log := e.srv.Log.String()
	for _, want := range []string{`msg="upload started" log=audit`, `msg="upload ended" log=audit`, `key_id=drop path=u`, `size=1000 committed=1000`, "sha256=" + hex.EncodeToString(sum) + " code=OK"} {
		if !strings.Contains(log, want) {
			t.Errorf("no audit line with %q", want)
		}
	}
}

// TestPreserve: -p keeps mode and mtime; without it the mode is masked
// with 0755 and the mtime is the upload's.
func TestPreserve(t *testing.T) {
	e := startRooted(t, 0)
	src, _ := randomFile(t, t.TempDir(), 10)
	os.Chmod(src, 0o777)
	mt := time.Date(2010, 1, 2, 3, 4, 5, 600, time.UTC)
	os.Chtimes(src, mt, mt)
	for _, p := range []bool{true, false} {
		if _, err := e.c.Upload(context.Background(), src, "p", client.TransferOptions{Preserve: p}); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(filepath.Join(e.root, "p"))
		if p && (fi.Mode().Perm() != 0o777 || !fi.ModTime().Equal(mt)) || !p && (fi.Mode().Perm() != 0o755 || fi.ModTime().Equal(mt)) {
			t.Errorf("preserve %v: %v %v", p, fi.Mode(), fi.ModTime())
		}
		dst := filepath.Join(t.TempDir(), "p")
		if _, err := e.c.Download(context.Background(), "p", dst, client.TransferOptions{Preserve: p}); err != nil {
			t.Fatal(err)
		}
		fi, _ = os.Stat(dst)
		if p && (fi.Mode().Perm() != 0o777 || !fi.ModTime().Equal(mt)) || !p && fi.Mode().Perm() != 0o755 {
			t.Errorf("download, preserve %v: %v %v", p, fi.Mode(), fi.ModTime())
		}
	}
}

// TestListPages: a large directory comes in pages, every entry once, and
// names that are not UTF-8 are marked.
func TestListPages(t *testing.T) {
	e := startRooted(t, 0)
	var want []string
	for i := range 2500 {
		n := "f" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strconv.Itoa(i)
		want = append(want, n)
		os.WriteFile(filepath.Join(e.root, n), nil, 0o644)
	}
	os.WriteFile(filepath.Join(e.root, "bad\xffname"), nil, 0o644)
	pages, ents := listAll(t, e.c, ".")
	var names []string
	bad := 0
	for _, en := range ents {
		if en.GetNameNotUtf8() {
			bad++
			continue
		}
		names = append(names, en.GetName())
	}
	slices.Sort(names)
	slices.Sort(want)
	if pages < 3 || !slices.Equal(names, want) || bad != 1 {
		t.Errorf("%d pages, %d names (want %d), %d not UTF-8", pages, len(names), len(want), bad)
	}
	os.Mkdir(filepath.Join(e.root, "empty"), 0o755)
	if pages, ents := listAll(t, e.c, "empty"); pages != 1 || len(ents) != 0 {
		t.Errorf("an empty directory: %d pages, %v", pages, ents)
	}
}

// TestKeyWithoutRoot: a key without a root reaches the filesystem as
// rexecd's user: absolute paths, relative ones from the home directory;
// its partial uploads go to the state directory.
func TestKeyWithoutRoot(t *testing.T) {
	home, state, elsewhere := t.TempDir(), t.TempDir(), t.TempDir()
	srv := testenv.StartServer(t, testenv.Options{Server: server.Config{Files: &files.Config{StateDir: state, Home: home}}})
	c := srv.Client(t, nil) // the test key: no root, all scopes
	src, sum := randomFile(t, t.TempDir(), 3000)
	if _, err := c.Upload(context.Background(), src, "rel.bin", client.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Upload(context.Background(), src, filepath.Join(elsewhere, "abs.bin"), client.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(home, "rel.bin"), filepath.Join(elsewhere, "abs.bin")} {
		if !bytes.Equal(fileSum(t, p), sum) {
			t.Errorf("%s differs", p)
		}
	}
	startFromSource(t, c, src, filepath.Join(elsewhere, "part.bin"), 1000)
	if parts, _ := filepath.Glob(filepath.Join(state, "partial", "*.part")); len(parts) != 1 {
		t.Errorf("partial files in the state directory: %v", parts)
	}
	u, err := c.Files().Usage(context.Background(), &rexecv1.UsageRequest{})
	if err != nil || u.GetRoot() != "" || u.GetPartialBytes() != 3000 || u.GetFsTotalBytes() == 0 {
		t.Errorf("usage: %v %v", u, err)
	}
}

// TestRootMissing: a key whose root does not exist gets FailedPrecondition
// naming it.
func TestRootMissing(t *testing.T) {
	k, _ := interceptors.GenerateKey("gone", interceptors.ScopeFiles)
	k.Root = filepath.Join(t.TempDir(), "nope")
	srv := testenv.StartServer(t, testenv.Options{ExtraKeys: []*interceptors.Key{k}})
	_, err := srv.Client(t, k).Files().Stat(context.Background(), &rexecv1.StatRequest{Path: "x"})
	if codeOf(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), k.Root) {
		t.Fatalf("got %v", err)
	}
}

// TestFileScopes: files reads, files-write writes, and a key with neither
// (exec only) may do none of it.
func TestFileScopes(t *testing.T) {
	root := t.TempDir()
	mk := func(id string, scopes ...string) *interceptors.Key {
		k, _ := interceptors.GenerateKey(id, scopes...)
		k.Root = root
		return k
	}
	ro, wo, ex := mk("ro", interceptors.ScopeFiles), mk("wo", interceptors.ScopeFilesWrite), mk("ex", interceptors.ScopeExec)
	srv := testenv.StartServer(t, testenv.Options{ExtraKeys: []*interceptors.Key{ro, wo, ex}})
	ctx := context.Background()
	os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o644)
	stat := func(k *interceptors.Key) error {
		_, err := srv.Client(t, k).Files().Stat(ctx, &rexecv1.StatRequest{Path: "f"})
		return err
	}
	mkdir := func(k *interceptors.Key) error {
		_, err := srv.Client(t, k).Files().Mkdir(ctx, &rexecv1.MkdirRequest{Path: "d-" + k.ID})
		return err
	}
	for _, c := range []struct {
		k           *interceptors.Key
		read, write codes.Code
	}{{ro, codes.OK, codes.PermissionDenied}, {wo, codes.PermissionDenied, codes.OK}, {ex, codes.PermissionDenied, codes.PermissionDenied}} {
		if got := codeOf(stat(c.k)); got != c.read {
			t.Errorf("%s stat: %v", c.k.ID, got)
		}
		if got := codeOf(mkdir(c.k)); got != c.write {
			t.Errorf("%s mkdir: %v", c.k.ID, got)
		}
	}
}

// TestTopIsKept: the root, "/" and the home directory of a key without a
// root cannot be removed or renamed, however they are named.
func TestTopIsKept(t *testing.T) {
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "keep"), []byte("x"), 0o644)
	srv := testenv.StartServer(t, testenv.Options{Server: server.Config{Files: &files.Config{StateDir: t.TempDir(), Home: home}}})
	fsc := srv.Client(t, nil).Files()
	ctx := context.Background()
	for _, p := range []string{"", ".", home, home + "/", "/", "a/.."} {
		if _, err := fsc.Remove(ctx, &rexecv1.RemoveRequest{Path: p, Recursive: true}); codeOf(err) != codes.InvalidArgument {
			t.Errorf("rm -r %q: %v", p, err)
		}
		if _, err := fsc.Rename(ctx, &rexecv1.RenameRequest{From: p, To: filepath.Join(t.TempDir(), "moved")}); codeOf(err) != codes.InvalidArgument {
			t.Errorf("mv %q: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(home, "keep")); err != nil {
		t.Fatal("the home directory was emptied")
	}
}
