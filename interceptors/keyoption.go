package interceptors

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
)

// keyOption is one NAME=VALUE option a key-file line may carry after its
// scopes. A new option is a new entry in keyOptions: its parser fills a
// typed field of Key, and format gives the value back for Key.Line.
type keyOption struct {
	name string
	// want says what a good value looks like, for the error message.
	want string
	// set parses value into k, or says what is wrong with it. It is called
	// at most once per line, with a non-empty value.
	set func(k *Key, value string) error
	// format returns k's value, or "" when k does not have the option.
	format func(k *Key) string
}

// keyOptions are the options the server knows, in the order Key.Line
// writes them. An option not here is an error naming the line, never
// ignored: a key file written for a newer rexecd (say, with a root= that
// confines a key) must not be read as granting more than it says.
var keyOptions = []keyOption{
	{
		name: "cert",
		want: "the identity of a client certificate: its subject common name, or one of its DNS or URI SANs",
		set: func(k *Key, v string) error {
			if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				return fmt.Errorf("has a control character")
			}
			k.Cert = v
			return nil
		},
		format: func(k *Key) string { return k.Cert },
	},
	{
		name: "root",
		want: "an absolute directory path, like /srv/drop",
		set: func(k *Key, v string) error {
			if !filepath.IsAbs(v) {
				return fmt.Errorf("is not absolute")
			}
			if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				return fmt.Errorf("has a control character")
			}
			k.Root = filepath.Clean(v)
			return nil
		},
		format: func(k *Key) string { return k.Root },
	},
	{
		name: "quota",
		want: "a size above 0 (" + sizeWant + "), with root=",
		set: func(k *Key, v string) error {
			n, err := ParseSize(v)
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("a quota of 0 refuses every upload")
			}
			k.Quota = n
			return nil
		},
		format: func(k *Key) string { return formatSize(k.Quota) },
	},
	{
		name: "user",
		want: "the name of a unix user of the server, like alice",
		set: func(k *Key, v string) error {
			if !userNameOK(v) {
				return fmt.Errorf("is not a user name")
			}
			k.User = v
			return nil
		},
		format: func(k *Key) string { return k.User },
	},
	limitOption("memory"),
	limitOption("pids"),
	limitOption("cpu"),
	limitOption("nofile"),
	limitOption("fsize"),
	{
		name: "max",
		want: "a whole number of commands above 0",
		set: func(k *Key, v string) error {
			n, err := parseCount(v, 1)
			k.Max = int(n)
			return err
		},
		format: func(k *Key) string { return formatCount(int64(k.Max)) },
	},
}

// limitOption is the key option of one of Limits' fields.
func limitOption(name string) keyOption {
	return keyOption{
		name:   name,
		want:   limitWant(name),
		set:    func(k *Key, v string) error { return k.Limits.set(name, v) },
		format: func(k *Key) string { return k.Limits.Value(name) },
	}
}

// checkOptions says what is wrong with a key's options taken together,
// once they are all parsed.
func checkOptions(k *Key) error {
	if k.Quota > 0 && k.Root == "" {
		return fmt.Errorf("quota= needs root=: a quota counts the bytes under the key's root")
	}
	return nil
}

// knownOptionNames lists keyOptions' names for error messages.
func knownOptionNames() string {
	names := make([]string, len(keyOptions))
	for i, o := range keyOptions {
		names[i] = o.name
	}
	return strings.Join(names, ", ")
}

func findOption(name string) *keyOption {
	for i := range keyOptions {
		if keyOptions[i].name == name {
			return &keyOptions[i]
		}
	}
	return nil
}

// parseOptions applies the NAME=VALUE fields of one key line to k. The
// errors name the option; the caller adds the line.
func parseOptions(k *Key, fields []string) error {
	seen := make(map[string]bool, len(fields))
	for _, f := range fields {
		name, value, ok := strings.Cut(f, "=")
		switch {
		case !ok:
			return fmt.Errorf("%q after the options: want NAME=VALUE (scopes are one comma-separated list, before the options)", f)
		case name == "":
			return fmt.Errorf("option %q has no name", f)
		}
		o := findOption(name)
		if o == nil {
			return fmt.Errorf("unknown option %q (known: %s)", name, knownOptionNames())
		}
		if seen[name] {
			return fmt.Errorf("option %q given twice", name)
		}
		seen[name] = true
		if value == "" {
			return fmt.Errorf("option %s= is empty: want %s", name, o.want)
		}
		if err := o.set(k, value); err != nil {
			return fmt.Errorf("option %s=%q: %v: want %s", name, value, err, o.want)
		}
	}
	return checkOptions(k)
}

// formatOptions is the NAME=VALUE fields of k's options, in table order.
func formatOptions(k *Key) []string {
	var out []string
	for _, o := range keyOptions {
		if v := o.format(k); v != "" {
			out = append(out, o.name+"="+v)
		}
	}
	return out
}

// sizeWant is what ParseSize accepts, for the options that take a size.
const sizeWant = "a byte count, or a number with K, M, G or T (powers of 1024), like 512M or 10G"

// ErrNotSize and ErrSizeTooLarge are ParseSize's errors (wrapped).
var (
	ErrNotSize      = errors.New("not a size")
	ErrSizeTooLarge = errors.New("too large")
)

// ParseSize reads a size as systemd and Docker write one: a decimal count
// of bytes with an optional suffix K, M, G or T (either case; powers of
// 1024). The key file's size options (quota=, memory=, fsize=) and the
// daemon's size flags take it.
func ParseSize(s string) (int64, error) {
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
	if num == "" || strings.IndexFunc(num, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, fmt.Errorf("%q is %w", s, ErrNotSize)
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q is %w", s, ErrSizeTooLarge)
	}
	return v << shift, nil
}

// FormatSize writes n as ParseSize reads it, in the largest unit that
// divides it: 10737418240 is 10G, 0 is "0".
func FormatSize(n int64) string {
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

// formatSize is FormatSize for a key line: 0 is "" (no value).
func formatSize(n int64) string {
	if n == 0 {
		return ""
	}
	return FormatSize(n)
}
