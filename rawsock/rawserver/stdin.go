package rawserver

import (
	"errors"
	"io"
	"os"
	"time"
)

// stdinCheckEvery is how often a blocked stdin write looks whether the
// client is still there.
const stdinCheckEvery = 250 * time.Millisecond

// deliver writes a stdin frame's bytes to the running command. The write
// blocks while the command does not read: that is the protocol's
// back-pressure, the client's next frames wait in the socket. But while it
// waits the connection is not read, and a client that closes it would go
// unseen, its command living on. So the write is made in slices of
// stdinCheckEvery, and between them the socket is asked whether the client
// has gone (its FIN or reset has arrived; see peerGone); if so delivery ends
// with errClientGone, which closes the connection and kills the command.
//
// A write that fails because the command closed its stdin or ended drops
// the rest, as a pipe whose reader went away does.
func (c *conn) deliver(w io.Writer, b []byte) error {
	d, ok := w.(interface{ SetWriteDeadline(time.Time) error })
	if !ok || d.SetWriteDeadline(time.Now().Add(stdinCheckEvery)) != nil {
		_, _ = w.Write(b)
		return nil
	}
	defer d.SetWriteDeadline(time.Time{})
	for len(b) > 0 {
		n, err := w.Write(b)
		b = b[n:]
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			if peerGone(c.nc) {
				return errClientGone
			}
			_ = d.SetWriteDeadline(time.Now().Add(stdinCheckEvery))
		default:
			return nil
		}
	}
	return nil
}
