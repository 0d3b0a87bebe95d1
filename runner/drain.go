package runner

import (
	"context"
	"time"
)

// Drain is the shutdown sequence every transport shares, so that gRPC and
// the raw socket stop alike. It waits up to grace for done (every call has
// ended). Then it cancels the running commands with cancel(ErrShutdown), and
// waits for done the runner's KillGrace and DrainGrace (and 2s) more: what a
// killed command needs to end and report it. Then, if calls are left (a
// client that does not read its stream), it waits until every command has
// ended and written its audit line, which does not depend on any client, and
// calls force, which closes whatever is left.
func (r *Runner) Drain(grace time.Duration, done <-chan struct{}, cancel context.CancelCauseFunc, force func()) {
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	cancel(ErrShutdown)
	t.Reset(r.opts.KillGrace + r.opts.DrainGrace + 2*time.Second)
	select {
	case <-done:
	case <-t.C:
		r.waitIdle(r.opts.KillGrace + r.opts.DrainGrace)
		force()
	}
}
