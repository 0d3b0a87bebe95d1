package rawsock

import (
	"bytes"
	"testing"
)

// FuzzFrame: no input panics the decoder or makes it allocate past its bound,
// and decode(encode(x)) == x for every frame of a known type.
func FuzzFrame(f *testing.F) {
	for _, v := range vectors() {
		f.Add(byte(TypeStdout), []byte("hi\n"), v.got)
	}
	f.Add(byte(TypeError), []byte{}, []byte{0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add(byte(0x42), []byte("x"), []byte{0, 0, 0, 0})
	f.Add(byte(TypeEcho), bytes.Repeat([]byte("a"), 5000), []byte{0, 0, 0x10, 0x01, 0x11, 1, 2})
	const max = 4096
	f.Fuzz(func(t *testing.T, typ byte, payload, stream []byte) {
		// Arbitrary bytes: frames or an error, never a panic or a big buffer.
		rd := NewReader(bytes.NewReader(stream), max)
		for range 64 {
			fr, err := rd.Next()
			if err != nil {
				break
			}
			if len(fr.Payload)+1 > max || !fr.Type.Known() {
				t.Fatalf("frame %v of %d bytes passed the reader", fr.Type, len(fr.Payload))
			}
		}
		if rd.BufferCap() > max {
			t.Fatalf("reader buffer grew to %d, past its bound %d", rd.BufferCap(), max)
		}
		// Round trip.
		enc := AppendFrame(nil, Type(typ), payload)
		fr, err := NewReader(bytes.NewReader(enc), max).Next()
		switch {
		case 1+len(payload) > max:
			if err == nil {
				t.Fatalf("a %d-byte frame passed a %d-byte bound", 1+len(payload), max)
			}
		case !Type(typ).Known():
			if err == nil {
				t.Fatalf("unknown type 0x%02x passed", typ)
			}
		case err != nil:
			t.Fatalf("decode(encode(%v, %d bytes)): %v", Type(typ), len(payload), err)
		case fr.Type != Type(typ) || !bytes.Equal(fr.Payload, payload):
			t.Fatalf("decode(encode(x)) != x")
		}
	})
}
