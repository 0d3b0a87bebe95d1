package bench

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteReportReplacesOnlyTheGroupsThatRan writes a report with two
// groups and notes, then a run of one group: the other group's table and
// the notes stay byte for byte, and a group that failed keeps its old table.
func TestWriteReportReplacesOnlyTheGroupsThatRan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	first := []GroupResult{
		{Group: latencyGroup, Rows: []Row{{Name: "old latency row", Value: "1"}}},
		{Group: echoGroup, Rows: []Row{{Name: "old echo row", Value: "2"}}},
	}
	if err := WriteReport(path, "first command", first); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const notes = "## Tuning\n\nkept by hand\n"
	if err := os.WriteFile(path, append(b, notes...), 0o644); err != nil {
		t.Fatal(err)
	}
	before, echoBefore := readSections(t, path)
	second := []GroupResult{
		{Group: latencyGroup, Rows: []Row{{Name: "new latency row", Value: "3"}}},
		{Group: echoGroup, Rows: []Row{{Name: "failed echo row"}}, Err: errors.New("boom")},
		{Group: throughputGroup, Rows: []Row{{Name: "new throughput row", Value: "4"}}},
	}
	if err := WriteReport(path, "second command", second); err != nil {
		t.Fatal(err)
	}
	after, echoAfter := readSections(t, path)
	if echoAfter != echoBefore {
		t.Errorf("the echo group failed, so its table must stay; before:\n%s\nafter:\n%s", echoBefore, echoAfter)
	}
	for _, want := range []string{"new latency row", "second command", "new throughput row", notes} {
		if !strings.Contains(after, want) {
			t.Errorf("report lacks %q:\n%s", want, after)
		}
	}
	for _, gone := range []string{"old latency row", "failed echo row"} {
		if strings.Contains(after, gone) {
			t.Errorf("report still has %q", gone)
		}
	}
	if !strings.HasSuffix(after, notes) || strings.Count(after, notes) != 1 {
		t.Errorf("the notes must end the report once; report:\n%s", after)
	}
	// Groups come in the registry's order, whatever order they ran in.
	if strings.Index(after, "new latency row") > strings.Index(after, "new throughput row") ||
		strings.Index(after, "new throughput row") > strings.Index(after, "old echo row") {
		t.Errorf("groups out of order:\n%s", after)
	}
	if before == after {
		t.Error("the second run changed nothing")
	}
	// Writing the same results again changes nothing but nothing grows.
	if err := WriteReport(path, "second command", second[2:]); err != nil {
		t.Fatal(err)
	}
	again, _ := readSections(t, path)
	if len(again) != len(after) {
		t.Errorf("rewriting one group changed the report's length: %d → %d", len(after), len(again))
	}
}

func readSections(t *testing.T, path string) (all, echo string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sections, _ := parseReport(string(b))
	return string(b), sections["echo"]
}
