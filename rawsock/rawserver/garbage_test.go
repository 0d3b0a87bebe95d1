package rawserver_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/rexec/rexec/rawsock/rawserver"
)

// readToEOF reads until the server closes nc (or 10 s pass, which fails).
func readToEOF(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	// A reset is a close too: the kernel resets a socket closed with
	// unread input (the garbage the server did not read).
	if _, err := io.Copy(io.Discard, nc); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("want the server to close the connection, got %v", err)
	}
}

// TestGarbageBeforeTheHandshake: random bytes and a handshake answer cut
// short are refused and closed; the server serves the next client.
func TestGarbageBeforeTheHandshake(t *testing.T) {
	s := start(t, rawserver.Config{HandshakeTimeout: 500 * time.Millisecond})
	junk := make([]byte, 4096)
	rand.Read(junk)
	for name, send := range map[string][]byte{
		"random bytes":       junk,
		"truncated answer":   {0, 0, 0, 40, 0x03, 'a', 'b'}, // a length, then too few bytes, then silence
		"nothing at all":     nil,
		"one byte then gone": {0x01},
	} {
		t.Run(name, func(t *testing.T) {
			nc, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := io.ReadFull(nc, make([]byte, 33)); err != nil { // version byte + challenge
				t.Fatalf("challenge: %v", err)
			}
			nc.Write(send)
			readToEOF(t, nc)
		})
	}
	if msg, err := s.dial(t).Echo(context.Background(), "still up", false); err != nil || msg != "still up" {
		t.Errorf("after garbage: %q %v", msg, err)
	}
}

// TestManyIdleConnections: 500 connections that never answer the challenge
// (slowloris) are closed at once past the cap or at the handshake deadline;
// goroutines return to where they were and an authenticated client is served.
func TestManyIdleConnections(t *testing.T) {
	s := start(t, rawserver.Config{HandshakeTimeout: 500 * time.Millisecond, MaxUnauthenticated: 64})
	if _, err := s.dial(t).Echo(context.Background(), "warm", false); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, 500)
	for range 500 {
		nc, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, nc)
	}
	for _, nc := range conns {
		readToEOF(t, nc) // each is closed: over the cap at once, the rest at the deadline
		nc.Close()
	}
	var after int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if after = runtime.NumGoroutine(); after <= before+2 {
			break
		}
	}
	if after > before+2 {
		t.Errorf("goroutines %d before, %d after 500 idle connections were dropped", before, after)
	}
	if msg, err := s.dial(t).Echo(context.Background(), "served", false); err != nil || msg != "served" {
		t.Errorf("authenticated client after the flood: %q %v", msg, err)
	}
}
