package integration

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
)

// rawRun sends one Run call as raw HTTP/2 frames (h2c, prior knowledge),
// with a valid token and n extra metadata values of size bytes each, which
// grpc-go's own client would refuse to send past the server's limit. It
// returns "rst:CODE" when the server reset the stream, "connection closed",
// or "grpc-status:N" from the trailers.
func rawRun(t *testing.T, srv *testenv.Server, shell string, n, size int) string {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	fields := [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", runMethod}, {":authority", srv.Addr},
		{"content-type", "application/grpc"}, {"te", "trailers"},
		{interceptors.MetadataKey, interceptors.Mint(srv.Key, runMethod, srv.Addr, time.Now())},
	}
	for i := range n {
		fields = append(fields, [2]string{fmt.Sprintf("x-junk-%d", i), strings.Repeat("j", size)})
	}
	for _, f := range fields {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	const maxFrame = 16 << 10 // HTTP/2's default SETTINGS_MAX_FRAME_SIZE
	b := block.Bytes()
	first := b[:min(len(b), maxFrame)]
	b = b[len(first):]
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndHeaders: len(b) == 0}); err != nil {
		t.Fatal(err)
	}
	for len(b) > 0 {
		n := min(len(b), maxFrame)
		if err := fr.WriteContinuation(1, n == len(b), b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	msg, err := proto.Marshal(&rexecv1.RunRequest{Shell: shell})
	if err != nil {
		t.Fatal(err)
	}
	data := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))) // gRPC's 5-byte prefix
	// The server may already have reset the stream; the answer says.
	_ = fr.WriteData(1, true, append(data, msg...))

	dec := hpack.NewDecoder(4096, nil)
	for range 1000 {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return "connection closed"
		}
		if err != nil {
			t.Fatalf("reading the server's answer: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame:
			return "rst:" + f.ErrCode.String()
		case *http2.GoAwayFrame:
			return "goaway:" + f.ErrCode.String()
		case *http2.HeadersFrame:
			fields, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			for _, hf := range fields {
				if hf.Name == "grpc-status" {
					return "grpc-status:" + hf.Value
				}
			}
		}
	}
	t.Fatal("no end of the stream in 1000 frames")
	return ""
}

// TestOversizeMetadataRawHTTP2: a client that ignores the server's 8 KiB
// header-list limit (not grpc-go, which refuses to send) gets its stream
// reset, and its command never runs, though its token is valid.
func TestOversizeMetadataRawHTTP2(t *testing.T) {
	srv := testenv.StartServer(t, testenv.Options{})
	dir := t.TempDir()
	// How the server refuses depends on the shape: a list over the limit
	// resets the stream; one value over it is an HPACK error for the whole
	// connection, which grpc-go closes. Either way nothing runs.
	for _, c := range []struct {
		name    string
		n, size int
		want    string
		started bool
	}{
		{"control: small metadata", 1, 100, "grpc-status:0", true},
		{"100 values of 100 bytes", 100, 100, "rst:FRAME_SIZE_ERROR", false},
		{"one 10 KiB value", 1, 10 << 10, "connection closed", false},
		{"one 32 KiB value, with CONTINUATION", 1, 32 << 10, "connection closed", false},
	} {
		marker := filepath.Join(dir, strings.NewReplacer(" ", "-", ",", "").Replace(c.name))
		got := rawRun(t, srv, "touch "+marker, c.n, c.size)
		t.Logf("%s -> %s", c.name, got)
		if got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
		_, statErr := os.Stat(marker)
		if ran := statErr == nil || commandStarted(srv.Log.String(), marker); ran != c.started {
			t.Errorf("%s: command ran %v, want %v", c.name, ran, c.started)
		}
	}
}
