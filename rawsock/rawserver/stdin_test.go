package rawserver_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/rawsock"
	"github.com/rexec/rexec/rawsock/rawserver"
)

// TestRunStdinStreams: stdin streams to the command, in chunks, with EOF at
// its end, and is byte-exact.
func TestRunStdinStreams(t *testing.T) {
	s := start(t, rawserver.Config{})
	c := s.dial(t)
	data := make([]byte, 3<<20+17)
	rand.Read(data)
	sum := sha256.Sum256(data)
	var out bytes.Buffer
	ex, err := c.RunStdin(context.Background(), &rexecv1.RunRequest{Shell: "sha256sum"}, bytes.NewReader(data), &out, io.Discard)
	if err != nil || ex.GetExitCode() != 0 {
		t.Fatalf("sha256sum of stdin: %v %v", ex, err)
	}
	if got := strings.Fields(out.String()); len(got) == 0 || got[0] != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256sum over raw stdin: %q, want %x", out.String(), sum)
	}
	// req.Stdin comes first, then the reader; and an empty reader is EOF at once.
	out.Reset()
	if _, err := c.RunStdin(context.Background(), &rexecv1.RunRequest{Shell: "cat", Stdin: []byte("one ")}, strings.NewReader("two"), &out, io.Discard); err != nil || out.String() != "one two" {
		t.Errorf("req.Stdin then the reader: %q %v", out.String(), err)
	}
	out.Reset()
	if _, err := c.RunStdin(context.Background(), &rexecv1.RunRequest{Shell: "cat; echo eof"}, strings.NewReader(""), &out, io.Discard); err != nil || out.String() != "eof\n" {
		t.Errorf("empty stdin: %q %v", out.String(), err)
	}
}

// TestStdinNeverReachesTheNextCommand: a stdin reader that is still blocked
// when its command ends (a terminal with nothing typed) sends nothing once
// its call is over, so that what it reads later never becomes the stdin of
// the connection's next command.
func TestStdinNeverReachesTheNextCommand(t *testing.T) {
	s := start(t, rawserver.Config{})
	c := s.dial(t)
	r1, w1 := io.Pipe()
	if _, err := c.RunStdin(context.Background(), &rexecv1.RunRequest{Shell: "true"}, r1, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	r2, w2 := io.Pipe()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := c.RunStdin(context.Background(), &rexecv1.RunRequest{Shell: "cat"}, r2, &out, io.Discard)
		done <- err
	}()
	w1.Write([]byte("stale ")) // read by the first call's sender, after its call ended
	w1.Close()
	w2.Write([]byte("fresh"))
	w2.Close()
	if err := <-done; err != nil || out.String() != "fresh" {
		t.Errorf("second command's stdin: %q %v, want only its own", out.String(), err)
	}
}

// countingReader is an endless stdin that counts what was read from it.
type countingReader struct{ n atomic.Int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	clear(p)
	r.n.Add(int64(len(p)))
	return len(p), nil
}

// TestClientGoneWhileStdinFull: a command that does not read its stdin
// holds up the server's reader (back-pressure), which then cannot see its
// client close the connection. The server now looks at the socket while it
// waits: the command is killed when the client closes (FIN, a little
// unread stdin in flight) or aborts (reset, megabytes in flight, as the Go
// client's cancel does). Before, the command lived on to its own end.
func TestClientGoneWhileStdinFull(t *testing.T) {
	s := start(t, rawserver.Config{})
	t.Run("closed, FIN", func(t *testing.T) {
		nc := s.handshaken(t)
		var b []byte
		b = rawsock.AppendFrame(b, rawsock.TypeCommand, []byte(`{"shell":"echo $$; exec sleep 60","stdin":true}`))
		nc.Write(b)
		pid := readPID(t, nc)
		chunk := make([]byte, 64<<10)
		for range 2 { // past the pipe's 64 KiB, well inside the socket's buffers
			nc.Write(rawsock.AppendFrame(nil, rawsock.TypeStdin, chunk))
		}
		time.Sleep(2 * 250 * time.Millisecond) // the server is now blocked on the pipe
		nc.Close()
		t.Logf("the command's group was gone %v after the close", testenv.WaitGroupGone(t, pid, 10*time.Second).Round(time.Millisecond))
	})
	t.Run("cancelled go client, reset", func(t *testing.T) {
		c := s.dial(t)
		in := &countingReader{}
		pidc := make(chan int, 1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := c.RunStdin(ctx, &rexecv1.RunRequest{Shell: "echo $$; exec sleep 60"}, in, pidWriter(pidc), io.Discard)
			done <- err
		}()
		pid := <-pidc
		// Megabytes in flight: the server's reader waits on the pipe, the
		// socket's buffers fill, and a FIN would queue behind them.
		for deadline := time.Now().Add(20 * time.Second); in.n.Load() < 2<<20 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Second)
		t.Logf("stdin read before the cancel: %d bytes", in.n.Load())
		cancel()
		if err := <-done; err == nil {
			t.Error("a cancelled call returned no error")
		}
		t.Logf("the command's group was gone %v after the cancel", testenv.WaitGroupGone(t, pid, 10*time.Second).Round(time.Millisecond))
	})
}

// readPID reads frames up to the first stdout line, a pid.
func readPID(t *testing.T, nc net.Conn) int {
	t.Helper()
	rd := rawsock.NewReader(nc, 0)
	for {
		f, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == rawsock.TypeError {
			t.Fatalf("refused: %s", f.Payload[1:])
		}
		if f.Type == rawsock.TypeStdout {
			pid, err := strconv.Atoi(strings.TrimSpace(string(f.Payload[8:])))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
}

// pidWriter sends the first line written to it, a pid, to ch.
type pidWriter chan int

func (w pidWriter) Write(p []byte) (int, error) {
	if pid, err := strconv.Atoi(strings.TrimSpace(string(p))); err == nil {
		select {
		case w <- pid:
		default:
		}
	}
	return len(p), nil
}
