package cliflag

import (
	"errors"

	"github.com/rexec/rexec/interceptors"
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
	v, err := interceptors.ParseSize(s)
	switch {
	case errors.Is(err, interceptors.ErrSizeTooLarge):
		return interceptors.ErrSizeTooLarge
	case err != nil && z.Auto:
		return errors.New(errSize.Error() + ", or auto")
	case err != nil:
		return errSize
	}
	*z.N = v
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
	if *z.N < 0 && z.Auto {
		return "auto"
	}
	return interceptors.FormatSize(*z.N)
}
