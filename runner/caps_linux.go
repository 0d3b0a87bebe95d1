//go:build linux

package runner

import (
	"os"
	"strconv"
	"strings"
)

// CanSetUID reports whether this process may start commands as another
// user: it has CAP_SETUID and CAP_SETGID in its effective set (root has
// them unless a capability bounding set took them away).
func CanSetUID() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return os.Geteuid() == 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			const setgid, setuid = 1 << 6, 1 << 7
			return err == nil && caps&setgid != 0 && caps&setuid != 0
		}
	}
	return os.Geteuid() == 0
}
