package framelab

import (
	"bytes"
	"context"
	"errors"
	"net"
	"syscall"
	"time"
)

// udp sends the lines, a datagram larger than the receiver's buffer, and the
// big message, each as one datagram, and reads each with one recvmsg.
func udp(ctx context.Context, ms [][]byte, o Options) (UDPWay, error) {
	w := UDPWay{Buffer: o.UDPBuffer, MaxPayload: 65535 - 20 - 8}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp4", "127.0.0.1:0")
	if err != nil {
		return w, err
	}
	recv := pc.(*net.UDPConn)
	defer recv.Close()
	_ = recv.SetReadBuffer(1 << 20)
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp4", recv.LocalAddr().String())
	if err != nil {
		return w, err
	}
	send := c.(*net.UDPConn)
	defer send.Close()

	grams := append([][]byte{}, ms[:len(ms)-1]...)
	over := bytes.Repeat([]byte{'u'}, o.UDPTruncate) // over the receiver's buffer
	grams = append(grams, over, ms[len(ms)-1])
	buf := make([]byte, o.UDPBuffer)
	oob := make([]byte, 64)
	for _, g := range grams {
		dg := Datagram{Sent: len(g)}
		if _, err := send.Write(g); err != nil {
			// The kernel refuses a datagram over the 16-bit UDP length
			// (EMSGSIZE): it never reaches the wire.
			dg.Error = err.Error()
			if !errors.Is(err, syscall.EMSGSIZE) {
				return w, err
			}
			w.Datagrams = append(w.Datagrams, dg)
			continue
		}
		_ = recv.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, flags, _, err := recv.ReadMsgUDP(buf, oob)
		if err != nil {
			return w, err
		}
		dg.Received = n
		dg.Truncated = flags&syscall.MSG_TRUNC != 0
		w.Datagrams = append(w.Datagrams, dg)
	}
	return w, nil
}
