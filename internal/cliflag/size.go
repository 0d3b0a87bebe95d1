package cliflag

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// Size is a pflag.Value for a byte count written as systemd and Docker
// write one, and as the key file's size options are: a decimal number with
// an optional suffix K, M, G or T (either case; powers of 1024), like 512M.
// With Auto set, the word "auto" is also taken, as -1: the default a
// program works out for itself.
type Size struct {
	N    *int64
	Auto bool
}

var errSize = errors.New("want a byte count, or a number with K, M, G or T (powers of 1024), like 512M")

// Set parses s.
func (z Size) Set(s string) error {
	if z.Auto && s == "auto" {
		*z.N = -1
		return nil
	}
	num, shift := s, 0
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'K', 'k':
			shift = 10
		case 'M', 'm':
			shift = 20
		case 'G', 'g':
			shift = 30
		case 'T', 't':
			shift = 40
		}
		if shift != 0 {
			num = s[:n-1]
		}
	}
	if num == "" || strings.Trim(num, "0123456789") != "" {
		if z.Auto {
			return errors.New(errSize.Error() + ", or auto")
		}
		return errSize
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v > math.MaxInt64>>shift {
		return errors.New("too large")
	}
	*z.N = v << shift
	return nil
}

// Type names the value in help.
func (z Size) Type() string { return "size" }

// String writes the value as Set reads it, in the largest unit that
// divides it.
func (z Size) String() string {
	if z.N == nil {
		return "0"
	}
	n := *z.N
	if n < 0 && z.Auto {
		return "auto"
	}
	for _, u := range []struct {
		shift  uint
		suffix string
	}{{40, "T"}, {30, "G"}, {20, "M"}, {10, "K"}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
