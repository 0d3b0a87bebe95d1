package interceptors

import (
	"fmt"
	"math"
	"os/user"
	"slices"
	"strconv"
	"strings"
)

// Limits are the resource limits of a key's commands, from its key-file
// options: memory=, pids=, cpu=, nofile=, fsize=. A zero field is no limit.
// The same words set a request's limits on the CLI (rexec run --limit).
type Limits struct {
	// Memory is the cgroup memory limit, in bytes (memory.max).
	Memory int64
	// Pids bounds the command's processes and threads (pids.max).
	Pids int64
	// MilliCPU is the CPU bandwidth in thousandths of a CPU (cpu.max):
	// cpu=1.5 is 1500.
	MilliCPU int64
	// NoFile is RLIMIT_NOFILE: the open files of each process.
	NoFile int64
	// FSize is RLIMIT_FSIZE, in bytes: the largest file a process may write.
	FSize int64
}

// IsZero reports whether l limits nothing.
func (l Limits) IsZero() bool { return l == Limits{} }

// limitNames are the limit options, in the order Key.Line writes them.
var limitNames = []string{"memory", "pids", "cpu", "nofile", "fsize"}

// LimitNames lists the names SetLimit takes, for usage texts.
func LimitNames() string { return strings.Join(limitNames, ", ") }

// SetLimit parses one limit, NAME=VALUE as a key file writes it
// ("memory=512M", "cpu=1.5"), into l.
func (l *Limits) SetLimit(name, value string) error {
	if !slices.Contains(limitNames, name) {
		return fmt.Errorf("unknown limit %q (known: %s)", name, LimitNames())
	}
	if err := l.set(name, value); err != nil {
		return fmt.Errorf("%s=%q: %v: want %s", name, value, err, limitWant(name))
	}
	return nil
}

// set parses value into l's limit name; its error says only what is wrong.
func (l *Limits) set(name, value string) error {
	var err error
	switch name {
	case "memory":
		l.Memory, err = parseLimitSize(value, 1<<20)
	case "pids":
		l.Pids, err = parseCount(value, 1)
	case "cpu":
		l.MilliCPU, err = parseCPU(value)
	case "nofile":
		l.NoFile, err = parseCount(value, 1)
	case "fsize":
		l.FSize, err = parseLimitSize(value, 1)
	}
	return err
}

// Value gives l's value of the limit name back as SetLimit reads it
// ("512M", "1.5"), or "" when l does not limit it.
func (l *Limits) Value(name string) string {
	switch name {
	case "memory":
		return formatSize(l.Memory)
	case "pids":
		return formatCount(l.Pids)
	case "cpu":
		if l.MilliCPU == 0 {
			return ""
		}
		return strconv.FormatFloat(float64(l.MilliCPU)/1000, 'f', -1, 64)
	case "nofile":
		return formatCount(l.NoFile)
	case "fsize":
		return formatSize(l.FSize)
	}
	return ""
}

func limitWant(name string) string {
	switch name {
	case "memory":
		return "a size of at least 1M (" + sizeWant + ")"
	case "fsize":
		return "a size above 0 (" + sizeWant + ")"
	case "cpu":
		return "a number of CPUs above 0 with at most 3 decimals, like 0.5 or 2"
	}
	return "a whole number above 0"
}

// parseLimitSize is ParseSize for a limit: at least least bytes.
func parseLimitSize(s string, least int64) (int64, error) {
	n, err := ParseSize(s)
	if err != nil {
		return 0, err
	}
	if n < least {
		return 0, fmt.Errorf("under %s", formatSize(least))
	}
	return n, nil
}

func parseCount(s string, least int64) (int64, error) {
	if strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, fmt.Errorf("not a whole number")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > math.MaxInt32 {
		return 0, fmt.Errorf("too large")
	}
	if n < least {
		return 0, fmt.Errorf("under %d", least)
	}
	return n, nil
}

func formatCount(n int64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

// parseCPU reads a number of CPUs with at most three decimals ("1.5") as
// thousandths of a CPU; the kernel's bandwidth control takes no finer
// share of its 100 ms period than 1 ms.
func parseCPU(s string) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	digits := func(x string) bool {
		return strings.IndexFunc(x, func(r rune) bool { return r < '0' || r > '9' }) < 0
	}
	if whole == "" && frac == "" || !digits(whole) || !digits(frac) || len(frac) > 3 || strings.HasSuffix(s, ".") {
		return 0, fmt.Errorf("not a number of CPUs")
	}
	w := int64(0)
	if whole != "" {
		var err error
		if w, err = strconv.ParseInt(whole, 10, 64); err != nil || w > 1<<20 {
			return 0, fmt.Errorf("too large")
		}
	}
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt((frac + "00")[:3], 10, 64)
	}
	m := w*1000 + f
	if m == 0 {
		return 0, fmt.Errorf("0 CPUs runs nothing")
	}
	return m, nil
}

// userNameOK reports whether name may be a user= value: what useradd
// accepts (a letter or _ first, then letters, digits, _ . -, an optional
// trailing $), at most 32 bytes.
func userNameOK(name string) bool {
	if name == "" || len(name) > 32 {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '.' || r == '-'):
		case i > 0 && r == '$' && i == len(name)-1:
		default:
			return false
		}
	}
	return true
}

// UserExists reports whether the key's user= names a user of this host
// (rexecd warns about one that does not: its commands fail until it does).
func (k *Key) UserExists() bool {
	if k.User == "" {
		return true
	}
	_, err := user.Lookup(k.User)
	return err == nil
}
