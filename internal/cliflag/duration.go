package cliflag

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a pflag.Value for a time.Duration that also takes a bare
// number of seconds, as coreutils timeout does: 5 is 5s, 0.5 is 500ms.
// Negative durations are refused.
type Duration struct{ D *time.Duration }

// bareSeconds reports whether s is a plain decimal number: 5, 0.5, 90.
func bareSeconds(s string) bool {
	whole, frac, dot := strings.Cut(s, ".")
	digits := func(t string) bool { return t != "" && strings.Trim(t, "0123456789") == "" }
	return digits(whole) && (!dot || digits(frac))
}

// errDuration says what a duration flag takes.
var errDuration = errors.New("want a duration such as 30s, 1.5m or 1h30m, or a number of seconds (5 is 5s)")

// Set parses s.
func (d Duration) Set(s string) error {
	if bareSeconds(s) {
		n, err := strconv.ParseFloat(s, 64)
		if err != nil || n*float64(time.Second) > math.MaxInt64 {
			return errDuration
		}
		*d.D = time.Duration(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return errDuration
	case v < 0:
		return errors.New("want a duration of 0 or more")
	}
	*d.D = v
	return nil
}

// Type names the value in help.
func (d Duration) Type() string { return "duration" }

func (d Duration) String() string {
	if d.D == nil {
		return "0s"
	}
	return d.D.String()
}
