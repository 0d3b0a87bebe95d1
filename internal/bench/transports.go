package bench

import (
	"context"
	"io"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/rawsock"
)

// rawTransport runs commands over the raw socket transport, one connection
// for all of them (several commands run one after another on it).
type rawTransport struct{ c *rawsock.Client }

func (r rawTransport) Name() string { return "raw socket" }
func (r rawTransport) Close() error { return r.c.Close() }
func (r rawTransport) Run(ctx context.Context, argv []string, w io.Writer) (int, error) {
	req := &rexecv1.RunRequest{Argv: argv}
	if len(argv) == 1 {
		req = &rexecv1.RunRequest{Shell: argv[0]}
	}
	ex, err := r.c.Run(ctx, req, w, io.Discard)
	if err != nil {
		return 0, err
	}
	return client.ExitStatus(ex), nil
}

// extraTransports are the transports measured beside gRPC, on d.
func extraTransports(ctx context.Context, d *Daemon) ([]Transport, error) {
	rc, err := rawsock.Dial(ctx, d.RawAddr, d.Key)
	if err != nil {
		return nil, err
	}
	return []Transport{rawTransport{rc}}, nil
}
