package runner

import "context"

// Observer is told of each command's start and end and of each refused
// start, for metrics and traces. It is called at those edges only, never per
// output chunk: the bytes a command wrote are in the Result at its end. Its
// methods run in the caller's or the command's goroutines and must not
// block. ctx is the context given to Start (its values: a trace span, say).
type Observer interface {
	// CommandStarted: the command runs with pid; pid 0 means it could not
	// be executed, and ends at once with 126 or 127.
	CommandStarted(ctx context.Context, spec *Spec, execID string, pid int)
	// CommandEnded is called once for every started command, as its slot
	// is freed (before its client has Exited), with how it ended.
	CommandEnded(ctx context.Context, spec *Spec, res *Result)
	// CommandRefused: Start refused the spec and started nothing; err is a
	// *FieldError, ErrTooManyCommands, the cause of a done ctx, or a start
	// failure.
	CommandRefused(ctx context.Context, spec *Spec, err error)
}

func (r *Runner) observeRefused(ctx context.Context, spec *Spec, err error) error {
	if o := r.opts.Observer; o != nil {
		o.CommandRefused(ctx, spec, err)
	}
	return err
}

func (p *Process) observeStarted(pid int) {
	if o := p.r.opts.Observer; o != nil {
		o.CommandStarted(p.ctx, &p.spec, p.id, pid)
	}
}

func (p *Process) observeEnded(res *Result) {
	if o := p.r.opts.Observer; o != nil {
		o.CommandEnded(p.ctx, &p.spec, res)
	}
}
