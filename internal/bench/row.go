package bench

import (
	"context"
	"io"
	"time"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// Row is one line of a group's table.
type Row struct {
	Group, Name string
	Median, P99 time.Duration // latency rows
	Value       string        // other rows: "1.21 GB/s", "20.6 MiB", "48k QPS"
	Ratio       string        // against the group's baseline
	Goal        string
	Met         int // 1 met, -1 not met, 0 no goal
	Note        string
}

// Transport is a way to run a command and stream its stdout, for the
// latency and throughput rows.
type Transport interface {
	Name() string
	// Run runs argv (or a shell line when len(argv)==1) and writes stdout to w.
	Run(ctx context.Context, argv []string, w io.Writer) (exit int, err error)
	Close() error
}

// clientTransport is a Transport over any client whose Run has the shape
// that the gRPC client and the raw socket client share.
type clientTransport struct {
	name  string
	run   func(ctx context.Context, req *rexecv1.RunRequest, stdout, stderr io.Writer) (*rexecv1.Exited, error)
	close func() error
}

func (t clientTransport) Name() string { return t.name }
func (t clientTransport) Close() error { return t.close() }
func (t clientTransport) Run(ctx context.Context, argv []string, w io.Writer) (int, error) {
	req := &rexecv1.RunRequest{Argv: argv}
	if len(argv) == 1 {
		req = &rexecv1.RunRequest{Shell: argv[0]}
	}
	ex, err := t.run(ctx, req, w, io.Discard)
	if err != nil {
		return 0, err
	}
	return client.ExitStatus(ex), nil
}

func goal(ok bool) int {
	if ok {
		return 1
	}
	return -1
}
