package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rexec/rexec/client"
	"github.com/rexec/rexec/internal/bench"
)

// TestUploadResumesAcrossRexecdRestart: the real rexecd is stopped (SIGTERM,
// as a restart does) and, in a second round, killed (SIGKILL) while an
// upload runs; a new rexecd on the same key file resumes it. After the
// SIGTERM the resume starts at or past every byte the server acknowledged;
// after the SIGKILL at its last checkpoint (--upload-checkpoint). Either way the file is whole,
// and the destination never holds a partial file.
func TestUploadResumesAcrossRexecdRestart(t *testing.T) {
	t.Parallel()
	bin := binaries(t)
	root := t.TempDir()
	k, keys := writeFilesKey(t, root)
	data := make([]byte, 48<<20)
	rand.Read(data)
	src := filepath.Join(t.TempDir(), "src")
	os.WriteFile(src, data, 0o644)
	want := sha256.Sum256(data)

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx := context.Background()
			dst := "up-" + sig.String()
			d, err := bench.StartDaemon(ctx, bin, "--keys", keys, "--shutdown-grace", "500ms", "--upload-checkpoint", "100ms")
			if err != nil {
				t.Fatal(err)
			}
			c, err := client.New(d.Addr, client.WithKey(k))
			if err != nil {
				t.Fatal(err)
			}
			var (
				mu    sync.Mutex
				acked int64
				once  sync.Once
			)
			_, err = c.Upload(ctx, src, dst, client.TransferOptions{ChunkSize: 256 << 10, Window: 2 << 20,
				Progress: func(p client.Progress) {
					mu.Lock()
					acked = p.Done
					mu.Unlock()
					// Slow enough that checkpoints happen before the end, and that
					// the upload outlives the server's shutdown grace.
					time.Sleep(5 * time.Millisecond)
					if p.Done >= 16<<20 {
						once.Do(func() {
							syscall.Kill(d.Pid(), sig)
							time.Sleep(time.Second)
						})
					}
				}})
			c.Close()
			if err == nil {
				t.Fatal("the upload finished through the server's end")
			}
			d.Stop() // reaps the process (and after SIGTERM waits for its exit)
			if _, err := os.Stat(filepath.Join(root, dst)); err == nil {
				t.Fatal("the destination holds a partial file")
			}
			d2, err := bench.StartDaemon(ctx, bin, "--keys", keys, "--listen", d.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer d2.Stop()
			c2, err := client.New(d2.Addr, client.WithKey(k))
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			start := time.Now()
			res, err := c2.Upload(ctx, src, dst, client.TransferOptions{Resume: true})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			last := acked
			mu.Unlock()
			t.Logf("%v: acknowledged %d before, resumed at %d, sent %d more in %v", sig, last, res.Resumed, res.Sent, time.Since(start).Round(time.Millisecond))
			if sig == syscall.SIGTERM && res.Resumed < last {
				t.Errorf("resumed at %d after a graceful stop, but the server had acknowledged %d", res.Resumed, last)
			}
			if sig == syscall.SIGKILL && (res.Resumed == 0 || res.Resumed > last) {
				t.Errorf("resumed at %d after a SIGKILL: want a checkpoint (> 0, every 100ms) at or before the %d acknowledged", res.Resumed, last)
			}
			if res.Resumed+res.Sent != int64(len(data)) {
				t.Errorf("resumed at %d and sent %d of %d", res.Resumed, res.Sent, len(data))
			}
			got, _ := os.ReadFile(filepath.Join(root, dst))
			if sum := sha256.Sum256(got); !bytes.Equal(sum[:], want[:]) {
				t.Error("sha256 differs")
			}
		})
	}
}
