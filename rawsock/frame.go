package rawsock

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// Type is a frame's type byte.
type Type byte

// The frame types. C→S are sent by the client, S→C by the server.
const (
	TypeCommand    Type = 0x01 // C→S: JSON Command; starts a command
	TypeStdin      Type = 0x02 // C→S: bytes for the running command's stdin
	TypeStdinClose Type = 0x03 // C→S: empty; EOF on the command's stdin
	TypeSignal     Type = 0x04 // C→S: a signal name, e.g. "INT"
	TypeEcho       Type = 0x05 // C→S: flags byte (bit 0: upper-case), then the message
	TypeEchoReply  Type = 0x06 // S→C: the echoed message
	TypeStarted    Type = 0x10 // S→C: pid (uint32), then the execution id
	TypeStdout     Type = 0x11 // S→C: seq (uint64), then bytes
	TypeStderr     Type = 0x12 // S→C: seq (uint64), then bytes
	TypeExit       Type = 0x13 // S→C: the exit record (ExitLen bytes)
	TypeError      Type = 0x7f // S→C: code byte, then a UTF-8 message
)

var typeNames = map[Type]string{
	TypeCommand: "command", TypeStdin: "stdin", TypeStdinClose: "stdin-close", TypeSignal: "signal",
	TypeEcho: "echo", TypeEchoReply: "echo-reply", TypeStarted: "started", TypeStdout: "stdout",
	TypeStderr: "stderr", TypeExit: "exit", TypeError: "error",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("unknown(0x%02x)", byte(t))
}

// Known reports whether t is a frame type of this protocol version.
func (t Type) Known() bool { _, ok := typeNames[t]; return ok }

const (
	// HeaderLen is the length prefix: 4 bytes, big-endian, unsigned — the
	// twin of Python's struct.pack('>I', n).
	HeaderLen = 4
	// DefaultMaxFrame bounds a frame's length (type byte + payload) unless a
	// Reader is given another bound: 1 MiB.
	DefaultMaxFrame = 1 << 20
)

// Codec errors. A peer that sends one of these is dropped after an error frame.
var (
	ErrFrameTooLarge = errors.New("frame too large")
	ErrEmptyFrame    = errors.New("frame of length 0 (no type byte)")
	ErrUnknownType   = errors.New("unknown frame type")
)

// Frame is one decoded frame. Payload aliases the Reader's buffer: it is
// valid until the next call of Next.
type Frame struct {
	Type    Type
	Payload []byte
}

// AppendFrame appends the encoding of one frame to dst.
func AppendFrame(dst []byte, t Type, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(1+len(payload)))
	dst = append(dst, byte(t))
	return append(dst, payload...)
}

// header is the 5 bytes before a frame's payload: the length and the type.
func header(t Type, payloadLen int) [HeaderLen + 1]byte {
	var h [HeaderLen + 1]byte
	binary.BigEndian.PutUint32(h[:], uint32(1+payloadLen))
	h[HeaderLen] = byte(t)
	return h
}

// WriteFrame writes one frame to w. The header and parts are handed to the
// kernel in one writev when w is a net.Conn, so a large payload is not copied.
func WriteFrame(w io.Writer, t Type, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if 1+n > DefaultMaxFrame {
		return fmt.Errorf("write %v: %w (%d bytes, limit %d)", t, ErrFrameTooLarge, 1+n, DefaultMaxFrame)
	}
	h := header(t, n)
	bufs := make(net.Buffers, 0, 1+len(parts))
	bufs = append(bufs, h[:])
	bufs = append(bufs, parts...)
	if _, err := bufs.WriteTo(w); err != nil {
		return fmt.Errorf("write %v frame: %w", t, err)
	}
	return nil
}

// Reader decodes frames from a stream.
type Reader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewReader returns a Reader of r that refuses frames longer than max bytes
// (type byte + payload). max <= 0 means DefaultMaxFrame.
func NewReader(r io.Reader, max int) *Reader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// Next reads one frame. The length is checked against the bound before any
// buffer is grown, so a peer cannot make the reader allocate by lying about
// it. io.EOF means the peer closed cleanly between frames.
func (r *Reader) Next() (Frame, error) {
	var h [HeaderLen]byte
	if _, err := io.ReadFull(r.r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Frame{}, fmt.Errorf("read frame header: %w", err)
		}
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(h[:])
	switch {
	case n == 0:
		return Frame{}, ErrEmptyFrame
	case uint64(n) > uint64(r.max):
		return Frame{}, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, r.max)
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n)
	}
	b := r.buf[:n]
	if _, err := io.ReadFull(r.r, b); err != nil {
		return Frame{}, fmt.Errorf("read frame body (%d bytes): %w", n, noEOF(err))
	}
	f := Frame{Type: Type(b[0]), Payload: b[1:]}
	if !f.Type.Known() {
		return f, fmt.Errorf("%w 0x%02x", ErrUnknownType, b[0])
	}
	return f, nil
}

// BufferCap is the capacity of the Reader's buffer: never more than its bound.
func (r *Reader) BufferCap() int { return cap(r.buf) }

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
