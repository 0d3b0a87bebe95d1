// Package framelab is the framing lab behind `rexec frames`: the same
// messages sent four ways on loopback — unframed TCP, length-prefixed TCP,
// UDP datagrams and a gRPC call — and what the receiver saw each time. It
// shows, with real sockets and real bytes, the problem a framing solves and
// what each solution costs on the wire.
//
//	rep, err := framelab.Run(ctx, framelab.Options{})
//	rep.WriteText(os.Stdout) // or json.Marshal(rep)
package framelab

import (
	"bytes"
	"context"
	"fmt"
)

// Options tune the lab. Zero fields take the defaults below.
type Options struct {
	// Lines are the short messages sent first. By default three lines.
	Lines []string
	// Big is the size of the last message, at most MaxBig. By default 100 KiB.
	Big int
	// UDPBuffer is the UDP receiver's read buffer, as the classic lesson's
	// recvfrom(1024). By default 1024.
	UDPBuffer int
	// UDPTruncate is the size of the extra datagram sent to show truncation.
	// By default 8 KiB.
	UDPTruncate int
}

// MaxBig bounds Options.Big: the framed receiver refuses larger frames.
const MaxBig = 1 << 20

// Report is what the lab saw.
type Report struct {
	// Messages are the sizes of the messages sent, in order.
	Messages []int   `json:"messages"`
	Unframed TCPWay  `json:"tcp_unframed"`
	Framed   TCPWay  `json:"tcp_framed"`
	UDP      UDPWay  `json:"udp"`
	GRPC     GRPCWay `json:"grpc"`
}

// Read is one read the receiver made, and which messages' bytes it held.
type Read struct {
	Bytes int    `json:"bytes"`
	Holds string `json:"holds"`
	Head  string `json:"head"`
}

// TCPWay is one TCP run.
type TCPWay struct {
	// Reads are the receiver's read calls, as the kernel answered them.
	Reads []Read `json:"reads"`
	// Received are the messages the receiver recovered: for unframed TCP
	// only "what one read returned", for framed TCP the decoded frames.
	Received []int `json:"received"`
	// Wire is the bytes written per message, framing included.
	Wire []int `json:"wire"`
	// NoDelay is TCP_NODELAY on the sender (Go's default: on).
	NoDelay bool `json:"nodelay"`
	// Intact says the received messages equal the sent ones.
	Intact bool `json:"intact"`
}

// Datagram is one datagram sent.
type Datagram struct {
	Sent int `json:"sent"`
	// Received is what one read returned; Truncated means the kernel
	// dropped the rest (MSG_TRUNC); Error is the sender's error, if refused.
	Received  int    `json:"received"`
	Truncated bool   `json:"truncated"`
	Error     string `json:"error,omitempty"`
}

// UDPWay is the UDP run.
type UDPWay struct {
	Buffer    int        `json:"buffer"`
	Datagrams []Datagram `json:"datagrams"`
	// MaxPayload is the largest UDP payload over IPv4: 65535 - 20 - 8.
	MaxPayload int `json:"max_payload"`
}

// H2Frame is one HTTP/2 frame captured on the gRPC connection.
type H2Frame struct {
	Dir    string   `json:"dir"` // "C→S" or "S→C"
	Type   string   `json:"type"`
	Stream uint32   `json:"stream"`
	Length int      `json:"length"` // payload bytes, after the 9-byte frame header
	Flags  string   `json:"flags,omitempty"`
	Detail []string `json:"detail,omitempty"`
}

// GRPCWay is the gRPC run: one Echo call per message.
type GRPCWay struct {
	// Frames are the HTTP/2 frames of the connection's setup and of the
	// first call, both directions, decoded.
	Frames []H2Frame `json:"frames"`
	// Prefixes are the 5-byte gRPC message prefixes found in the request
	// DATA of each call, in hex.
	Prefixes []string `json:"prefixes"`
	// Wire is the client→server bytes of each call's stream (HEADERS and
	// DATA frames with their 9-byte headers); Setup the connection's own
	// (preface, SETTINGS, WINDOW_UPDATE, PING, …), paid once.
	Wire  []int `json:"wire"`
	Setup int   `json:"setup"`
	// MessageBytes are the protobuf EchoRequest sizes.
	MessageBytes []int `json:"message_bytes"`
	Intact       bool  `json:"intact"`
}

func (o *Options) defaults() {
	if len(o.Lines) == 0 {
		o.Lines = []string{"alpha\n", "beta\n", "gamma\n"}
	}
	if o.Big <= 0 {
		o.Big = 100 << 10
	}
	if o.UDPBuffer <= 0 {
		o.UDPBuffer = 1024
	}
	if o.UDPTruncate <= 0 {
		o.UDPTruncate = 8 << 10
	}
}

// messages are the lines, then one big message of a recognizable pattern.
func (o *Options) messages() [][]byte {
	var ms [][]byte
	for _, l := range o.Lines {
		ms = append(ms, []byte(l))
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), o.Big/16+1)[:o.Big]
	return append(ms, big)
}

// Run runs the four ways on loopback.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	if o.Big > MaxBig {
		return nil, fmt.Errorf("big message of %d bytes: at most %d", o.Big, MaxBig)
	}
	ms := o.messages()
	rep := &Report{}
	for _, m := range ms {
		rep.Messages = append(rep.Messages, len(m))
	}
	var err error
	if rep.Unframed, err = tcpUnframed(ctx, ms); err != nil {
		return nil, fmt.Errorf("unframed TCP: %w", err)
	}
	if rep.Framed, err = tcpFramed(ctx, ms); err != nil {
		return nil, fmt.Errorf("framed TCP: %w", err)
	}
	if rep.UDP, err = udp(ctx, ms, o); err != nil {
		return nil, fmt.Errorf("UDP: %w", err)
	}
	if rep.GRPC, err = grpcEcho(ctx, ms); err != nil {
		return nil, fmt.Errorf("gRPC: %w", err)
	}
	return rep, nil
}

// holds says which messages' bytes the range [a, b) of the stream holds.
func holds(sizes []int, a, b int) string {
	var parts []string
	off := 0
	for i, n := range sizes {
		s, e := max(off, a), min(off+n, b)
		if s < e {
			if s == off && e == off+n {
				parts = append(parts, fmt.Sprintf("#%d", i+1))
			} else {
				parts = append(parts, fmt.Sprintf("#%d[%d:%d]", i+1, s-off, e-off))
			}
		}
		off += n
	}
	return join(parts, " + ")
}

func join(parts []string, sep string) string {
	var b bytes.Buffer
	for i, p := range parts {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(p)
	}
	return b.String()
}

// head is a printable start of b.
func head(b []byte) string {
	const n = 24
	s := fmt.Sprintf("%q", b[:min(len(b), n)])
	if len(b) > n {
		s += "…"
	}
	return s
}
