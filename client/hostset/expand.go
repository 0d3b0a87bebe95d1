// Package hostset reads and writes host sets as clush and pdsh write them:
// node[01-20,33]:50051 for node01:50051 … node20:50051 and node33:50051.
//
//	names, err := hostset.Expand("node[01-03]:50051,10.0.0.[1-2]")
//	// node01:50051 node02:50051 node03:50051 10.0.0.1 10.0.0.2
//	hostset.Fold(names) // "10.0.0.[1-2] node[01-03]:50051"
//
// A bracket holds ranges A-B (A and B of one width when A has a leading
// zero: 01-20 is zero-padded, 1-20 is not), single numbers and A-B/STEP,
// separated by commas; several brackets in one name multiply
// (rack[1-2]-node[1-3] is six names). A bracket with a ':' in it is an
// IPv6 literal ([::1]:50051), not a range.
package hostset

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxNames bounds what one Expand may produce; a pattern that would
// produce more is refused before anything is allocated.
const MaxNames = 100_000

// Split cuts a comma list of patterns at the commas outside brackets:
// "node[1,3],web1" is "node[1,3]" and "web1". Empty items are dropped.
func Split(list string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i <= len(list); i++ {
		if i < len(list) {
			switch list[i] {
			case '[':
				depth++
				continue
			case ']':
				depth--
				continue
			case ',':
				if depth > 0 {
					continue
				}
			default:
				continue
			}
		}
		if item := strings.TrimSpace(list[start:i]); item != "" {
			out = append(out, item)
		}
		start = i + 1
	}
	return out
}

// Expand returns the names of a comma list of patterns, in order, each once.
func Expand(list string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, p := range Split(list) {
		names, err := expandOne(p, MaxNames-len(out))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// piece is a run of literal text, or the values of one bracket.
type piece struct {
	text   string
	values []string // nil for literal text
}

func expandOne(pattern string, budget int) ([]string, error) {
	pieces, err := parse(pattern)
	if err != nil {
		return nil, err
	}
	total := 1
	for _, p := range pieces {
		if p.values != nil {
			total *= len(p.values)
			if total > budget {
				return nil, fmt.Errorf("%q expands to more than %d names", pattern, MaxNames)
			}
		}
	}
	out := make([]string, 0, total)
	var walk func(i int, prefix string)
	walk = func(i int, prefix string) {
		if i == len(pieces) {
			out = append(out, prefix)
			return
		}
		if pieces[i].values == nil {
			walk(i+1, prefix+pieces[i].text)
			return
		}
		for _, v := range pieces[i].values {
			walk(i+1, prefix+v)
		}
	}
	walk(0, "")
	return out, nil
}

func parse(pattern string) ([]piece, error) {
	var pieces []piece
	rest := pattern
	for rest != "" {
		open := strings.IndexByte(rest, '[')
		if open < 0 {
			if strings.IndexByte(rest, ']') >= 0 {
				return nil, fmt.Errorf("%q: ']' without '['", pattern)
			}
			pieces = append(pieces, piece{text: rest})
			break
		}
		if strings.IndexByte(rest[:open], ']') >= 0 {
			return nil, fmt.Errorf("%q: ']' without '['", pattern)
		}
		end := strings.IndexByte(rest[open:], ']')
		if end < 0 {
			return nil, fmt.Errorf("%q: '[' without ']'", pattern)
		}
		end += open
		inner := rest[open+1 : end]
		if strings.IndexByte(inner, '[') >= 0 {
			return nil, fmt.Errorf("%q: brackets do not nest", pattern)
		}
		if rest[:open] != "" {
			pieces = append(pieces, piece{text: rest[:open]})
		}
		if strings.IndexByte(inner, ':') >= 0 {
			// An IPv6 literal, kept whole with its brackets.
			pieces = append(pieces, piece{text: rest[open : end+1]})
		} else {
			values, err := parseRanges(inner)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", pattern, err)
			}
			pieces = append(pieces, piece{values: values})
		}
		rest = rest[end+1:]
	}
	return pieces, nil
}

// parseRanges expands the inside of one bracket: "01-03,7,10-20/5".
func parseRanges(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New("empty brackets")
	}
	var out []string
	for _, r := range strings.Split(s, ",") {
		spec, stepText, hasStep := strings.Cut(r, "/")
		lo, hi, isRange := strings.Cut(spec, "-")
		if !isRange {
			hi = lo
		}
		if !digits(lo) || !digits(hi) {
			return nil, fmt.Errorf("range %q: want N, A-B or A-B/STEP with decimal numbers", r)
		}
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 || !isRange {
				return nil, fmt.Errorf("range %q: a step is A-B/STEP with STEP ≥ 1", r)
			}
			step = n
		}
		width := 0
		if len(lo) > 1 && lo[0] == '0' || len(hi) > 1 && hi[0] == '0' {
			if len(lo) != len(hi) {
				return nil, fmt.Errorf("range %q: zero-padded ends must have one width (01-10, not 01-010)", r)
			}
			width = len(lo)
		}
		a, errA := strconv.Atoi(lo)
		b, errB := strconv.Atoi(hi)
		if errA != nil || errB != nil || len(lo) > 9 || len(hi) > 9 {
			return nil, fmt.Errorf("range %q: numbers of at most 9 digits", r)
		}
		if a > b {
			return nil, fmt.Errorf("range %q: %d is more than %d", r, a, b)
		}
		if n := (b-a)/step + 1; len(out)+n > MaxNames {
			return nil, fmt.Errorf("range %q: more than %d names", r, MaxNames)
		}
		for v := a; v <= b; v += step {
			out = append(out, pad(v, width))
		}
	}
	return out, nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func pad(v, width int) string {
	s := strconv.Itoa(v)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s
}
