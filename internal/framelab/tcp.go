package framelab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// tcpPair connects a sender to a receiver on loopback. The receiver's
// buffer is made large enough to hold every message, so that the sender can
// write them all before the receiver reads one: what the reads then return
// is the kernel's doing, not a race's.
func tcpPair(ctx context.Context) (send, recv *net.TCPConn, err error) {
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer lis.Close()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", lis.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	s, err := lis.Accept()
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	send, recv = c.(*net.TCPConn), s.(*net.TCPConn)
	_ = recv.SetReadBuffer(4 << 20)
	_ = send.SetWriteBuffer(4 << 20)
	deadline := time.Now().Add(10 * time.Second)
	_ = send.SetDeadline(deadline)
	_ = recv.SetDeadline(deadline)
	return send, recv, nil
}

// readAll reads until EOF with a 64 KiB buffer, recording each read.
func readAll(r io.Reader, sizes []int) ([]Read, []byte, error) {
	var reads []Read
	var all []byte
	buf := make([]byte, 64<<10)
	for range 10000 { // bounded: far more reads than a few hundred KiB need
		n, err := r.Read(buf)
		if n > 0 {
			reads = append(reads, Read{Bytes: n, Holds: holds(sizes, len(all), len(all)+n), Head: head(buf[:n])})
			all = append(all, buf[:n]...)
		}
		if err == io.EOF {
			return reads, all, nil
		}
		if err != nil {
			return reads, all, err
		}
	}
	return reads, all, fmt.Errorf("more than 10000 reads")
}

// sendThenRead writes every message (each with prefix's framing), closes
// the sending side, and only then lets the receiver read.
func sendThenRead(ctx context.Context, ms [][]byte, frame func([]byte) []byte) (TCPWay, []byte, error) {
	var w TCPWay
	send, recv, err := tcpPair(ctx)
	if err != nil {
		return w, nil, err
	}
	defer recv.Close()
	w.NoDelay = true // Go's default for TCP; set again to say so
	_ = send.SetNoDelay(true)
	var sizes []int
	for _, m := range ms {
		b := frame(m)
		w.Wire = append(w.Wire, len(b))
		sizes = append(sizes, len(b))
		if _, err := send.Write(b); err != nil {
			send.Close()
			return w, nil, err
		}
	}
	if err := send.Close(); err != nil {
		return w, nil, err
	}
	reads, all, err := readAll(recv, sizes)
	w.Reads = reads
	return w, all, err
}

func tcpUnframed(ctx context.Context, ms [][]byte) (TCPWay, error) {
	w, all, err := sendThenRead(ctx, ms, func(m []byte) []byte { return m })
	if err != nil {
		return w, err
	}
	// With no framing, a receiver's best guess of a message is one read.
	for _, r := range w.Reads {
		w.Received = append(w.Received, r.Bytes)
	}
	w.Intact = len(w.Received) == len(ms)
	for i := 0; w.Intact && i < len(ms); i++ {
		w.Intact = w.Received[i] == len(ms[i])
	}
	_ = all
	return w, nil
}

// prefixed is the classic fix: struct.pack('>I', len(m)) + m.
func prefixed(m []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(m))), m...)
}

func tcpFramed(ctx context.Context, ms [][]byte) (TCPWay, error) {
	w, all, err := sendThenRead(ctx, ms, prefixed)
	if err != nil {
		return w, err
	}
	// Decode the same bytes the reads returned: the prefix restores each
	// boundary, however the reads cut the stream.
	r := bufio.NewReader(bytes.NewReader(all))
	w.Intact = true
	for i := 0; ; i++ {
		var h [4]byte
		if _, err := io.ReadFull(r, h[:]); err == io.EOF {
			break
		} else if err != nil {
			return w, err
		}
		n := binary.BigEndian.Uint32(h[:])
		if n > MaxBig { // the size check comes before the allocation
			return w, fmt.Errorf("frame of %d bytes", n)
		}
		m := make([]byte, n)
		if _, err := io.ReadFull(r, m); err != nil {
			return w, err
		}
		w.Received = append(w.Received, len(m))
		w.Intact = w.Intact && i < len(ms) && bytes.Equal(m, ms[i])
	}
	w.Intact = w.Intact && len(w.Received) == len(ms)
	return w, nil
}
