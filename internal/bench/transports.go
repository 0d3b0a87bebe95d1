package bench

import (
	"context"

	"github.com/rexec/rexec/rawsock"
)

// extraTransports are the transports measured beside gRPC, on d: the raw
// socket, one connection for all of its commands (several run one after
// another on it).
func extraTransports(ctx context.Context, d *Daemon) ([]Transport, error) {
	rc, err := rawsock.Dial(ctx, d.RawAddr, d.Key)
	if err != nil {
		return nil, err
	}
	return []Transport{clientTransport{"raw socket", rc.Run, rc.Close}}, nil
}
