package runner

import (
	"fmt"
	"sync/atomic"
)

// ownerSlot is a command's place in its owner's count (Spec.OwnerMax); the
// zero value holds none.
type ownerSlot struct{ n *atomic.Int64 }

func (o ownerSlot) release() {
	if o.n != nil {
		o.n.Add(-1)
	}
}

// takeOwnerSlot counts spec's command against spec.OwnerMax, or returns
// ErrTooManyForOwner when the owner is at it.
func (r *Runner) takeOwnerSlot(spec *Spec) (ownerSlot, error) {
	if spec.OwnerMax <= 0 {
		return ownerSlot{}, nil
	}
	v, _ := r.owners.LoadOrStore(spec.Owner, new(atomic.Int64))
	n := v.(*atomic.Int64)
	if got := n.Add(1); got > int64(spec.OwnerMax) {
		n.Add(-1)
		return ownerSlot{}, fmt.Errorf("%w: key %q runs %d of its max=%d", ErrTooManyForOwner, spec.Owner, got-1, spec.OwnerMax)
	}
	return ownerSlot{n}, nil
}
