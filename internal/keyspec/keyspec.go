// Package keyspec is where a key's options meet a request: the key's user=,
// max= and limits, and the request's own limits, which may only be lower.
// Both transports call Apply on the runner spec they built from a request:
//
//	if err := keyspec.Apply(&spec, key, req.GetLimits()); err != nil { ... }
package keyspec

import (
	"fmt"
	"math"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/runner"
)

// Apply sets spec's user, owner and limits from key (nil: a server without
// auth, which has no key options) and the request's limits req (nil: none).
// A request limit above its key's is a *runner.FieldError naming the field
// and the key's option: a request may lower a key's limit, never raise it.
func Apply(spec *runner.Spec, key *interceptors.Key, req *rexecv1.Limits) error {
	var kl interceptors.Limits
	if key != nil {
		spec.User, spec.Owner, spec.OwnerMax = key.User, key.ID, key.Max
		kl = key.Limits
	}
	fields := []struct {
		field, option string
		req           uint64
		key           int64
		out           *int64
	}{
		{"limits.memory_bytes", "memory", req.GetMemoryBytes(), kl.Memory, &spec.Limits.Memory},
		{"limits.pids", "pids", req.GetPids(), kl.Pids, &spec.Limits.Pids},
		{"limits.milli_cpu", "cpu", req.GetMilliCpu(), kl.MilliCPU, &spec.Limits.MilliCPU},
		{"limits.nofile", "nofile", req.GetNofile(), kl.NoFile, &spec.Limits.NoFile},
		{"limits.fsize_bytes", "fsize", req.GetFsizeBytes(), kl.FSize, &spec.Limits.FSize},
	}
	for _, f := range fields {
		switch {
		case f.req > math.MaxInt64:
			return &runner.FieldError{Field: f.field, Problem: fmt.Sprintf("%d is too large", f.req)}
		case f.req == 0:
			*f.out = f.key
		case f.key > 0 && int64(f.req) > f.key:
			return &runner.FieldError{Field: f.field, Problem: fmt.Sprintf("%d is over the key's limit, %s=%s: ask for at most %d, or none to get the key's", f.req, f.option, kl.Value(f.option), f.key)}
		default:
			*f.out = int64(f.req)
		}
	}
	return nil
}
