package codec

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Codec is gRPC's "proto" codec with its buffers from a Pool. Importing
// this package registers one in the place of gRPC's; ServerOptions and
// DialOptions give the transports the same pool for the frames they read.
type Codec struct {
	pool *Pool
}

// New returns a Codec whose buffers come from pool.
func New(pool *Pool) *Codec { return &Codec{pool: pool} }

// Name is the codec's name on the wire (content-type application/grpc+proto):
// it is gRPC's default codec, encoded the same way.
func (c *Codec) Name() string { return protocodec.Name }

// Marshal encodes v into one pooled buffer of its exact size.
func (c *Codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("codec: %T is not a proto.Message", v)
	}
	size := proto.Size(m)
	// UseCachedSize: the Size just computed; nothing changes m meanwhile.
	opts := proto.MarshalOptions{UseCachedSize: true}
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	buf := c.pool.Get(size)
	b, err := opts.MarshalAppend((*buf)[:0], m)
	if err != nil {
		c.pool.Put(buf)
		return nil, err
	}
	*buf = b
	return mem.BufferSlice{mem.NewBuffer(buf, c.pool)}, nil
}

// Unmarshal decodes data into v. Output events and stdin are copied once,
// from the frames into the message (fast.go); another message that arrived
// in one buffer is decoded where it lies, and one spread over several (a
// message larger than an HTTP/2 frame) is first gathered into one pooled
// buffer.
func (c *Codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("codec: %T is not a proto.Message", v)
	}
	if fastUnmarshal(data, v) {
		return nil
	}
	if len(data) == 1 {
		return proto.Unmarshal(data[0].ReadOnlyData(), m)
	}
	buf := data.MaterializeToBuffer(c.pool)
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

var _ encoding.CodecV2 = (*Codec)(nil)

// shared is the one pool and codec of this process: buffers freed by the
// server's calls serve the next client's, and the other way round.
var (
	sharedPool  = NewPool()
	sharedCodec = New(sharedPool)
)

// init puts the Codec in the place of gRPC's own "proto" codec (registered
// by the package imported above, whose init runs first): every client and
// server of this process then uses it, with the content-type unchanged
// (application/grpc), which a codec forced per call would have made
// application/grpc+proto.
func init() { encoding.RegisterCodecV2(sharedCodec) }

// ServerOptions make a server's transport read frames into the Pool.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{experimental.BufferPool(sharedPool)}
}

// DialOptions make a client's transport read frames into the Pool.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{experimental.WithBufferPool(sharedPool)}
}
