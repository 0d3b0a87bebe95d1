package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// SlowReaderResult is what SlowReader measured.
type SlowReaderResult struct {
	Read          int64         // bytes the client read
	Elapsed       time.Duration // how long it read
	RSSStart      int64         // server RSS before the call
	RSSPeakDuring int64         // highest sampled server RSS during the call
	HWM           int64         // the server's VmHWM (peak RSS of its life) at the end
}

var slowReaderGroup = Group{
	Name:  "slow",
	Title: "server memory while a large output streams to a slow reader",
	Run:   slowRows,
}

// SlowReader streams `head -c size /dev/urandom` from d to a client that
// reads at rate bytes/s for dur, sampling the server's RSS every 50ms.
func SlowReader(ctx context.Context, d *Daemon, size, rate int64, dur time.Duration) (*SlowReaderResult, error) {
	c, err := d.Client()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	res := &SlowReaderResult{}
	if res.RSSStart, _, err = Memory(d.Pid()); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Exec().Run(ctx, &rexecv1.RunRequest{Shell: fmt.Sprintf("head -c %d /dev/urandom", size)})
	if err != nil {
		return nil, err
	}
	stopSampling := sampleRSS(d.Pid())
	start := time.Now()
	for time.Since(start) < dur {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		res.Read += int64(len(m.GetEvent().GetStdout().GetData()))
		// Pace: sleep until the bytes read so far are due at rate.
		if due := time.Duration(float64(res.Read) / float64(rate) * float64(time.Second)); due > time.Since(start) {
			time.Sleep(due - time.Since(start))
		}
	}
	res.Elapsed = time.Since(start)
	cancel()
	res.RSSPeakDuring = stopSampling()
	_, res.HWM, err = Memory(d.Pid())
	return res, err
}

func slowRows(ctx context.Context, e *Env) ([]Row, error) {
	cfg := e.Cfg
	d, err := e.StartDaemon(ctx)
	if err != nil {
		return nil, err
	}
	r, err := SlowReader(ctx, d, 1<<30, 10_000_000, cfg.SlowFor)
	if err != nil {
		return nil, err
	}
	return []Row{{Name: fmt.Sprintf("`head -c 1G /dev/urandom`, client reading 10 MB/s for %v", cfg.SlowFor),
		Value: fmt.Sprintf("%s peak RSS (%s at start)", mib(r.HWM), mib(r.RSSStart)), Goal: "≤ 32 MiB", Met: goal(r.HWM <= 32<<20)}}, nil
}
