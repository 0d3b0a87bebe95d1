package bench

import (
	"context"
	"fmt"
	"time"
)

// soakGroup is the long mixed-load run (10 minutes by default): heavy, so
// it runs only with --only soak.
var soakGroup = Group{
	Name:  "soak",
	Title: "soak: mixed callers (echo, short, 8 MiB output, cancel) against one rexecd",
	Heavy: true,
	Run:   soakRows,
}

func soakRows(ctx context.Context, e *Env) ([]Row, error) {
	o := e.Cfg.Soak
	d, err := e.StartDaemon(ctx)
	if err != nil {
		return nil, err
	}
	r, err := Soak(ctx, d, o)
	if err != nil {
		return nil, err
	}
	rows := []Row{{
		Name:  fmt.Sprintf("%v, %d callers: calls, errors, child processes left", r.Elapsed.Round(time.Second), o.Callers),
		Value: fmt.Sprintf("%d calls, %d errors, %d left", r.Calls, r.Errors, r.Children),
		Goal:  "0 errors, 0 left", Met: goal(r.Errors == 0 && r.Children == 0),
	}}
	for _, kind := range []string{"echo", "short", "large", "cancel"} {
		if k := r.Kinds[kind]; k != nil {
			rows = append(rows, Row{Name: fmt.Sprintf("%s calls (%d)", kind, k.Calls), Median: k.P50, P99: k.P99})
		}
	}
	var peak int64
	for _, s := range r.Samples {
		peak = max(peak, s.RSS)
	}
	first := r.Samples[0]
	rows = append(rows,
		Row{Name: fmt.Sprintf("server RSS, highest of %d samples", len(r.Samples)),
			Value: fmt.Sprintf("%s (%s at start)", mib(peak), mib(first.RSS)),
			Goal:  "≤ 64 MiB at every sample", Met: goal(peak <= 64<<20)},
		Row{Name: "server RSS slope over the second half",
			Value: fmt.Sprintf("%+.2f MiB/min (whole run %+.2f)", r.LateRSSSlope/(1<<20), r.RSSSlope/(1<<20)),
			Goal:  "≤ +0.5 MiB/min", Met: goal(r.LateRSSSlope <= 0.5*(1<<20))},
		Row{Name: "server open fds, first and last sample",
			Value: fmt.Sprintf("%d → %d (slope %+.2f/min)", first.FDs, r.Samples[len(r.Samples)-1].FDs, r.FDSlope)},
	)
	return rows, nil
}
