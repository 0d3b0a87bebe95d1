package files_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/rexec/rexec/client"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
)

// rootedEnv is a real server on loopback with a key confined to a root.
type rootedEnv struct {
	srv  *testenv.Server
	root string
	key  *interceptors.Key
	c    *client.Client
}

func startRooted(t *testing.T, quota int64) *rootedEnv {
	t.Helper()
	root := t.TempDir()
	k, err := interceptors.GenerateKey("drop", interceptors.ScopeFiles, interceptors.ScopeFilesWrite)
	if err != nil {
		t.Fatal(err)
	}
	k.Root, k.Quota = root, quota
	srv := testenv.StartServer(t, testenv.Options{ExtraKeys: []*interceptors.Key{k}})
	return &rootedEnv{srv: srv, root: root, key: k, c: srv.Client(t, k)}
}

func randomFile(t *testing.T, dir string, size int64) (string, []byte) {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	p := filepath.Join(dir, "src.bin")
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return p, sum[:]
}

func fileSum(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return s[:]
}

// TestRoundTrip: files of sizes around the chunk size go up and come back
// with the same SHA-256, and nothing is left in the partial directory.
func TestRoundTrip(t *testing.T) {
	e := startRooted(t, 0)
	ctx := context.Background()
	const chunk = 1 << 20
	for _, size := range []int64{0, 1, chunk - 1, chunk, chunk + 1, 2*chunk + 1, 3*chunk - 1} {
		local := t.TempDir()
		src, sum := randomFile(t, local, size)
		up, err := e.c.Upload(ctx, src, "f.bin", client.TransferOptions{})
		if err != nil {
			t.Fatalf("size %d: upload: %v", size, err)
		}
		if !bytes.Equal(up.SHA256, sum) || up.Info.GetSize() != size {
			t.Fatalf("size %d: upload result %x %d", size, up.SHA256, up.Info.GetSize())
		}
		if got := fileSum(t, filepath.Join(e.root, "f.bin")); !bytes.Equal(got, sum) {
			t.Fatalf("size %d: server file differs", size)
		}
		dst := filepath.Join(local, "back.bin")
		down, err := e.c.Download(ctx, "f.bin", dst, client.TransferOptions{})
		if err != nil {
			t.Fatalf("size %d: download: %v", size, err)
		}
		if !bytes.Equal(down.SHA256, sum) || !bytes.Equal(fileSum(t, dst), sum) {
			t.Fatalf("size %d: download differs", size)
		}
		ents, _ := os.ReadDir(filepath.Join(e.root, ".rexec-partial"))
		if len(ents) != 0 {
			t.Fatalf("size %d: partial directory not empty: %v", size, ents)
		}
	}
}

func timestamp(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// TestRoundTripLarge: a large random file up and back, sha256 equal.
// 32 MiB in CI (-race makes it slow); REXEC_LONG=1 makes it 1 GiB (the size).
func TestRoundTripLarge(t *testing.T) {
	size := int64(32 << 20)
	if os.Getenv("REXEC_LONG") != "" {
		size = 1 << 30
	}
	e := startRooted(t, 0)
	local := t.TempDir()
	src := filepath.Join(local, "big")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	sum := h.Sum(nil)
	ctx := context.Background()
	if up, err := e.c.Upload(ctx, src, "big", client.TransferOptions{}); err != nil || !bytes.Equal(up.SHA256, sum) {
		t.Fatalf("upload: %v", err)
	}
	if !bytes.Equal(fileSumStream(t, filepath.Join(e.root, "big")), sum) {
		t.Fatal("the server's copy differs")
	}
	os.Remove(src)
	if down, err := e.c.Download(ctx, "big", src, client.TransferOptions{}); err != nil || !bytes.Equal(down.SHA256, sum) {
		t.Fatalf("download: %v", err)
	}
	if !bytes.Equal(fileSumStream(t, src), sum) {
		t.Fatal("the copy back differs")
	}
}

func fileSumStream(t *testing.T, p string) []byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}
