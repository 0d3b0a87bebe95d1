package daemon

import (
	"math"
	"os"
	"runtime/debug"
	"strconv"
)

// Memory-limit defaults: a base for the server itself (its pools, the
// replay cache, the connections) and an allowance for each command that
// may run at once (an output chunk being read, one being sent, gRPC's
// per-stream write quota). Measured: a 10-minute soak of 16 callers peaked
// at 50 MiB of RSS without a limit; 1000 `sleep 1` at 46 MiB.
const (
	memoryBase       = 64 << 20
	memoryPerCommand = 1 << 20
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
