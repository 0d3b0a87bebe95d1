//go:build linux

package asuser_test

import (
	"errors"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/rexec/rexec/internal/asuser"
	"github.com/rexec/rexec/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// alice is the test user's identity, or a skip where it cannot be made.
func alice(t *testing.T) (asuser.Cred, *user.User) {
	t.Helper()
	u := testenv.EnsureAlice(t)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	c := asuser.Cred{UID: uint32(uid), GID: uint32(gid)}
	gids, _ := u.GroupIds()
	for _, g := range gids {
		n, _ := strconv.Atoi(g)
		c.Groups = append(c.Groups, uint32(n))
	}
	return c, u
}

// TestUserCannotWriteShadow: as alice, /etc/shadow cannot be opened for
// writing (or reading), nothing can be made in /etc, while her home is
// hers; and the same goroutine, after Do, has rexecd's (root's) rights
// again.
func TestUserCannotWriteShadow(t *testing.T) {
	c, u := alice(t)
	err := asuser.Do(c, func() error {
		f, err := os.OpenFile("/etc/shadow", os.O_WRONLY, 0)
		if err == nil {
			f.Close()
		}
		return err
	})
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("open /etc/shadow for writing as %s: %v, want permission denied", u.Username, err)
	}
	if err := asuser.Do(c, func() error { _, err := os.ReadFile("/etc/shadow"); return err }); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("read /etc/shadow as %s: %v", u.Username, err)
	}
	if err := asuser.Do(c, func() error { return os.WriteFile("/etc/rexec-asuser-test", nil, 0o644) }); !errors.Is(err, fs.ErrPermission) {
		os.Remove("/etc/rexec-asuser-test")
		t.Errorf("create in /etc as %s: %v", u.Username, err)
	}
	mine := filepath.Join(u.HomeDir, "asuser-test")
	if err := asuser.Do(c, func() error { return os.WriteFile(mine, []byte("x"), 0o600) }); err != nil {
		t.Fatalf("write in her own home: %v", err)
	}
	defer os.Remove(mine)
	// Root's rights are back on this goroutine's next call.
	if _, err := os.ReadFile("/etc/shadow"); err != nil {
		t.Errorf("after Do, rexecd cannot read /etc/shadow: %v", err)
	}
}

// TestFileOwnedByUser: a file made as the user is the user's, as a file
// she made herself would be.
func TestFileOwnedByUser(t *testing.T) {
	c, u := alice(t)
	name := filepath.Join(u.HomeDir, "asuser-owner")
	defer os.Remove(name)
	if err := asuser.Do(c, func() error { return os.WriteFile(name, nil, 0o600) }); err != nil {
		t.Fatal(err)
	}
	var st fsStat
	if !st.of(t, name) || st.uid != c.UID || st.gid != c.GID {
		t.Errorf("owner %d:%d, want %d:%d", st.uid, st.gid, c.UID, c.GID)
	}
}

// TestWrapFSRoot: a root= key's *os.Root, opened by rexecd, wrapped: a
// directory inside the root that alice may not enter stays closed to her,
// one she owns is hers.
func TestWrapFSRoot(t *testing.T) {
	c, _ := alice(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "secret"), 0o700)
	os.Mkdir(filepath.Join(dir, "hers"), 0o755)
	if err := os.Chown(filepath.Join(dir, "hers"), int(c.UID), int(c.GID)); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	fsys := asuser.WrapFS(r, c)
	defer fsys.Close()
	if _, err := fsys.OpenFile("secret/x", os.O_CREATE|os.O_WRONLY, 0o644); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("create in a 0700 root-owned directory: %v", err)
	}
	if err := fsys.Mkdir("top", 0o755); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("mkdir in the root-owned root: %v", err)
	}
	f, err := fsys.OpenFile("hers/x", os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatalf("create in her directory: %v", err)
	}
	f.Close()
	if err := fsys.Rename("hers/x", "hers/y"); err != nil {
		t.Errorf("rename in her directory: %v", err)
	}
	if _, err := fsys.Stat("hers/y"); err != nil {
		t.Error(err)
	}
	if err := fsys.Remove("hers/y"); err != nil {
		t.Error(err)
	}
}

// TestConcurrentCallsKeepTheirRights: calls as the user and calls as root
// at once, on all threads: no call ever runs with the other's rights.
func TestConcurrentCallsKeepTheirRights(t *testing.T) {
	c, _ := alice(t)
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for range 200 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := asuser.Do(c, func() error { _, err := os.Stat("/root/."); return err }); !errors.Is(err, fs.ErrPermission) && err != nil {
				errs <- err
			} else if err == nil && rootHome0700() {
				errs <- errors.New("the user could stat into /root")
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := os.ReadFile("/etc/shadow"); err != nil {
				errs <- errors.New("root could not read /etc/shadow: a thread kept the user's rights: " + err.Error())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func rootHome0700() bool {
	fi, err := os.Stat("/root")
	return err == nil && fi.Mode().Perm()&0o005 == 0
}

// BenchmarkStat is a stat as rexecd; BenchmarkStatAsUser the same as
// alice: the difference is what a file call of a user= key costs more.
func BenchmarkStat(b *testing.B) {
	for b.Loop() {
		if _, err := os.Stat("/etc/hostname"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStatAsUser(b *testing.B) {
	u, skip, err := testenv.MakeAlice()
	if skip != "" || err != nil {
		b.Skip(skip, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	c := asuser.Cred{UID: uint32(uid), GID: uint32(gid), Groups: []uint32{uint32(gid)}}
	for b.Loop() {
		if err := asuser.Do(c, func() error { _, err := os.Stat("/etc/hostname"); return err }); err != nil {
			b.Fatal(err)
		}
	}
}
