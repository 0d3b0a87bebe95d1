package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/rexec/rexec/runner"
)

// A segment file is a run of records, each an output chunk of one execution:
//
//	crc32c  uint32  of the rest of the header and the payload
//	length  uint32  of the payload
//	stream  uint8   1 stdout, 2 stderr
//	seq     uint64  the chunk's seq (one sequence for both streams, from 1)
//	offset  uint64  output bytes of the execution before this chunk
//	payload
//
// little-endian, as etcd's WAL frames its records: the checksum finds a
// record torn by a crash (the journal is cut there when it is opened again),
// and the offset lets a reader say how many bytes a gap held.
const headerSize = 4 + 4 + 1 + 8 + 8

// maxRecord bounds a payload read back from disk, so that a corrupt length
// cannot make a reader allocate without bound. The runner's chunks are far
// smaller (128 KiB by default).
const maxRecord = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks a record that does not check out: the end of what can be
// read of a segment.
var errCorrupt = errors.New("journal: corrupt record")

// header is a record's header, decoded.
type header struct {
	n      int
	stream runner.Stream
	seq    uint64
	off    int64
	crc    uint32
}

// putRecord encodes a record into dst, which has room for headerSize+len(data).
func putRecord(dst []byte, s runner.Stream, seq uint64, off int64, data []byte) int {
	binary.LittleEndian.PutUint32(dst[4:], uint32(len(data)))
	dst[8] = byte(s)
	binary.LittleEndian.PutUint64(dst[9:], seq)
	binary.LittleEndian.PutUint64(dst[17:], uint64(off))
	copy(dst[headerSize:], data)
	n := headerSize + len(data)
	binary.LittleEndian.PutUint32(dst[0:], crc32.Checksum(dst[4:n], castagnoli))
	return n
}

// putHeader encodes the header of a record whose payload is data, which
// stays where it is (a buffer the journal keeps as it came).
func putHeader(h []byte, s runner.Stream, seq uint64, off int64, data []byte) {
	binary.LittleEndian.PutUint32(h[4:], uint32(len(data)))
	h[8] = byte(s)
	binary.LittleEndian.PutUint64(h[9:], seq)
	binary.LittleEndian.PutUint64(h[17:], uint64(off))
	crc := crc32.Update(crc32.Checksum(h[4:headerSize], castagnoli), castagnoli, data)
	binary.LittleEndian.PutUint32(h[0:], crc)
}

func parseHeader(h []byte) (header, error) {
	hd := header{
		crc:    binary.LittleEndian.Uint32(h[0:]),
		n:      int(binary.LittleEndian.Uint32(h[4:])),
		stream: runner.Stream(h[8]),
		seq:    binary.LittleEndian.Uint64(h[9:]),
		off:    int64(binary.LittleEndian.Uint64(h[17:])),
	}
	if hd.n > maxRecord || (hd.stream != runner.Stdout && hd.stream != runner.Stderr) || hd.seq == 0 || hd.off < 0 {
		return hd, fmt.Errorf("%w: header seq %d, %d bytes, stream %d", errCorrupt, hd.seq, hd.n, hd.stream)
	}
	return hd, nil
}

// recordReader reads records one after the other from a segment file.
type recordReader struct {
	r   io.Reader
	hdr [headerSize]byte
	buf []byte
}

// next reads the next record; its payload is valid until the following call.
// It returns io.EOF at a clean end, and an error wrapping errCorrupt (or
// io.ErrUnexpectedEOF) for a torn or damaged record.
func (rr *recordReader) next() (header, []byte, error) {
	if _, err := io.ReadFull(rr.r, rr.hdr[:]); err != nil {
		return header{}, nil, err
	}
	hd, err := parseHeader(rr.hdr[:])
	if err != nil {
		return hd, nil, err
	}
	if cap(rr.buf) < hd.n {
		rr.buf = make([]byte, hd.n)
	}
	data := rr.buf[:hd.n]
	if _, err := io.ReadFull(rr.r, data); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return hd, nil, err
	}
	crc := crc32.Update(crc32.Checksum(rr.hdr[4:], castagnoli), castagnoli, data)
	if crc != hd.crc {
		return hd, nil, fmt.Errorf("%w: checksum of seq %d", errCorrupt, hd.seq)
	}
	return hd, data, nil
}
