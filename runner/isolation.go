package runner

import (
	"fmt"
	"strings"
)

// setupIsolation makes the runner's cgroups as Options.Cgroups asks, and
// logs the one line that says how commands are isolated: which layout and
// limits, or, without cgroups, what is missing and what that costs.
func (r *Runner) setupIsolation() {
	log := r.opts.Logger
	if r.opts.Cgroups == CgroupsOff {
		r.iso = Isolation{Mode: "process groups", Missing: "cgroups are off"}
		return
	}
	cg, err := newCgroups(r.opts.CgroupParent, min(r.opts.MaxConcurrent, 8), log)
	if err != nil {
		r.noCgroups = err
		r.iso = Isolation{Mode: "process groups", Missing: err.Error()}
		if r.opts.Cgroups == CgroupsRequire {
			log.Error("commands cannot run in cgroups, which --cgroups require asks for: no command will run", "missing", err.Error())
			return
		}
		log.Warn("commands run without cgroups: in process groups with rlimits only; a process that leaves its group (setsid) outlives its command, and memory=, pids=, cpu= limits are refused",
			"missing", err.Error())
		return
	}
	r.cg = cg
	r.iso = cg.describe()
	attrs := []any{"mode", r.iso.Mode, "cgroup", r.iso.Dir, "limits", strings.Join(r.iso.Limits, ",")}
	if r.iso.Missing != "" {
		attrs = append(attrs, "missing", r.iso.Missing)
	}
	log.Info("commands run in cgroups of their own", attrs...)
	r.opts.Guard.killCgroup(r.iso.Dir)
}

// checkIsolation says why spec cannot run with this runner's isolation.
func (r *Runner) checkIsolation(spec *Spec) error {
	if r.cg == nil {
		if r.opts.Cgroups == CgroupsRequire {
			return fmt.Errorf("no command runs without cgroups (--cgroups require): %w", r.noCgroups)
		}
		if spec.Limits.cgroupLimits() {
			why := "cgroups are off"
			if r.noCgroups != nil {
				why = r.noCgroups.Error()
			}
			field := "limits.memory_bytes"
			switch {
			case spec.Limits.Memory != 0:
			case spec.Limits.Pids != 0:
				field = "limits.pids"
			default:
				field = "limits.milli_cpu"
			}
			return &FieldError{Field: field, Problem: "the server runs commands without cgroups, so it cannot enforce it: " + why, Precondition: true}
		}
		return nil
	}
	return r.cg.refuse(spec.Limits)
}
