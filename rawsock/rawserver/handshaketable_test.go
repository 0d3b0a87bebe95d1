package rawserver_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/rawsock"
	"github.com/rexec/rexec/rawsock/rawserver"
)

// dialFrom connects to addr from the loopback address src (all of
// 127.0.0.0/8 is loopback on Linux), and closes the connection at cleanup.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// openIdle opens n connections to addr that never answer the challenge,
// spread over the source addresses srcs in turn.
func openIdle(t *testing.T, addr string, n int, srcs ...string) {
	t.Helper()
	for i := range n {
		dialFrom(t, srcs[i%len(srcs)], addr)
	}
}

// served runs a command on a new connection from src, as a prompt client does.
func served(t *testing.T, s *rawServer, src string) {
	t.Helper()
	nc := dialFrom(t, src, s.addr)
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	hello := make([]byte, 33)
	if _, err := io.ReadFull(nc, hello); err != nil {
		t.Fatalf("a prompt client from %s got no challenge: %v", src, err)
	}
	answer(t, s, nc, hello)
	runEcho(t, nc, "served")
}

// answer completes a handshake whose challenge (hello) was read.
func answer(t *testing.T, s *rawServer, nc net.Conn, hello []byte) {
	t.Helper()
	proof := rawsock.Proof(s.key.Secret, hello[1:], s.key.ID)
	nc.Write(append(append([]byte{byte(len(s.key.ID))}, s.key.ID...), proof[:]...))
	st := make([]byte, 1)
	if _, err := io.ReadFull(nc, st); err != nil || st[0] != rawsock.StatusOK {
		t.Fatalf("handshake: status %v, %v", st, err)
	}
}

// runEcho runs `echo word` on an authenticated connection and checks its output.
func runEcho(t *testing.T, nc net.Conn, word string) {
	t.Helper()
	nc.Write(rawsock.AppendFrame(nil, rawsock.TypeCommand, []byte(`{"argv":["echo","`+word+`"]}`)))
	rd := rawsock.NewReader(nc, 0)
	out := ""
	for {
		f, err := rd.Next()
		if err != nil {
			t.Fatalf("command: %v (output so far %q)", err, out)
		}
		switch f.Type {
		case rawsock.TypeStdout:
			out += string(f.Payload[8:])
		case rawsock.TypeError:
			t.Fatalf("command refused: %s", f.Payload[1:])
		case rawsock.TypeExit:
			if out != word+"\n" {
				t.Fatalf("output %q, want %q", out, word+"\n")
			}
			return
		}
	}
}

// TestIdleConnectionsDoNotLockOut: hundreds of connections that connect
// and send nothing no longer lock every other client out until their
// handshake deadline (here a minute, so that it cannot be what frees room):
// each new connection evicts the oldest pending one, and a client that
// answers its challenge at once is served. Before, the first 64 held the
// table and every later connection was closed at accept.
func TestIdleConnectionsDoNotLockOut(t *testing.T) {
	s := start(t, rawserver.Config{HandshakeTimeout: time.Minute})
	t.Run("300 idle from the same host", func(t *testing.T) {
		openIdle(t, s.addr, 300, "127.0.0.1")
		served(t, s, "127.0.0.1")
	})
	t.Run("300 idle from 10 hosts", func(t *testing.T) {
		var srcs []string
		for i := range 10 {
			srcs = append(srcs, fmt.Sprintf("127.0.0.%d", 10+i))
		}
		openIdle(t, s.addr, 300, srcs...)
		served(t, s, "127.0.0.1")
		served(t, s, "127.0.0.10")
	})
	if !strings.Contains(s.log.String(), "evicted by a newer connection") {
		t.Errorf("the server log does not say it evicted connections:\n%s", s.log.String())
	}
	// The go client too, through Dial.
	c := s.dial(t)
	var out strings.Builder
	if _, err := c.Run(context.Background(), &rexecv1.RunRequest{Argv: []string{"echo", "ok"}}, &out, io.Discard); err != nil || out.String() != "ok\n" {
		t.Errorf("go client after the floods: %q %v", out.String(), err)
	}
}

// TestEvictionSparesOtherHosts: a flood from one host evicts only that
// host's pending connections (at most half the table is one host's), so a
// slow but honest client on another host, mid-handshake while 300
// connections come in, still completes it.
func TestEvictionSparesOtherHosts(t *testing.T) {
	s := start(t, rawserver.Config{HandshakeTimeout: time.Minute})
	slow := dialFrom(t, "127.0.0.3", s.addr)
	slow.SetDeadline(time.Now().Add(30 * time.Second))
	hello := make([]byte, 33)
	if _, err := io.ReadFull(slow, hello); err != nil {
		t.Fatal(err)
	}
	openIdle(t, s.addr, 300, "127.0.0.2")
	served(t, s, "127.0.0.2") // the flood's host is served too, once it answers
	answer(t, s, slow, hello)
	runEcho(t, slow, "spared")
}
