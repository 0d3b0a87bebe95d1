package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/rexec/rexec/runner"
)

// outputLog is one execution's output: segment files on disk, oldest first,
// and the newest records in memory as well (the tail), so that a reader
// that keeps up — the live stream — never reads back from disk what is
// still in memory. Records are encoded once, into a block, and written to
// the block's segment as they come (the page cache has them: a killed
// server loses none); a block stays in the tail while the tail still
// covers the live window without it. The Execution's mutex guards it.
type outputLog struct {
	dir        string
	segSize    int64
	liveWindow int64

	segs      []*segment
	blocks    []*block // the tail, oldest first; the last one is being filled
	tailBytes int64

	lastSeq uint64 // the newest record's seq; 0 before the first
	off     int64  // output bytes appended
	size    int64  // file bytes of the held segments, unflushed included

	evictedBytes, evictedRecords int64
	writeErr                     error // the first failed write (the journal logs it)
	lostWrites                   int64 // records (or flushes) a failed write lost on disk

	// spare is the file of the last evicted segment, kept to be written
	// over by the next one: rewriting pages the page cache holds costs a
	// copy, where a new file costs allocating them and a deleted one
	// freeing them (measured: 1 GiB through 16 MiB segments, 0.19 s
	// against 0.5 to 1.1 s). Its stale records beyond what is written are
	// never read: readers stop at a segment's last seq, a restart at the
	// first record out of sequence, and an ended execution's segment is cut
	// to its size.
	spare *os.File
}

// spareName is the name of an execution's spare segment file; a restart
// deletes it.
const spareName = "spare"

// segment is one file of records: <first seq, 20 digits>.seg.
type segment struct {
	firstSeq, lastSeq uint64
	firstOff          int64 // output bytes before its first record
	size              int64 // bytes in the file, unflushed included
	written           int64 // bytes written to the file (the offset of the next write)
	payload, records  int64
	f                 *os.File // while it is the one being appended to
}

func segName(firstSeq uint64) string { return fmt.Sprintf("%020d.seg", firstSeq) }

// block is a run of encoded records in memory: record i has seq firstSeq+i.
type block struct {
	buf      []byte
	seg      *segment
	firstSeq uint64
	pos      []recPos
	flushed  int // bytes of buf written to seg's file
	// pins counts readers holding a record of buf (a reader hands the
	// record's bytes to its stream without copying them, until its next
	// call); a block let go of while pinned is left to the garbage
	// collector instead of going back to its pool.
	pins int
	// owned is set for a block that is one large record kept in the
	// runner's own buffer, not copied: buf is then the payload alone, hdr
	// its header, and release gives the buffer back.
	owned   *[]byte
	release func(*[]byte)
	hdr     []byte
}

// ownMin is the size from which a record stays in the runner's buffer
// instead of being copied into a block: a streaming command's full chunks
// (128 KiB), not a chatty one's lines, which would each hold a buffer.
const ownMin = 32 << 10

type recPos struct {
	at     uint32 // where its header starts in buf
	n      uint32 // payload bytes
	stream runner.Stream
	off    int64
}

func (b *block) lastSeq() uint64 { return b.firstSeq + uint64(len(b.pos)) - 1 }

// payload is record i's data.
func (b *block) payload(i int) []byte {
	if b.owned != nil {
		return b.buf
	}
	p := b.pos[i]
	start := int(p.at) + headerSize
	return b.buf[start : start+int(p.n)]
}

// Block buffers come from pools by size (4 KiB to 1 MiB, doubling): a
// command that prints a line holds a small block, one that streams reuses
// the same large ones instead of making the garbage collector chase a
// gigabyte a second.
const (
	minBlock    = 4 << 10
	maxBlock    = 1 << 20
	blockShifts = 9 // minBlock << 8 == maxBlock
)

var blockPools [blockShifts]sync.Pool

func getBlockBuf(n int) []byte {
	for i := range blockShifts {
		if size := minBlock << i; n <= size {
			if b, ok := blockPools[i].Get().(*[]byte); ok {
				return (*b)[:0]
			}
			return make([]byte, 0, size)
		}
	}
	return make([]byte, 0, n)
}

func putBlockBuf(b []byte) {
	for i := range blockShifts {
		if cap(b) == minBlock<<i {
			b = b[:0]
			blockPools[i].Put(&b)
			return
		}
	}
}

func (l *outputLog) active() *segment {
	if len(l.segs) == 0 {
		return nil
	}
	return l.segs[len(l.segs)-1]
}

func (l *outputLog) cur() *block {
	if len(l.blocks) == 0 {
		return nil
	}
	return l.blocks[len(l.blocks)-1]
}

// firstSeq is the oldest record held, or 0 when none is.
func (l *outputLog) firstSeq() uint64 {
	if len(l.segs) == 0 {
		return 0
	}
	return l.segs[0].firstSeq
}

// tailFirst is the oldest seq in memory; every older one is on disk.
func (l *outputLog) tailFirst() uint64 {
	if len(l.blocks) == 0 {
		return l.lastSeq + 1
	}
	return l.blocks[0].firstSeq
}

// append adds one record and returns the file bytes it takes. seq must be
// the next one.
func (l *outputLog) append(s runner.Stream, seq uint64, data []byte) (int64, error) {
	if seq != l.lastSeq+1 {
		return 0, fmt.Errorf("journal: output seq %d after %d", seq, l.lastSeq)
	}
	need := headerSize + len(data)
	seg := l.active()
	if seg == nil || seg.size >= l.segSize {
		seg = l.rotate(seq)
	}
	b := l.cur()
	if b == nil || b.owned != nil || b.seg != seg || cap(b.buf)-len(b.buf) < need {
		size := minBlock
		if b != nil {
			l.flush(b)
			size = min(2*cap(b.buf), maxBlock)
		}
		b = &block{buf: getBlockBuf(max(size, need)), seg: seg, firstSeq: seq}
		l.blocks = append(l.blocks, b)
	}
	at := len(b.buf)
	b.buf = b.buf[:at+need]
	putRecord(b.buf[at:], s, seq, l.off, data)
	b.pos = append(b.pos, recPos{at: uint32(at), n: uint32(len(data)), stream: s, off: l.off})
	l.lastSeq = seq
	l.off += int64(len(data))
	seg.lastSeq = seq
	seg.size += int64(need)
	seg.payload += int64(len(data))
	seg.records++
	l.size += int64(need)
	l.tailBytes += int64(need)
	l.trimTail()
	return int64(need), nil
}

// appendOwned adds one record whose payload stays in buf, the runner's
// buffer, which release gives back once the tail lets go of it. seq must
// be the next one.
func (l *outputLog) appendOwned(s runner.Stream, seq uint64, buf *[]byte, n int, release func(*[]byte)) (int64, error) {
	if seq != l.lastSeq+1 {
		release(buf)
		return 0, fmt.Errorf("journal: output seq %d after %d", seq, l.lastSeq)
	}
	data := (*buf)[:n]
	need := headerSize + n
	seg := l.active()
	if seg == nil || seg.size >= l.segSize {
		seg = l.rotate(seq)
	}
	if b := l.cur(); b != nil {
		l.flush(b)
	}
	b := &block{buf: data, seg: seg, firstSeq: seq, owned: buf, release: release, hdr: make([]byte, headerSize)}
	putHeader(b.hdr, s, seq, l.off, data)
	b.pos = []recPos{{n: uint32(n), stream: s, off: l.off}}
	l.blocks = append(l.blocks, b)
	l.lastSeq = seq
	l.off += int64(n)
	seg.lastSeq = seq
	seg.size += int64(need)
	seg.payload += int64(n)
	seg.records++
	l.size += int64(need)
	l.tailBytes += int64(need)
	l.trimTail()
	return int64(need), nil
}

// rotate closes the active segment (its blocks are flushed) and starts one
// whose first record is seq.
func (l *outputLog) rotate(seq uint64) *segment {
	if old := l.active(); old != nil {
		if b := l.cur(); b != nil {
			l.flush(b)
		}
		if old.f != nil {
			_ = old.f.Truncate(old.written) // a recycled file's stale records go
			old.f.Close()
			old.f = nil
		}
	}
	s := &segment{firstSeq: seq, lastSeq: seq - 1, firstOff: l.off}
	path := filepath.Join(l.dir, segName(seq))
	if f := l.spare; f != nil {
		l.spare = nil
		if err := os.Rename(filepath.Join(l.dir, spareName), path); err == nil {
			s.f = f
		} else {
			f.Close()
		}
	}
	if s.f == nil {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			l.failed(err)
		} else {
			s.f = f
		}
	}
	l.segs = append(l.segs, s)
	return s
}

// flush writes what of b is not on disk yet.
func (l *outputLog) flush(b *block) {
	if b.owned != nil {
		l.flushOwned(b)
		return
	}
	if b.flushed == len(b.buf) {
		return
	}
	if f := b.seg.f; f != nil {
		if _, err := f.WriteAt(b.buf[b.flushed:], b.seg.written); err != nil {
			l.failed(err)
			l.lostWrites++
		}
	} else {
		l.lostWrites++
	}
	b.seg.written += int64(len(b.buf) - b.flushed)
	b.flushed = len(b.buf)
}

// flushOwned writes an owned block's record: its header, then its
// payload from the runner's buffer.
func (l *outputLog) flushOwned(b *block) {
	if b.flushed == len(b.buf) {
		return
	}
	if f := b.seg.f; f != nil {
		_, err := f.WriteAt(b.hdr, b.seg.written)
		if err == nil {
			_, err = f.WriteAt(b.buf, b.seg.written+headerSize)
		}
		if err != nil {
			l.failed(err)
			l.lostWrites++
		}
	} else {
		l.lostWrites++
	}
	b.seg.written += int64(headerSize + len(b.buf))
	b.flushed = len(b.buf)
}

func (l *outputLog) failed(err error) {
	if l.writeErr == nil {
		l.writeErr = err
	}
}

// flushTail writes what of the block being filled is not on disk yet.
func (l *outputLog) flushTail() {
	if b := l.cur(); b != nil {
		l.flush(b)
	}
}

// trimTail lets go of the oldest blocks that are on disk, while the rest
// still covers the live window before the newest record: an attached
// reader is at most the live window and one record behind (the writer
// checks the window before it appends), and one that keeps up must never
// go to disk. Nothing more is kept: the tail is where a streaming
// command's memory is (its chunks are kept in the runner's buffers), and
// the soak's heap profile had two live windows of them per stream.
func (l *outputLog) trimTail() {
	for len(l.blocks) > 1 {
		b := l.blocks[0]
		if b.flushed != len(b.buf) || l.newestOff()-l.blocks[1].pos[0].off < l.liveWindow {
			return
		}
		l.dropBlock()
	}
}

// newestOff is the output offset of the newest record in the tail.
func (l *outputLog) newestOff() int64 {
	b := l.blocks[len(l.blocks)-1]
	return b.pos[len(b.pos)-1].off
}

func (l *outputLog) dropBlock() {
	b := l.blocks[0]
	l.blocks[0] = nil
	l.blocks = l.blocks[1:]
	size := int64(len(b.buf))
	if b.owned != nil {
		size += headerSize
	}
	l.tailBytes -= size
	switch {
	case b.pins != 0:
		// A reader still hands a record of it to its stream.
	case b.owned != nil:
		b.release(b.owned)
	default:
		putBlockBuf(b.buf)
	}
	b.buf, b.owned = nil, nil
}

// evictOldest removes the oldest segment if it is not the active one and,
// unless force, holds nothing after keep. It returns the segment removed.
func (l *outputLog) evictOldest(keep uint64, force bool) (*segment, bool) {
	if len(l.segs) < 2 {
		return nil, false
	}
	s := l.segs[0]
	if !force && s.lastSeq > keep {
		return nil, false
	}
	for len(l.blocks) > 0 && l.blocks[0].seg == s {
		l.dropBlock()
	}
	l.recycle(s)
	l.segs[0] = nil
	l.segs = l.segs[1:]
	l.size -= s.size
	l.evictedBytes += s.payload
	l.evictedRecords += s.records
	return s, true
}

// recycle keeps an evicted segment's file as the spare (the oldest
// segment is closed: only the active one is open), or deletes it when there
// is one already.
func (l *outputLog) recycle(s *segment) {
	path := filepath.Join(l.dir, segName(s.firstSeq))
	if l.spare == nil {
		if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
			if err := os.Rename(path, filepath.Join(l.dir, spareName)); err == nil {
				l.spare = f
				return
			}
			f.Close()
		}
	}
	_ = os.Remove(path)
}

// memRecord finds seq in the tail.
func (l *outputLog) memRecord(seq uint64) (*block, int, bool) {
	for i := len(l.blocks) - 1; i >= 0; i-- {
		b := l.blocks[i]
		if seq >= b.firstSeq {
			if seq > b.lastSeq() {
				return nil, 0, false
			}
			return b, int(seq - b.firstSeq), true
		}
	}
	return nil, 0, false
}

// segFor is the held segment whose records include seq, or nil.
func (l *outputLog) segFor(seq uint64) *segment {
	for i := len(l.segs) - 1; i >= 0; i-- {
		if s := l.segs[i]; seq >= s.firstSeq {
			if seq > l.lastSeq {
				return nil
			}
			return s
		}
	}
	return nil
}

// close flushes and closes the active segment and lets go of the tail:
// an ended execution is read from disk.
func (l *outputLog) close() {
	l.flushTail()
	if s := l.active(); s != nil && s.f != nil {
		_ = s.f.Truncate(s.written) // a recycled file's stale records go
		s.f.Close()
		s.f = nil
	}
	if l.spare != nil {
		l.spare.Close()
		l.spare = nil
		_ = os.Remove(filepath.Join(l.dir, spareName))
	}
	for len(l.blocks) > 0 {
		l.dropBlock()
	}
}
