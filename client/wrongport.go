package client

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// WrongPortError is a call that failed because its address is rexecd's raw
// socket port, not its gRPC port. Err is the call's own error.
type WrongPortError struct {
	Addr string
	Err  error
}

func (e *WrongPortError) Error() string {
	return fmt.Sprintf("rexec: %s speaks rexec's raw protocol, not gRPC (%v)", e.Addr, e.Err)
}

func (e *WrongPortError) Unwrap() error { return e.Err }

// wrongPort returns err, or a *WrongPortError when err is how a gRPC call
// fails against a server that does not speak HTTP/2 and addr greets as
// rexec's raw listener does. Against a raw listener the call fails in one of
// a few ways, by a race: its greeting reads as an HTTP/2 frame far over the
// size limit, or as no TLS record at all; or the listener, reading the
// client's preface as a bad handshake, has closed the connection first
// (reset, EOF). Only a failed call pays for the look, one dial: it never
// adds a round trip to a call that works.
func (c *Client) wrongPort(err error) error {
	if err == nil || status.Code(err) != codes.Unavailable || errors.Is(err, ErrLostMidCommand) {
		return err
	}
	msg := status.Convert(err).Message()
	if !containsAny(msg, "frame too large", "server preface", "does not look like a TLS handshake", "connection reset by peer", "EOF") {
		return err
	}
	if greetsAsRaw(c.addr) {
		return &WrongPortError{Addr: c.addr, Err: err}
	}
	return err
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// greetsAsRaw reports whether addr sends, unasked and at once, what rexec's
// raw listener sends first: its version byte (1) and a 32-byte challenge
// (docs/PROTOCOL.md, "Handshake").
func greetsAsRaw(addr string) bool {
	const wait = 2 * time.Second
	nc, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		return false
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(wait))
	var hello [33]byte
	n, _ := io.ReadFull(nc, hello[:])
	return n == len(hello) && hello[0] == 1
}
