package codec

import (
	"slices"
	"sync"

	"google.golang.org/grpc/mem"
)

// Tiers are the capacities of Pool's buffers. A request for n bytes gets
// the smallest tier of at least n; one past the largest is allocated to
// size and not kept.
var Tiers = []int{
	256,
	4 << 10,
	16 << 10,      // one HTTP/2 frame, as gRPC reads them
	32 << 10,      // gRPC's write buffer
	128<<10 + 256, // an output chunk (runner.Options.ChunkSize) or a stdin message (client.StdinChunk) with its framing
	256 << 10,     // a file chunk with its framing (files.DefaultChunkSize)
	1 << 20,
	4<<20 + 256, // the largest message a server takes by default, with its framing
}

// Pool is a mem.BufferPool over Tiers that does not zero what it hands
// out: a buffer holds what its last user wrote until the next one
// overwrites it.
type Pool struct {
	sizes []int
	pools []sync.Pool
}

// NewPool returns a Pool with Tiers.
func NewPool() *Pool {
	return &Pool{sizes: slices.Clone(Tiers), pools: make([]sync.Pool, len(Tiers))}
}

// Get returns a buffer of length n, its contents undefined.
func (p *Pool) Get(n int) *[]byte {
	i, _ := slices.BinarySearch(p.sizes, n)
	if i == len(p.sizes) {
		b := make([]byte, n)
		return &b
	}
	if b, ok := p.pools[i].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, p.sizes[i])
	return &b
}

// Put returns a buffer that Get gave to the tier of its capacity; any other
// buffer is left to the garbage collector.
func (p *Pool) Put(b *[]byte) {
	if i, found := slices.BinarySearch(p.sizes, cap(*b)); found {
		p.pools[i].Put(b)
	}
}

var _ mem.BufferPool = (*Pool)(nil)
