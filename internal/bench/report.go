package bench

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Table writes rows as one markdown table per group.
func Table(w io.Writer, rows []Row) {
	group := ""
	for _, r := range rows {
		if r.Group != group {
			group = r.Group
			fmt.Fprintf(w, "\n**%s**\n\n", group)
			tableHeader(w)
		}
		tableRow(w, r)
	}
}

func tableHeader(w io.Writer) {
	fmt.Fprint(w, "| what | median | p99 | value | ratio | goal | |\n| --- | ---: | ---: | ---: | --- | --- | --- |\n")
}

func tableRow(w io.Writer, r Row) {
	med, p99 := "", ""
	if r.Median > 0 {
		med, p99 = ms(r.Median), ms(r.P99)
	}
	met := map[int]string{1: "met", -1: "**not met**", 0: ""}[r.Met]
	name := r.Name
	if r.Note != "" {
		name += " (" + r.Note + ")"
	}
	fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", name, med, p99, r.Value, r.Ratio, r.Goal, met)
}

// Machine describes this machine for the report.
func Machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, model, _ = strings.Cut(l, ": ")
				break
			}
		}
	}
	kernel, _ := exec.Command("uname", "-sr").Output()
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1] + " kB RAM"
	}
	return fmt.Sprintf("%d × %s, %s, %s, %s", runtime.NumCPU(), model, mem, strings.TrimSpace(string(kernel)), runtime.Version())
}

// The markers that delimit a group's section in BENCHMARKS.md, and the
// start of the hand-written notes that follow the tables.
const (
	groupBegin  = "<!-- bench:group "
	groupEnd    = "<!-- /bench:group -->"
	notesMarker = "<!-- bench:notes: written by hand, kept by rexec-bench -->"
)

const reportIntro = `# rexec benchmarks

Written by ` + "`go run ./cmd/rexec-bench`" + `. Each table is one group, measured in one run: every ratio is
between rows of that run, and each table says when and by which command it was last measured
(` + "`rexec-bench all --only GROUP --out BENCHMARKS.md`" + ` updates that group's table only). Absolute
times on a shared 2-core machine are noise, so the rows of a group are measured in turn (one
of each, then again), and goals are ratios. Throughput rows are the best of 3 rounds; every byte
is hashed (sha256) and checked against the file — as it arrives in the bench (stdout rows), or by
` + "`rexec-bench sink`" + ` at the far end of the path (stdin rows).
`

// WriteReport updates the report at path with the groups of results that
// ran without error: each one's table is replaced, with command and the
// time as its provenance; the other groups' tables and the notes after the
// tables are kept as they were.
func WriteReport(path, command string, results []GroupResult) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	sections, notes := parseReport(string(old))
	stamp := time.Now().UTC().Format("2006-01-02 15:04 UTC")
	for _, r := range results {
		if r.Err != nil {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "## %s\n\n", r.Group.Title)
		fmt.Fprintf(&b, "Measured by `%s` on %s.  \nMachine: %s.\n\n", command, stamp, Machine())
		tableHeader(&b)
		for _, row := range r.Rows {
			tableRow(&b, row)
		}
		sections[r.Group.Name] = strings.TrimRight(b.String(), "\n")
	}
	var out strings.Builder
	out.WriteString(reportIntro)
	for _, g := range Groups() {
		if s, ok := sections[g.Name]; ok {
			fmt.Fprintf(&out, "\n%s%s -->\n%s\n\n%s\n", groupBegin, g.Name, s, groupEnd)
		}
	}
	out.WriteString("\n" + notesMarker + "\n")
	out.WriteString(notes)
	return os.WriteFile(path, []byte(out.String()), 0o644)
}

// parseReport splits a report into its group sections (by group name, the
// text between the markers) and the notes after notesMarker. A report from
// before the markers existed keeps nothing.
func parseReport(s string) (map[string]string, string) {
	sections := map[string]string{}
	notes := ""
	if i := strings.Index(s, notesMarker); i >= 0 {
		notes = strings.TrimPrefix(s[i+len(notesMarker):], "\n")
		s = s[:i]
	}
	for {
		i := strings.Index(s, groupBegin)
		if i < 0 {
			break
		}
		s = s[i+len(groupBegin):]
		name, rest, ok := strings.Cut(s, " -->\n")
		if !ok {
			break
		}
		body, after, ok := strings.Cut(rest, groupEnd)
		if !ok {
			break
		}
		sections[name] = strings.TrimRight(body, "\n")
		s = after
	}
	return sections, notes
}
