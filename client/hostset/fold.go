package hostset

import (
	"slices"
	"strconv"
	"strings"
)

// Fold writes names as few patterns as it can, comma-separated, the
// way clush -b heads its blocks: node01 … node05 and node07 fold to
// "node[01-05,07]"; rack1-node1 … rack2-node3 fold to "rack[1-2]-node[1-3]".
// Expand(Fold(names)) is the set of names, each once, whatever their order;
// a name in brackets (an IPv6 literal) is kept as it is.
func Fold(names []string) string {
	return strings.Join(FoldList(names), ",")
}

// FoldList is Fold's patterns, one an item, sorted.
func FoldList(names []string) []string {
	type group struct {
		texts []string // the literal text around the numeric fields
		items []item
	}
	groups := map[string]*group{}
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		if strings.ContainsAny(n, "[],") {
			out = append(out, n)
			continue
		}
		texts, fields := tokenize(n)
		key := strings.Join(texts, "\x00")
		g := groups[key]
		if g == nil {
			g = &group{texts: texts}
			groups[key] = g
		}
		it := item{sets: make([][]string, len(fields))}
		for i, f := range fields {
			it.sets[i] = []string{f}
		}
		g.items = append(g.items, it)
	}
	for _, g := range groups {
		items := g.items
		nFields := len(g.texts) - 1
		// Merge along each axis, last first, until nothing changes:
		// items equal but for one field become one with that field's union.
		for changed := true; changed && nFields > 0; {
			changed = false
			for axis := nFields - 1; axis >= 0; axis-- {
				merged := mergeAxis(items, axis)
				if len(merged) != len(items) {
					changed = true
				}
				items = merged
			}
		}
		for _, it := range items {
			var b strings.Builder
			for i, t := range g.texts {
				b.WriteString(t)
				if i < nFields {
					b.WriteString(formatSet(it.sets[i]))
				}
			}
			out = append(out, b.String())
		}
	}
	slices.SortFunc(out, Compare)
	return out
}

// item is a product of one set of digit strings per numeric field.
type item struct{ sets [][]string }

func mergeAxis(items []item, axis int) []item {
	index := map[string]int{}
	var out []item
	for _, it := range items {
		var key strings.Builder
		for i, s := range it.sets {
			if i != axis {
				key.WriteString(strings.Join(s, ","))
			}
			key.WriteByte('|')
		}
		k := key.String()
		if j, ok := index[k]; ok {
			out[j].sets[axis] = append(out[j].sets[axis], it.sets[axis]...)
			continue
		}
		index[k] = len(out)
		sets := slices.Clone(it.sets)
		sets[axis] = slices.Clone(sets[axis])
		out = append(out, item{sets: sets})
	}
	for _, it := range out {
		slices.SortFunc(it.sets[axis], compareDigits)
		it.sets[axis] = slices.Compact(it.sets[axis])
	}
	return out
}

// tokenize cuts name into literal texts and the digit runs between them:
// len(texts) == len(fields)+1.
func tokenize(name string) (texts, fields []string) {
	start := 0
	for i := 0; i < len(name); {
		if name[i] < '0' || name[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(name) && name[j] >= '0' && name[j] <= '9' {
			j++
		}
		texts = append(texts, name[start:i])
		fields = append(fields, name[i:j])
		start, i = j, j
	}
	texts = append(texts, name[start:])
	return texts, fields
}

// formatSet writes a set of digit strings as one value, or as ranges in
// brackets. A value with a leading zero keeps its width ("07"); a value
// without one joins a zero-padded range of its width ("09-10") or an
// unpadded one ("9-10").
func formatSet(set []string) string {
	if len(set) == 1 {
		return set[0]
	}
	padded := map[int]bool{}
	for _, v := range set {
		if len(v) > 1 && v[0] == '0' {
			padded[len(v)] = true
		}
	}
	classes := map[int][]int{} // width (0: unpadded) → values
	for _, v := range set {
		w := 0
		if padded[len(v)] {
			w = len(v)
		}
		n, _ := strconv.Atoi(v)
		classes[w] = append(classes[w], n)
	}
	type run struct{ lo, hi, width int }
	var runs []run
	for w, vals := range classes {
		slices.Sort(vals)
		vals = slices.Compact(vals)
		for i := 0; i < len(vals); {
			j := i
			for j+1 < len(vals) && vals[j+1] == vals[j]+1 {
				j++
			}
			runs = append(runs, run{vals[i], vals[j], w})
			i = j + 1
		}
	}
	slices.SortFunc(runs, func(a, b run) int {
		if a.lo != b.lo {
			return a.lo - b.lo
		}
		return a.width - b.width
	})
	parts := make([]string, len(runs))
	for i, r := range runs {
		parts[i] = pad(r.lo, r.width)
		if r.hi != r.lo {
			parts[i] += "-" + pad(r.hi, r.width)
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// compareDigits orders digit strings by value, then by width.
func compareDigits(a, b string) int {
	x, _ := strconv.Atoi(a)
	y, _ := strconv.Atoi(b)
	if x != y {
		return x - y
	}
	return len(a) - len(b)
}

// Compare orders names with their digit runs compared as numbers, so that
// node9 comes before node10 (for slices.SortFunc).
func Compare(a, b string) int {
	ta, fa := tokenize(a)
	tb, fb := tokenize(b)
	for i := 0; i < len(ta) && i < len(tb); i++ {
		if c := strings.Compare(ta[i], tb[i]); c != 0 {
			return c
		}
		if i < len(fa) && i < len(fb) {
			if c := compareDigits(fa[i], fb[i]); c != 0 {
				return c
			}
		}
	}
	return strings.Compare(a, b)
}
