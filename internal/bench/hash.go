package bench

import (
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"io"
	"os"
	"sync"
)

// asyncHasher hashes what is written to it on its own goroutine, so that a
// receiver that writes into it is not slowed by hashing in line: every
// throughput row pays the same, overlapped, hashing cost.
type asyncHasher struct {
	ch   chan []byte
	free chan []byte
	h    hash.Hash
	n    int64
	wg   sync.WaitGroup
}

func newAsyncHasher() *asyncHasher {
	a := &asyncHasher{ch: make(chan []byte, 8), free: make(chan []byte, 10), h: sha256.New()}
	for range 10 {
		a.free <- make([]byte, 0, 256<<10)
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for b := range a.ch {
			a.h.Write(b)
			a.free <- b[:0]
		}
	}()
	return a
}

func (a *asyncHasher) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		b := <-a.free
		k := min(len(p), cap(b))
		b = append(b, p[:k]...)
		a.n += int64(k)
		a.ch <- b
		p = p[k:]
	}
	return n, nil
}

// Sum closes the hasher and returns the digest and the byte count.
func (a *asyncHasher) Sum() ([]byte, int64) {
	close(a.ch)
	a.wg.Wait()
	return a.h.Sum(nil), a.n
}

// RandomFile writes size random bytes to path (reusing it when it already
// has that size) and returns its sha256.
func RandomFile(path string, size int64) ([]byte, error) {
	if fi, err := os.Stat(path); err != nil || fi.Size() != size {
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		if _, err := io.CopyN(f, rand.Reader, size); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
