package client

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestStdinReplayAdd: what the replay buffer holds is exactly the bytes
// added and not yet taken, whatever the order of adds and takes, and its
// array stays bounded by what is held (add moves the held bytes to the
// front rather than growing a new array each time it reaches the end).
func TestStdinReplayAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var (
		r    stdinReplay
		all  []byte // every byte added, in order
		held = 0    // bytes added but not taken
	)
	const window = 512 << 10
	// Bytes that differ with their offset (modulo a prime), so that a
	// shift shows.
	pattern := make([]byte, StdinChunk+251)
	for j := range pattern {
		pattern[j] = byte(rng.Uint32())
	}
	for i := range 1500 {
		if held+StdinChunk <= window || rng.IntN(2) == 0 {
			at := len(all) % 251
			b := pattern[at : at+1+rng.IntN(StdinChunk)]
			all = append(all, b...)
			r.add(b)
			held += len(b)
		}
		if held > 0 && rng.IntN(3) > 0 {
			n := 1 + rng.IntN(held)
			r.takenTo(r.taken + uint64(n))
			held -= n
		}
		if want := all[len(all)-held:]; !bytes.Equal(r.buf, want) {
			t.Fatalf("step %d: holds %d bytes (taken %d), want the last %d added of %d", i, len(r.buf), r.taken, held, len(all))
		}
		if len(r.buf) > 0 && &r.buf[len(r.buf)-1] != &r.arr[:cap(r.arr)][cap(r.arr)-cap(r.buf)+len(r.buf)-1] {
			t.Fatalf("step %d: buf is not in arr", i)
		}
	}
	// Held at most a window and a chunk beyond it: the array needs at most
	// twice that (append's growth), however much went through.
	if limit := 2 * (window + 2*StdinChunk); cap(r.arr) > limit {
		t.Errorf("array of %d bytes after %d through it, want at most %d", cap(r.arr), len(all), limit)
	}
}
