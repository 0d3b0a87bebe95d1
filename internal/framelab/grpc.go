package framelab

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
)

// capture is a net.Conn that keeps a copy of every byte in each direction.
type capture struct {
	net.Conn
	mu      sync.Mutex
	out, in bytes.Buffer // client→server, server→client
}

func (c *capture) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.out.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *capture) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.in.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *capture) bytes() (out, in []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes()), bytes.Clone(c.in.Bytes())
}

// labEcho is rexec's EchoService as the lab serves it. The lab has a gRPC
// server of its own, with rexec's interceptors (auth, the version header)
// but not rexec's server package, so that rexec, which runs the lab, links
// no server or runner code.
type labEcho struct {
	rexecv1.UnimplementedEchoServiceServer
}

func (labEcho) Echo(_ context.Context, req *rexecv1.EchoRequest) (*rexecv1.EchoResponse, error) {
	return &rexecv1.EchoResponse{Message: req.GetMessage()}, nil
}

// grpcEcho starts a gRPC server with rexec's EchoService on loopback, sends
// each message as one Echo call over a captured connection, and decodes the
// bytes.
func grpcEcho(ctx context.Context, ms [][]byte) (GRPCWay, error) {
	var w GRPCWay
	key, err := interceptors.GenerateKey("lab")
	if err != nil {
		return w, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := grpc.NewServer(interceptors.ServerOptions(interceptors.ServerConfig{
		Verifier: interceptors.NewVerifier(interceptors.NewKeyRing([]*interceptors.Key{key}), interceptors.VerifierOptions{}),
		Logger:   quiet,
	})...)
	rexecv1.RegisterEchoServiceServer(srv, labEcho{})
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return w, err
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	defer func() { srv.Stop(); <-served }()

	var capt *capture
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		capt = &capture{Conn: nc}
		return capt, nil
	}
	c, err := client.New(lis.Addr().String(), client.WithKey(key), client.WithDialOptions(grpc.WithContextDialer(dialer)))
	if err != nil {
		return w, err
	}
	w.Intact = true
	for _, m := range ms {
		w.MessageBytes = append(w.MessageBytes, proto.Size(&rexecv1.EchoRequest{Message: string(m)}))
		got, err := c.Echo(ctx, string(m), false)
		if err != nil {
			c.Close()
			return w, err
		}
		w.Intact = w.Intact && got == string(m)
	}
	c.Close()
	if capt == nil {
		return w, errors.New("no connection was captured")
	}
	out, in := capt.bytes()
	cs, err := decodeH2("C→S", out, true)
	if err != nil {
		return w, fmt.Errorf("decode client→server: %w", err)
	}
	sc, err := decodeH2("S→C", in, false)
	if err != nil {
		return w, fmt.Errorf("decode server→client: %w", err)
	}
	w.Setup = len(http2.ClientPreface)
	perStream := map[uint32]int{}
	var data = map[uint32][]byte{}
	for _, f := range cs {
		switch {
		case f.stream == 0:
			w.Setup += 9 + f.Length
		case f.Type == "HEADERS" || f.Type == "DATA" || f.Type == "CONTINUATION":
			perStream[f.stream] += 9 + f.Length
			data[f.stream] = append(data[f.stream], f.data...)
		}
	}
	// gRPC numbers a connection's calls 1, 3, 5, …
	for i := range ms {
		id := uint32(2*i + 1)
		w.Wire = append(w.Wire, perStream[id])
		d := data[id]
		if len(d) < 5 {
			return w, fmt.Errorf("stream %d: %d DATA bytes, no gRPC message prefix", id, len(d))
		}
		w.Prefixes = append(w.Prefixes, hex.EncodeToString(d[:5]))
		if n := binary.BigEndian.Uint32(d[1:5]); int(n) != w.MessageBytes[i] || d[0] != 0 {
			return w, fmt.Errorf("stream %d: prefix % x, want uncompressed and %d bytes", id, d[:5], w.MessageBytes[i])
		}
	}
	// The first call in full: the connection's frames and stream 1's.
	for _, fs := range [][]h2frame{cs, sc} {
		for _, f := range fs {
			if f.stream == 3 {
				break
			}
			w.Frames = append(w.Frames, f.H2Frame)
		}
	}
	return w, nil
}

type h2frame struct {
	H2Frame
	stream uint32
	data   []byte
}

// decodeH2 decodes one direction of an HTTP/2 connection with x/net's
// Framer; its HPACK decoder sees every HEADERS in order, as a peer's does.
func decodeH2(dir string, b []byte, client bool) ([]h2frame, error) {
	if client {
		if !bytes.HasPrefix(b, []byte(http2.ClientPreface)) {
			return nil, errors.New("no HTTP/2 client preface")
		}
		b = b[len(http2.ClientPreface):]
	}
	fr := http2.NewFramer(nil, bytes.NewReader(b))
	fr.SetMaxReadFrameSize(1 << 24)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.MaxHeaderListSize = 1 << 20
	var out []h2frame
	for range 100000 { // bounded: a frame is at least 9 bytes
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		h := f.Header()
		x := h2frame{stream: h.StreamID, H2Frame: H2Frame{Dir: dir, Type: h.Type.String(), Stream: h.StreamID, Length: int(h.Length)}}
		if fl := flags(h); fl != "" {
			x.Flags = fl
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			_ = f.ForeachSetting(func(s http2.Setting) error {
				x.Detail = append(x.Detail, s.String())
				return nil
			})
		case *http2.MetaHeadersFrame:
			for _, hf := range f.Fields {
				v := hf.Value
				if hf.Name == "authorization" && len(v) > 40 {
					v = v[:40] + "…"
				}
				x.Detail = append(x.Detail, hf.Name+": "+v)
			}
		case *http2.DataFrame:
			d := f.Data()
			x.data = bytes.Clone(d)
			if len(d) >= 5 && h.StreamID != 0 {
				x.Detail = append(x.Detail, fmt.Sprintf("begins % x", d[:min(len(d), 5)]))
			}
		case *http2.WindowUpdateFrame:
			x.Detail = append(x.Detail, fmt.Sprintf("increment %d", f.Increment))
		case *http2.PingFrame:
			x.Detail = append(x.Detail, fmt.Sprintf("data % x", f.Data[:]))
		case *http2.GoAwayFrame:
			x.Detail = append(x.Detail, fmt.Sprintf("last stream %d, %v", f.LastStreamID, f.ErrCode))
		case *http2.RSTStreamFrame:
			x.Detail = append(x.Detail, f.ErrCode.String())
		}
		out = append(out, x)
	}
	return out, errors.New("more than 100000 frames")
}

func flags(h http2.FrameHeader) string {
	var fs []string
	has := func(f http2.Flags, name string) {
		if h.Flags.Has(f) {
			fs = append(fs, name)
		}
	}
	switch h.Type {
	case http2.FrameData:
		has(http2.FlagDataEndStream, "END_STREAM")
	case http2.FrameHeaders:
		has(http2.FlagHeadersEndStream, "END_STREAM")
		has(http2.FlagHeadersEndHeaders, "END_HEADERS")
	case http2.FrameSettings, http2.FramePing:
		has(http2.FlagSettingsAck, "ACK")
	}
	return strings.Join(fs, "|")
}
