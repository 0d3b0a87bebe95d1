package framelab

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText prints the report for a terminal: each way, what the receiver
// saw and why, then the table of bytes on the wire.
func (r *Report) WriteText(out io.Writer) error {
	w := &errWriter{w: out}
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	var sizes []string
	for i, n := range r.Messages {
		sizes = append(sizes, fmt.Sprintf("#%d %d B", i+1, n))
	}
	p("The framing lab: the same %d messages (%s), four ways, on 127.0.0.1.", len(r.Messages), strings.Join(sizes, ", "))

	p("\n1. TCP, unframed: the sender writes every message, then the receiver reads (64 KiB buffer).")
	readsText(p, r.Unframed.Reads)
	p("   %d messages sent, %d reads: TCP is a byte stream; the kernel keeps bytes, not writes.", len(r.Messages), len(r.Unframed.Reads))
	p("   Reads merge small messages and split big ones (\"sticky packets\"); intact: %v.", r.Unframed.Intact)
	p("   TCP_NODELAY=%v (Go's default) only makes each write leave at once instead of waiting to", r.Unframed.NoDelay)
	p("   coalesce with the next (Nagle); it does not make a write a message: the receiver's reads")
	p("   still return whatever has arrived, up to its buffer.")

	p("\n2. TCP, length-prefixed: struct.pack('>I', len) + message (rexec's raw frames add a type byte):")
	readsText(p, r.Framed.Reads)
	p("   the same kind of reads, yet decoding the prefixes gives back %d messages of %s bytes: intact: %v.",
		len(r.Framed.Received), ints(r.Framed.Received), r.Framed.Intact)

	p("\n3. UDP: one datagram per message, plus one larger than the receiver's %d-byte read buffer:", r.UDP.Buffer)
	for _, d := range r.UDP.Datagrams {
		switch {
		case d.Error != "":
			p("   sent %6d B → refused by the kernel: %s (max UDP payload over IPv4: %d)", d.Sent, d.Error, r.UDP.MaxPayload)
		case d.Truncated:
			p("   sent %6d B → read %d B, MSG_TRUNC: the other %d bytes are gone, silently for a plain read", d.Sent, d.Received, d.Sent-d.Received)
		default:
			p("   sent %6d B → read %d B: one read, one datagram, boundary kept", d.Sent, d.Received)
		}
	}
	p("   UDP keeps boundaries but not order or delivery, and caps the size: messages over it need")
	p("   their own fragmentation, which is framing again.")

	p("\n4. gRPC: one Echo call per message, the client's connection captured and decoded (HTTP/2")
	p("   frames with x/net/http2's Framer, headers with HPACK). The connection's first call:")
	for _, f := range r.GRPC.Frames {
		fl := ""
		if f.Flags != "" {
			fl = " [" + f.Flags + "]"
		}
		p("   %s %-13s stream %d, %d B%s", f.Dir, f.Type, f.Stream, f.Length, fl)
		for _, d := range f.Detail {
			p("         %s", d)
		}
	}
	p("   Inside DATA, each message has gRPC's 5-byte prefix: 1 byte compressed flag, 4 bytes")
	p("   big-endian length. Per call: %s", strings.Join(r.GRPC.Prefixes, ", "))
	p("   → the length-prefix idea again, inside HTTP/2's own 9-byte frame headers. Intact: %v.", r.GRPC.Intact)

	p("\nBytes written per message (TCP/UDP/IP headers below not counted):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	hdr := "way\t"
	for i, n := range r.Messages {
		hdr += fmt.Sprintf("#%d (%d B)\t", i+1, n)
	}
	fmt.Fprintln(tw, hdr+"overhead\tboundaries\t")
	row := func(name string, wire []int, base []int, note string) {
		line := name + "\t"
		total := 0
		for i := range r.Messages {
			if i >= len(wire) || wire[i] < 0 {
				line += "refused\t"
				continue
			}
			line += fmt.Sprintf("%d\t", wire[i])
			total += wire[i] - base[i]
		}
		fmt.Fprintln(tw, line+fmt.Sprintf("+%d B\t%s\t", total, note))
	}
	row("TCP unframed", r.Unframed.Wire, r.Messages, "lost")
	row("TCP framed", r.Framed.Wire, r.Messages, "kept")
	var udpWire []int
	for i := range r.Messages {
		udpWire = append(udpWire, -1)
		for _, d := range r.UDP.Datagrams {
			if d.Sent == r.Messages[i] && d.Error == "" {
				udpWire[i] = d.Sent
			}
		}
	}
	row("UDP", udpWire, r.Messages, "kept, ≤ 65507 B")
	row("gRPC", r.GRPC.Wire, r.Messages, "kept")
	if err := tw.Flush(); err != nil {
		return err
	}
	p("gRPC's overhead per call is its HEADERS (method, authority, content-type, te, a fresh auth token —")
	p("HPACK indexes repeats, so later calls' HEADERS are smaller), the 9-byte header of each DATA frame")
	p("(at most 16 KiB each by default) and the 5-byte message prefix; protobuf adds 2-4 bytes of tag")
	p("and length. The connection itself costs %d bytes once (preface, SETTINGS, WINDOW_UPDATE, acks).", r.GRPC.Setup)
	return w.err
}

func readsText(p func(string, ...any), reads []Read) {
	for i, rd := range reads {
		p("   read %d: %6d B  holds %-26s %s", i+1, rd.Bytes, rd.Holds, rd.Head)
	}
}

func ints(v []int) string {
	var s []string
	for _, n := range v {
		s = append(s, fmt.Sprint(n))
	}
	return strings.Join(s, ", ")
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
