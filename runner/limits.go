package runner

import (
	"fmt"
	"strconv"
	"time"
)

// Limits are a command's resource limits. A zero field is no limit.
//
// Memory, Pids and MilliCPU are cgroup limits: the kernel holds the whole
// command to them, every process it starts included. A Runner without
// cgroups refuses them (a *FieldError with Precondition) rather than run
// the command unlimited. NoFile and FSize are rlimits of each process, set
// before the command's first instruction, with or without cgroups.
type Limits struct {
	// Memory bounds the command's memory, in bytes (memory.max; on the v1
	// hierarchy memory.limit_in_bytes), with no swap beyond it. Past it the
	// kernel's OOM killer ends the command: Result.Reason is ReasonOOM.
	Memory int64
	// Pids bounds the command's processes and threads (pids.max): past it,
	// fork and clone fail with EAGAIN inside the command.
	Pids int64
	// MilliCPU is the command's CPU bandwidth in thousandths of a CPU
	// (cpu.max; on v1 cpu.cfs_quota_us): 1500 lets it use 1.5 CPUs.
	MilliCPU int64
	// NoFile is RLIMIT_NOFILE, soft and hard: open files per process.
	NoFile int64
	// FSize is RLIMIT_FSIZE, soft and hard, in bytes: the largest file a
	// process may write (past it, the write fails and SIGXFSZ is sent).
	FSize int64
}

// IsZero reports whether l limits nothing.
func (l Limits) IsZero() bool { return l == Limits{} }

// cgroupLimits reports whether l has a limit only a cgroup enforces.
func (l Limits) cgroupLimits() bool { return l.Memory != 0 || l.Pids != 0 || l.MilliCPU != 0 }

// rlimits reports whether l has an rlimit.
func (l Limits) rlimits() bool { return l.NoFile != 0 || l.FSize != 0 }

// check says what is wrong with l, naming the field as the API does.
func (l Limits) check() error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"limits.memory_bytes", l.Memory}, {"limits.pids", l.Pids}, {"limits.milli_cpu", l.MilliCPU}, {"limits.nofile", l.NoFile}, {"limits.fsize_bytes", l.FSize}} {
		if f.v < 0 {
			return fieldErr(f.name, "negative (%d)", f.v)
		}
	}
	switch {
	case l.Memory != 0 && l.Memory < 1<<20:
		return fieldErr("limits.memory_bytes", "%d is under 1 MiB: a command needs more to start", l.Memory)
	case l.MilliCPU != 0 && l.MilliCPU < 10:
		return fieldErr("limits.milli_cpu", "%d is under 10 (1%% of a CPU: 1 ms of every 100 ms period)", l.MilliCPU)
	case l.Pids > 1<<22:
		return fieldErr("limits.pids", "%d is over the kernel's pid_max bound of %d", l.Pids, 1<<22)
	case l.NoFile > 1<<30:
		return fieldErr("limits.nofile", "%d is over the kernel's bound of %d", l.NoFile, 1<<30)
	}
	return nil
}

// Usage is what a command consumed, as the kernel counted it.
type Usage struct {
	// UserCPU and SystemCPU are the CPU time spent in user and kernel mode.
	UserCPU, SystemCPU time.Duration
	// PeakMemory is the most memory used at once, in bytes: with a cgroup,
	// the whole command's (memory.peak, or v1's max_usage_in_bytes: page
	// cache included); without, the largest resident set of one process
	// (the leader, or a descendant it waited for), as time -v reports it —
	// but only when that is above the server's own peak: Linux counts the
	// address space a command was forked from into its maxrss, so a
	// smaller figure is not the command's, and PeakMemory is then 0.
	PeakMemory int64
	// PeakProcesses is the most processes (and threads) the command had at
	// once (pids.peak), or 0 where the kernel does not count it (without a
	// cgroup, or without the pids controller).
	PeakProcesses int64
	// Cgroup: the figures are the command's cgroup's, every process it
	// started included (also those that left its process group). Otherwise
	// they are the leader's rusage, with the descendants it waited for.
	Cgroup bool
}

// OOMMessage is Exited's message for a command the OOM killer ended at a
// memory limit of limit bytes (0 when the limit is not known: the raw
// protocol's first records).
func OOMMessage(limit int64) string {
	if limit <= 0 {
		return "out of memory: the command reached its memory limit and the kernel's OOM killer ended it"
	}
	return fmt.Sprintf("out of memory: the command reached its memory limit of %s (memory=%s) and the kernel's OOM killer ended it",
		humanBytes(limit), formatSize(limit))
}

// humanBytes is n in the largest binary unit under which it is at least 1,
// with one decimal: "64.0 MiB".
func humanBytes(n int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}

// formatSize is n as a key file writes a size: 67108864 is 64M.
func formatSize(n int64) string {
	for _, u := range []struct {
		shift  uint
		suffix string
	}{{40, "T"}, {30, "G"}, {20, "M"}, {10, "K"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
