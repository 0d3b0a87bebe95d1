package codec

import (
	"bytes"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
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

// TestFastPath: the bulk messages decode to what proto.Unmarshal gives,
// from one buffer or from frames of any size (a field's tag and length may
// be cut between frames), reusing the slice of the message passed again;
// other encodings of them, and other messages, take the general path and
// decode the same.
func TestFastPath(t *testing.T) {
	out := func(kind int, seq uint64, data []byte) *rexecv1.Event {
		o := &rexecv1.Output{Seq: seq, Data: data}
		if kind == 2 {
			return &rexecv1.Event{Kind: &rexecv1.Event_Stderr{Stderr: o}}
		}
		return &rexecv1.Event{Kind: &rexecv1.Event_Stdout{Stdout: o}}
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 8200) // 131200 bytes
	msgs := []proto.Message{
		&rexecv1.RunResponse{Event: out(1, 1, big)},
		&rexecv1.RunResponse{Event: out(2, 300, []byte("err\n"))},
		&rexecv1.RunResponse{Event: out(1, 0, nil)},             // neither field on the wire
		&rexecv1.SessionResponse{Event: out(1, 1<<40, big[:5])}, // a long seq varint
		&rexecv1.SessionResponse{Event: &rexecv1.Event{Kind: &rexecv1.Event_Started{Started: &rexecv1.Started{Pid: 7}}}},
		&rexecv1.SessionRequest{Msg: &rexecv1.SessionRequest_Stdin{Stdin: big}},
		&rexecv1.SessionRequest{Msg: &rexecv1.SessionRequest_Stdin{Stdin: []byte{}}},
		&rexecv1.SessionRequest{Msg: &rexecv1.SessionRequest_CloseStdin{CloseStdin: &rexecv1.CloseStdin{}}},
		&rexecv1.AttachResponse{Event: out(1, 9, big)},
		&rexecv1.AttachResponse{Event: out(2, 10, []byte("err\n")), Gap: &rexecv1.Gap{FirstSeq: 3, LastSeq: 8}}, // not the event alone
		&rexecv1.AttachResponse{Attached: &rexecv1.Attached{AckWindow: 5}},
		&rexecv1.LogsResponse{Event: out(1, 4, big[:100])},
		&rexecv1.LogsResponse{Gap: &rexecv1.Gap{FirstSeq: 1, LastSeq: 2}},
	}
	c := New(NewPool())
	for i, want := range msgs {
		wire, err := proto.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		for _, frame := range []int{1, 3, 16 << 10, len(wire) + 1} {
			got := want.ProtoReflect().New().Interface()
			for range 2 { // the second decode reuses what the first made
				if err := c.Unmarshal(frames(wire, frame), got); err != nil {
					t.Fatalf("message %d, frames of %d: %v", i, frame, err)
				}
				if !proto.Equal(got, want) {
					t.Fatalf("message %d, frames of %d: got %v", i, frame, got)
				}
			}
		}
	}
	// The slice of the message passed again is reused: no allocation.
	wire, _ := proto.Marshal(msgs[0])
	var m rexecv1.RunResponse
	if err := c.Unmarshal(frames(wire, 16<<10), &m); err != nil {
		t.Fatal(err)
	}
	first := &m.GetEvent().GetStdout().Data[0]
	if err := c.Unmarshal(frames(wire, 16<<10), &m); err != nil {
		t.Fatal(err)
	}
	if &m.GetEvent().GetStdout().Data[0] != first {
		t.Error("the second decode into the same message did not reuse its data slice")
	}
	wire, _ = proto.Marshal(msgs[8])
	var att rexecv1.AttachResponse
	if err := c.Unmarshal(frames(wire, 16<<10), &att); err != nil {
		t.Fatal(err)
	}
	firstAtt := &att.GetEvent().GetStdout().Data[0]
	if err := c.Unmarshal(frames(wire, 16<<10), &att); err != nil {
		t.Fatal(err)
	}
	if &att.GetEvent().GetStdout().Data[0] != firstAtt {
		t.Error("the second decode of an AttachResponse into the same message did not reuse its data slice")
	}
	wire, _ = proto.Marshal(msgs[5])
	var req rexecv1.SessionRequest
	if err := c.Unmarshal(frames(wire, 16<<10), &req); err != nil {
		t.Fatal(err)
	}
	firstIn := &req.GetStdin()[0]
	if err := c.Unmarshal(frames(wire, 16<<10), &req); err != nil {
		t.Fatal(err)
	}
	if &req.GetStdin()[0] != firstIn {
		t.Error("the second decode of stdin into the same message did not reuse its slice")
	}
	// Encodings the fast path does not take: a field twice, an unknown
	// field, fields out of order. proto.Unmarshal's result is the reference.
	for name, wire := range map[string][]byte{
		"output's data twice":  protowire.AppendBytes(protowire.AppendTag(mustMarshal(t, msgs[1]), 2, protowire.BytesType), []byte("x")),
		"unknown field at end": protowire.AppendVarint(protowire.AppendTag(mustMarshal(t, msgs[5]), 9, protowire.VarintType), 1),
		"data before seq": appendEvent(nil, 2, protowire.AppendVarint(protowire.AppendTag(
			protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), []byte("late")), 1, protowire.VarintType), 5)),
	} {
		var ref rexecv1.RunResponse
		var got rexecv1.RunResponse
		target, refTarget := proto.Message(&got), proto.Message(&ref)
		if name == "unknown field at end" {
			target, refTarget = &rexecv1.SessionRequest{}, &rexecv1.SessionRequest{}
		}
		refErr := proto.Unmarshal(wire, refTarget)
		err := c.Unmarshal(frames(wire, 7), target)
		if (err == nil) != (refErr == nil) || !proto.Equal(target, refTarget) {
			t.Errorf("%s: got %v (%v), want %v (%v)", name, target, err, refTarget, refErr)
		}
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// appendEvent wraps an Output's encoding as RunResponse{event{kind: output}}.
func appendEvent(b []byte, kind protowire.Number, output []byte) []byte {
	ev := protowire.AppendBytes(protowire.AppendTag(nil, kind, protowire.BytesType), output)
	return protowire.AppendBytes(protowire.AppendTag(b, 1, protowire.BytesType), ev)
}
