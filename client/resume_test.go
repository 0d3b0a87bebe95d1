package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/netfault"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/journal"
	"github.com/rexec/rexec/server"
)

// faultyServer is a server with a journal, and a proxy in front of it.
func faultyServer(t *testing.T, grace time.Duration) (*testenv.Server, *netfault.Proxy) {
	t.Helper()
	srv := testenv.StartServer(t, testenv.Options{
		Journal: journal.Options{ReconnectGrace: grace},
		Server:  server.Config{KeepaliveTime: time.Second, KeepaliveTimeout: time.Second, KeepaliveMinTime: 100 * time.Millisecond},
	})
	p, err := netfault.Start(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return srv, p
}

// progress is a writer that calls at(n) as its byte count passes each mark.
type progress struct {
	w     io.Writer
	n     int64
	marks []int64
	at    func(i int)
	i     int
}

func (p *progress) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	for p.i < len(p.marks) && p.n >= p.marks[p.i] {
		p.at(p.i)
		p.i++
	}
	return n, err
}

// TestResumableSessionAcrossResets: the proxy resets the connection at
// points of the output; the session resumes each time and the writers get
// every byte once, and the exit status.
func TestResumableSessionAcrossResets(t *testing.T) {
	srv, p := faultyServer(t, 10*time.Second)
	// A small window, so that little is in flight when the proxy resets:
	// every reset then breaks a stream that still has output to come.
	pc, err := client.New(p.Addr(), client.WithKey(srv.Key), client.WithAuthority(srv.Addr), client.WithWindow(256<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	const n = 400000
	cmd := fmt.Sprintf(`awk 'BEGIN{for(i=1;i<=%d;i++){print "out " i; if(i%%7==0) print "err " i > "/dev/stderr"}}'; exit 5`, n)
	var wantOut, wantErr bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&wantOut, "out %d\n", i)
		if i%7 == 0 {
			fmt.Fprintf(&wantErr, "err %d\n", i)
		}
	}
	var resumes atomic.Int32
	faults := make(chan int, 8)
	var out, errb bytes.Buffer
	w := &progress{w: &out, marks: []int64{200000, 1500000, 3000000}, at: func(i int) { p.Reset(); faults <- i }}
	go func() {
		for range faults {
			time.Sleep(100 * time.Millisecond)
			p.Restore()
		}
	}()
	s, err := pc.OpenResumableSession(context.Background(), &rexecv1.SessionStart{Command: &rexecv1.RunRequest{Shell: cmd}}, nil,
		client.ResumeOptions{OnResume: func(r client.Resumed) {
			resumes.Add(1)
			t.Logf("resumed %s from seq %d after %d attempts, %v (%v)", r.ExecutionID, r.FromSeq, r.Attempts, r.Took, r.Cause)
		}})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := s.Wait(w, &errb)
	close(faults)
	if err != nil {
		t.Fatal(err)
	}
	if ex.GetExitCode() != 5 || out.String() != wantOut.String() || errb.String() != wantErr.String() {
		t.Fatalf("exit %v; stdout %d bytes (want %d, sha %x vs %x); stderr %d (want %d)", ex, out.Len(), wantOut.Len(),
			sha256.Sum256(out.Bytes()), sha256.Sum256(wantOut.Bytes()), errb.Len(), wantErr.Len())
	}
	if r := resumes.Load(); r != 3 {
		t.Errorf("%d resumes, want one per reset (3)", r)
	}
}

// TestRunResumableAcrossResets: the same for a command without stdin,
// started by Run and read by Attach.
func TestRunResumableAcrossResets(t *testing.T) {
	srv, p := faultyServer(t, 10*time.Second)
	// A small window, so that little is in flight when the proxy resets:
	// every reset then breaks a stream that still has output to come.
	pc, err := client.New(p.Addr(), client.WithKey(srv.Key), client.WithAuthority(srv.Addr), client.WithWindow(256<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	faults := make(chan int, 8)
	go func() {
		for range faults {
			time.Sleep(50 * time.Millisecond)
			p.Restore()
		}
	}()
	var out bytes.Buffer
	var resumes atomic.Int32
	w := &progress{w: &out, marks: []int64{1 << 20, 5 << 20, 12 << 20}, at: func(i int) { p.Reset(); faults <- i }}
	ex, err := pc.RunResumable(context.Background(), &rexecv1.RunRequest{Shell: "head -c 16777216 /dev/zero | tr '\\0' x; exit 3"},
		w, io.Discard, client.ResumeOptions{OnResume: func(client.Resumed) { resumes.Add(1) }})
	close(faults)
	if err != nil {
		t.Fatal(err)
	}
	if ex.GetExitCode() != 3 || resumes.Load() != 3 || out.String() != strings.Repeat("x", 16<<20) {
		t.Fatalf("exit %v, %d resumes, %d bytes", ex, resumes.Load(), out.Len())
	}
}
