package daemon

import (
	"math"
	"os"
	"runtime/debug"
	"strconv"
)

// Memory-limit defaults: a base for the server itself (its pools, the
// replay cache, the connections, the collector's headroom) and an allowance
// for each command that may run at once. Measured with --pprof (heap
// profiles at the peak of a soak of 16 mixed callers, ~10 of them streaming
// 8 MiB): 20-22 MB of live heap, ~0.9 MiB for each streaming command (its
// journal's live window of 512 KiB, a chunk being read, one being sent)
// and a few MiB for the rest. A quiet command holds no output buffer. The
// limit at the default --max-concurrent (64), 40 MiB, is about twice that
// live heap, what GOGC=100 would give it; the old default (64 MiB + 1 MiB a
// command, 128 MiB) let the soak's RSS reach 123 MiB.
const (
	memoryBase       = 24 << 20
	memoryPerCommand = 256 << 10
)

// setMemoryLimit applies --memory-limit and returns what is in force, for
// the log: the flag's value (0: none); for auto, $GOMEMLIMIT when it is set
// (the runtime has applied it already), else memoryBase and
// memoryPerCommand for each of maxConcurrent commands. Past the limit the
// garbage collector runs more often, returning pooled buffers sooner; it
// is soft: the runtime caps the collector's share of the CPU rather than
// fail.
func setMemoryLimit(flag int64, maxConcurrent int) string {
	limit := flag
	if limit < 0 {
		if v := os.Getenv("GOMEMLIMIT"); v != "" {
			return v + " ($GOMEMLIMIT)"
		}
		limit = memoryBase + int64(maxConcurrent)*memoryPerCommand
	}
	if limit == 0 {
		debug.SetMemoryLimit(math.MaxInt64)
		return "none"
	}
	debug.SetMemoryLimit(limit)
	return strconv.FormatInt(limit>>20, 10) + "MiB"
}
