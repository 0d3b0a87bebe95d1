//go:build linux

package files_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/rexec/rexec/client"
	"github.com/rexec/rexec/files"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/server"
)

// TestUserKeyHasTheUsersRights (issue 20): a key with user=rexec-alice,
// files-write and no root= reaches the host as she does, never as rexecd:
// it cannot write /etc/shadow (or read it), make a file in /etc, or change
// the mode or time of a file it may only read (fchmod and futimens are
// checked at the call, not at the open); what it writes is hers; relative
// names start in her home; its partial uploads are kept there too.
func TestUserKeyHasTheUsersRights(t *testing.T) {
	alice := testenv.EnsureAlice(t)
	k, err := interceptors.GenerateKey("alice", interceptors.ScopeFiles, interceptors.ScopeFilesWrite)
	if err != nil {
		t.Fatal(err)
	}
	k.User = testenv.Alice
	state := t.TempDir()
	srv := testenv.StartServer(t, testenv.Options{ExtraKeys: []*interceptors.Key{k},
		Server: server.Config{Files: &files.Config{StateDir: state, Home: t.TempDir()}}})
	c := srv.Client(t, k)
	ctx := context.Background()
	fsc := c.Files()
	src, sum := randomFile(t, t.TempDir(), 3000)
	if err := os.Chmod(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}

	shadow, _ := os.ReadFile("/etc/shadow")
	if _, err := c.Upload(ctx, src, "/etc/shadow", client.TransferOptions{}); codeOf(err) != codes.PermissionDenied {
		t.Errorf("upload over /etc/shadow: %v, want PermissionDenied", err)
	}
	if after, _ := os.ReadFile("/etc/shadow"); !bytes.Equal(after, shadow) {
		t.Fatal("/etc/shadow changed")
	}
	if _, err := c.Download(ctx, "/etc/shadow", filepath.Join(t.TempDir(), "s"), client.TransferOptions{}); codeOf(err) != codes.PermissionDenied {
		t.Errorf("download of /etc/shadow: %v, want PermissionDenied", err)
	}
	if _, err := fsc.Mkdir(ctx, &rexecv1.MkdirRequest{Path: "/etc/rexec-alice-was-here"}); codeOf(err) != codes.PermissionDenied {
		os.Remove("/etc/rexec-alice-was-here")
		t.Errorf("mkdir in /etc: %v, want PermissionDenied", err)
	}
	// A file she may read but not change: rexecd's, mode 0644, in a
	// directory she may enter (t.TempDir's parent is closed to her).
	dir, err := os.MkdirTemp("", "rexec-user-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	theirs := filepath.Join(dir, "theirs")
	if err := errors.Join(os.Chmod(dir, 0o755), os.WriteFile(theirs, []byte("x"), 0o644)); err != nil {
		t.Fatal(err)
	}
	if _, err := fsc.Stat(ctx, &rexecv1.StatRequest{Path: theirs}); err != nil {
		t.Fatalf("she cannot even stat %s: %v", theirs, err)
	}
	mode := uint32(0o666)
	if _, err := fsc.SetAttributes(ctx, &rexecv1.SetAttributesRequest{Path: theirs, Mode: &mode}); codeOf(err) != codes.PermissionDenied {
		t.Errorf("chmod 666 of root's file: %v, want PermissionDenied", err)
	}
	if fi, _ := os.Stat(theirs); fi.Mode().Perm() != 0o644 {
		t.Errorf("root's file is %v now", fi.Mode())
	}

	// Her own: a relative name is in her home, and hers.
	if _, err := c.Upload(ctx, src, "from-rexec.bin", client.TransferOptions{}); err != nil {
		t.Fatalf("upload into her home: %v", err)
	}
	mine := filepath.Join(alice.HomeDir, "from-rexec.bin")
	defer os.Remove(mine)
	if !bytes.Equal(fileSum(t, mine), sum) {
		t.Error("her file differs")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(mine, &st); err != nil || strconv.Itoa(int(st.Uid)) != alice.Uid {
		t.Errorf("her file belongs to uid %d (%v), want %s", st.Uid, err, alice.Uid)
	}
	if _, err := fsc.SetAttributes(ctx, &rexecv1.SetAttributesRequest{Path: "from-rexec.bin", Mode: &mode}); err != nil {
		t.Errorf("chmod of her own file: %v", err)
	}
	// A partial upload of hers waits in her home, not in rexecd's state.
	startFromSource(t, c, src, "part.bin", 1000)
	parts, _ := filepath.Glob(filepath.Join(alice.HomeDir, ".local", "state", "rexec", "partial", "*.part"))
	if len(parts) == 0 {
		t.Error("no partial file of hers in her home")
	}
	if theirs, _ := filepath.Glob(filepath.Join(state, "partial", "*")); len(theirs) != 0 {
		t.Errorf("partial files of hers in rexecd's state directory: %v", theirs)
	}
	for _, p := range parts {
		os.Remove(p)
		os.Remove(strings.TrimSuffix(p, ".part") + ".json")
	}
}

// TestUserKeyRootAsTheUser: a user= key's root= is opened and walked as
// the user: a root she may not enter refuses every call.
func TestUserKeyRootAsTheUser(t *testing.T) {
	testenv.EnsureAlice(t)
	root := t.TempDir() // 0700, root's
	k, err := interceptors.GenerateKey("alice", interceptors.ScopeFiles, interceptors.ScopeFilesWrite)
	if err != nil {
		t.Fatal(err)
	}
	k.User, k.Root = testenv.Alice, root
	srv := testenv.StartServer(t, testenv.Options{ExtraKeys: []*interceptors.Key{k}})
	c := srv.Client(t, k)
	_, err = c.Files().Stat(context.Background(), &rexecv1.StatRequest{Path: "."})
	if codeOf(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "as its user "+testenv.Alice) {
		t.Errorf("a root she may not enter: %v", err)
	}
}
