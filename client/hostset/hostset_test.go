package hostset

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestExpand(t *testing.T) {
	cases := []struct {
		in   string
		want string // space-separated
	}{
		{"node01:50051", "node01:50051"},
		{"node[01-03,07]:50051", "node01:50051 node02:50051 node03:50051 node07:50051"},
		{"10.0.0.[1-3]", "10.0.0.1 10.0.0.2 10.0.0.3"},
		{"node[8-11]", "node8 node9 node10 node11"},
		{"node[08-11]", "node08 node09 node10 node11"},
		{"rack[1-2]-n[1-2]", "rack1-n1 rack1-n2 rack2-n1 rack2-n2"},
		{"n[0-10/5]", "n0 n5 n10"},
		{"[::1]:50051", "[::1]:50051"},
		{"[::1]:[50051-50052]", "[::1]:50051 [::1]:50052"},
		{"a,b,a", "a b"},
		{"web[1,3],db1", "web1 web3 db1"},
		{" a , ,b ", "a b"},
		{"host[007]", "host007"},
	}
	for _, c := range cases {
		got, err := Expand(c.in)
		if err != nil {
			t.Errorf("Expand(%q): %v", c.in, err)
			continue
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("Expand(%q) = %q, want %q", c.in, strings.Join(got, " "), c.want)
		}
	}
}

func TestExpandRefuses(t *testing.T) {
	for in, want := range map[string]string{
		"node[1-":          "without ']'",
		"node1]":           "without '['",
		"node[]":           "empty brackets",
		"node[a-b]":        "decimal numbers",
		"node[3-1]":        "more than",
		"node[01-010]":     "one width",
		"node[1-9/0]":      "STEP",
		"node[5/2]":        "STEP",
		"node[[1]]":        "nest",
		"n[0-999999]":      "more than 100000",
		"a[1-400]b[1-400]": "more than 100000",
		"n[1234567890]":    "9 digits",
	} {
		_, err := Expand(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Expand(%q): %v, want an error saying %q", in, err, want)
		}
	}
}

func TestFold(t *testing.T) {
	cases := []struct {
		in   string // space-separated names
		want string
	}{
		{"node01 node02 node03 node04 node05 node07", "node[01-05,07]"},
		{"node07 node01 node03 node02 node05 node04", "node[01-05,07]"},
		{"node9 node10 node11", "node[9-11]"},
		{"node09 node10 node11", "node[09-11]"},
		{"node1", "node1"},
		{"node1 node1", "node1"},
		{"rack1-n1 rack1-n2 rack2-n1 rack2-n2", "rack[1-2]-n[1-2]"},
		{"node01:50051 node02:50051", "node[01-02]:50051"},
		{"127.0.0.1:40001 127.0.0.1:40002 127.0.0.1:40003", "127.0.0.1:[40001-40003]"},
		{"10.0.0.1 10.0.0.2 10.0.1.1", "10.0.0.[1-2],10.0.1.1"},
		{"web2 db1 web1", "db1,web[1-2]"},
		{"[::1]:50051 a1 a2", "[::1]:50051,a[1-2]"},
		{"bar0 bar01 bar002", "bar[0,01,002]"},
		{"x", "x"},
		{"", ""},
	}
	for _, c := range cases {
		got := Fold(strings.Fields(c.in))
		if got != c.want {
			t.Errorf("Fold(%s) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestFoldRoundTrip: for random sets of names, Expand(Fold(names)) is the
// same set.
func TestFoldRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	prefixes := []string{"node", "web", "rack", "10.0.", "db-", ""}
	for round := range 500 {
		var names []string
		for range r.IntN(60) + 1 {
			p := prefixes[r.IntN(len(prefixes))]
			n := r.IntN(130)
			var name string
			switch r.IntN(4) {
			case 0:
				name = fmt.Sprintf("%s%d", p, n)
			case 1:
				name = fmt.Sprintf("%s%03d", p, n)
			case 2:
				name = fmt.Sprintf("%s%d-n%02d:%d", p, r.IntN(3), n, 50051+r.IntN(2))
			default:
				name = fmt.Sprintf("%s%d.%d", p, r.IntN(3), n)
			}
			names = append(names, name)
		}
		folded := Fold(names)
		back, err := Expand(folded)
		if err != nil {
			t.Fatalf("round %d: Expand(Fold) = %v for %q", round, err, folded)
		}
		want := slices.Clone(names)
		slices.Sort(want)
		want = slices.Compact(want)
		slices.Sort(back)
		if !slices.Equal(back, want) {
			t.Fatalf("round %d: names %v fold to %q, which expands to %v", round, want, folded, back)
		}
	}
}

func BenchmarkFold1000(b *testing.B) {
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("127.0.0.1:%d", 40000+i*3%2000)
	}
	for range b.N {
		Fold(names)
	}
}
