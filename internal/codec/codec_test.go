package codec

import (
	"bytes"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPoolTiers(t *testing.T) {
	p := NewPool()
	for _, c := range []struct{ n, wantCap int }{
		{1, 256}, {256, 256}, {257, 4 << 10}, {16 << 10, 16 << 10},
		{128<<10 + 30, 128<<10 + 256}, {256<<10 - 10, 256 << 10}, {5 << 20, 5 << 20},
	} {
		b := p.Get(c.n)
		if len(*b) != c.n || cap(*b) != c.wantCap {
			t.Errorf("Get(%d): len %d cap %d, want len %d cap %d", c.n, len(*b), cap(*b), c.n, c.wantCap)
		}
		p.Put(b)
	}
	// A buffer of a capacity no tier has is not kept: the tier's next Get
	// must not hand out a buffer of another size.
	odd := make([]byte, 300)
	p.Put(&odd)
	if b := p.Get(200); cap(*b) != 256 {
		t.Errorf("after Put of a 300-byte buffer, Get(200) has cap %d, want 256", cap(*b))
	}
}

// TestRoundTrip: what Marshal encodes, gRPC's own encoding decodes, and the
// other way round, for messages below the pooling threshold, in each tier
// and past the largest; and Unmarshal gives the same message whether the
// bytes come in one buffer or in frames.
func TestRoundTrip(t *testing.T) {
	c := New(NewPool())
	for _, size := range []int{0, 10, 1000, 16 << 10, 128 << 10, 256<<10 - 64, 3 << 20, 6 << 20} {
		data := bytes.Repeat([]byte{byte(size), 'x', 0}, size/3+1)[:size]
		want := &rexecv1.RunResponse{Event: &rexecv1.Event{Kind: &rexecv1.Event_Stdout{Stdout: &rexecv1.Output{Seq: 7, Data: data}}}}
		bs, err := c.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		wire := bs.Materialize()
		bs.Free()
		if ref, _ := proto.Marshal(want); !bytes.Equal(wire, ref) {
			t.Fatalf("size %d: Marshal's bytes differ from proto.Marshal's", size)
		}
		for name, in := range map[string]mem.BufferSlice{"one buffer": {mem.SliceBuffer(wire)}, "frames": frames(wire, 16<<10)} {
			var got rexecv1.RunResponse
			if err := c.Unmarshal(in, &got); err != nil {
				t.Fatalf("size %d, %s: %v", size, name, err)
			}
			if !proto.Equal(&got, want) {
				t.Fatalf("size %d, %s: got another message back", size, name)
			}
		}
	}
	if _, err := c.Marshal("not a message"); err == nil {
		t.Error("Marshal of a string: no error")
	}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer{0x0a, 0x05}}, &rexecv1.RunResponse{}); err == nil {
		t.Error("Unmarshal of a truncated message: no error")
	}
}

func frames(b []byte, n int) mem.BufferSlice {
	var s mem.BufferSlice
	for len(b) > 0 {
		k := min(n, len(b))
		s = append(s, mem.SliceBuffer(b[:k]))
		b = b[k:]
	}
	return s
}

// TestRegistered: importing the package replaces gRPC's proto codec, so
// that every client and server of the process uses the pool.
func TestRegistered(t *testing.T) {
	if got := encoding.GetCodecV2(protocodec.Name); got != sharedCodec {
		t.Fatalf("gRPC's %q codec is %T, want this package's", protocodec.Name, got)
	}
}
