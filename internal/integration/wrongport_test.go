package integration

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/rawsock"
)

// TestRawClientAtTheGRPCPort points the raw client at rexecd's gRPC port:
// it recognises the HTTP/2 SETTINGS frame the server sends first and fails
// at once with ErrGRPCPort, where it used to wait 10 s for the 33-byte raw
// greeting and time out. (The gRPC client at the raw port: client's
// TestWrongPortSaysRaw.)
func TestRawClientAtTheGRPCPort(t *testing.T) {
	srv := testenv.StartServer(t, testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := rawsock.Dial(ctx, srv.Addr, srv.Key)
	if !errors.Is(err, rawsock.ErrGRPCPort) {
		t.Errorf("raw Dial at the gRPC port: %v, want ErrGRPCPort", err)
	}
	if ctx.Err() != nil {
		t.Error("raw Dial at the gRPC port waited for its deadline")
	}

	// A port that accepts and says nothing (a gRPC port with TLS does that)
	// gets a message that says what the raw listener would have done.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := lis.Accept()
		if err == nil {
			accepted <- nc
		}
		close(accepted)
	}()
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	_, err = rawsock.Dial(short, lis.Addr().String(), srv.Key)
	if err == nil || !strings.Contains(err.Error(), "no greeting from the server") {
		t.Errorf("raw Dial at a silent port: %v, want it to say no greeting came", err)
	}
	if nc, ok := <-accepted; ok {
		nc.Close()
	}
}
