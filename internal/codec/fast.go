package codec

import (
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// The bulk of what rexec moves is output events (RunResponse,
// SessionResponse, and AttachResponse and LogsResponse with a journal,
// carrying Event.stdout or Event.stderr) and stdin (SessionRequest.stdin). A message of 128 KiB arrives in nine HTTP/2
// frames: the general path gathers them into one buffer and proto.Unmarshal
// then copies the bytes field out of it into a new slice. For these
// messages, in the encoding every protobuf encoder writes for them, the
// fast path copies the bytes once, from the frames into the message's own
// slice, reusing its capacity when the caller passes the same message
// again (a receive loop with RecvMsg). Anything else — another message or
// field, a field twice, unknown fields — takes the general path.

// head is how much of a message the fast path parses: its tags and lengths.
const head = 32

// fastUnmarshal decodes data into v when v is one of the bulk messages and
// data has their plain encoding, and reports whether it did. It changes v
// only when it returns true.
func fastUnmarshal(data mem.BufferSlice, v any) bool {
	total := data.Len()
	var hb [head]byte
	h := hb[:gather(data, hb[:])]
	switch m := v.(type) {
	case *rexecv1.SessionRequest:
		// stdin = 2 (bytes), alone.
		n, off, ok := field(h, 2, total)
		if !ok {
			return false
		}
		var buf []byte
		if s, ok := m.GetMsg().(*rexecv1.SessionRequest_Stdin); ok {
			buf = s.Stdin
		}
		m.Reset()
		m.Msg = &rexecv1.SessionRequest_Stdin{Stdin: copyRange(data, off, n, buf)}
		return true
	case *rexecv1.RunResponse:
		return fastEvent(data, h, total, 1, m.GetEvent(), func(ev *rexecv1.Event) { m.Reset(); m.Event = ev })
	case *rexecv1.SessionResponse:
		return fastEvent(data, h, total, 1, m.GetEvent(), func(ev *rexecv1.Event) { m.Reset(); m.Event = ev })
	case *rexecv1.AttachResponse:
		return fastEvent(data, h, total, 2, m.GetEvent(), func(ev *rexecv1.Event) { m.Reset(); m.Event = ev })
	case *rexecv1.LogsResponse:
		return fastEvent(data, h, total, 2, m.GetEvent(), func(ev *rexecv1.Event) { m.Reset(); m.Event = ev })
	}
	return false
}

// fastEvent decodes `event = evField { stdout = 2 | stderr = 3 { seq = 1, data = 2 } }`
// and hands the Event to set; old is the message's Event before, whose
// Output's data slice is reused.
func fastEvent(data mem.BufferSlice, h []byte, total int, evField protowire.Number, old *rexecv1.Event, set func(*rexecv1.Event)) bool {
	evLen, evOff, ok := field(h, evField, total)
	if !ok || evOff >= len(h) {
		return false
	}
	num, typ, tn := protowire.ConsumeTag(h[evOff:])
	if tn < 0 || typ != protowire.BytesType || (num != 2 && num != 3) {
		return false
	}
	outLen, vn := protowire.ConsumeVarint(h[evOff+tn:])
	outOff := evOff + tn + vn
	if vn < 0 || outOff+int(outLen) != evOff+evLen {
		return false
	}
	// Output: seq = 1 (varint, left out when 0), data = 2 (bytes, left out
	// when empty), in this order, nothing else.
	end := outOff + int(outLen)
	p := outOff
	var seq uint64
	if p < end {
		if p >= len(h) {
			return false
		}
		n, t, k := protowire.ConsumeTag(h[p:])
		if k > 0 && n == 1 && t == protowire.VarintType {
			v, vk := protowire.ConsumeVarint(h[p+k:])
			if vk < 0 {
				return false
			}
			seq, p = v, p+k+vk
		}
	}
	dataOff, dataLen := p, 0
	if p < end {
		if p >= len(h) {
			return false
		}
		n, t, k := protowire.ConsumeTag(h[p:])
		if k < 0 || n != 2 || t != protowire.BytesType {
			return false
		}
		l, lk := protowire.ConsumeVarint(h[p+k:])
		if lk < 0 || p+k+lk+int(l) != end {
			return false
		}
		dataOff, dataLen = p+k+lk, int(l)
	}
	var buf []byte
	out := new(rexecv1.Output)
	if o := old.GetStdout(); o != nil {
		buf = o.Data
	} else if o := old.GetStderr(); o != nil {
		buf = o.Data
	}
	out.Seq = seq
	if dataLen > 0 {
		out.Data = copyRange(data, dataOff, dataLen, buf)
	}
	ev := &rexecv1.Event{}
	if num == 2 {
		ev.Kind = &rexecv1.Event_Stdout{Stdout: out}
	} else {
		ev.Kind = &rexecv1.Event_Stderr{Stderr: out}
	}
	set(ev)
	return true
}

// field parses h as the start of a message of total bytes that is one
// length-delimited field num and nothing else; it returns the field's
// length and where its bytes start.
func field(h []byte, num protowire.Number, total int) (n, off int, ok bool) {
	got, typ, tn := protowire.ConsumeTag(h)
	if tn < 0 || got != num || typ != protowire.BytesType {
		return 0, 0, false
	}
	l, ln := protowire.ConsumeVarint(h[tn:])
	if ln < 0 || tn+ln+int(l) != total {
		return 0, 0, false
	}
	return int(l), tn + ln, true
}

// gather copies the first len(dst) bytes of data (fewer if it is shorter)
// into dst and returns how many it copied.
func gather(data mem.BufferSlice, dst []byte) int {
	n := 0
	for _, b := range data {
		n += copy(dst[n:], b.ReadOnlyData())
		if n == len(dst) {
			break
		}
	}
	return n
}

// copyRange returns data's bytes [off, off+n) in buf's array when it has
// room, else in a new slice.
func copyRange(data mem.BufferSlice, off, n int, buf []byte) []byte {
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	w := 0
	for _, b := range data {
		d := b.ReadOnlyData()
		if off >= len(d) {
			off -= len(d)
			continue
		}
		w += copy(buf[w:], d[off:])
		off = 0
		if w == n {
			break
		}
	}
	return buf
}
