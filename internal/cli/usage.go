package cli

import (
	"fmt"
	"strconv"
	"time"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// usageLine is what `rexec run --usage` prints on stderr, as time(1) does:
//
//	rexec: usage: 1.24s user 0.03s system 2.01s wall, 212.4 MiB peak memory, 11 processes peak (cgroup)
func usageLine(e *rexecv1.Exited) string {
	u := e.GetUsage()
	if u == nil {
		return "rexec: usage: the server did not report it (an older rexecd)"
	}
	secs := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s" }
	line := fmt.Sprintf("rexec: usage: %s user %s system %s wall", secs(u.GetUserCpu().AsDuration()), secs(u.GetSystemCpu().AsDuration()),
		secs(e.GetDuration().AsDuration()))
	if m := u.GetPeakMemoryBytes(); m > 0 {
		line += ", " + mebibytes(m) + " peak memory"
	} else {
		line += ", peak memory not known"
	}
	if u.GetCgroup() {
		noun := "processes"
		if u.GetPeakProcesses() == 1 {
			noun = "process"
		}
		line += fmt.Sprintf(", %d %s peak (cgroup)", u.GetPeakProcesses(), noun)
	} else {
		line += " (rusage: its first process and those it waited for)"
	}
	return line
}

func mebibytes(n uint64) string {
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
}
