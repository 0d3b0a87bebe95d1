package fleet

import "io"

// Tee is an Output that gives each target's output and result to every one
// of outs (--json with --output-dir).
func Tee(outs ...Output) Output { return tee(outs) }

type tee []Output

func (t tee) Start(target *Target) (io.Writer, io.Writer, error) {
	var stdouts, stderrs []io.Writer
	for _, o := range t {
		so, se, err := o.Start(target)
		if err != nil {
			// Those started before get their Done all the same: the engine
			// calls Done for the target.
			return nil, nil, err
		}
		stdouts, stderrs = append(stdouts, so), append(stderrs, se)
	}
	return io.MultiWriter(stdouts...), io.MultiWriter(stderrs...), nil
}

func (t tee) Done(r *Result) {
	for _, o := range t {
		o.Done(r)
	}
}
