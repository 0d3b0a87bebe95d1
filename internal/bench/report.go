package bench

import (
	"fmt"
	"io"
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
			fmt.Fprintf(w, "\n**%s**\n\n| what | median | p99 | value | ratio | goal | |\n| --- | ---: | ---: | ---: | --- | --- | --- |\n", group)
		}
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

// WriteReport writes BENCHMARKS.md.
func WriteReport(path, command string, rows []Row, notes string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# rexec benchmarks\n\nWritten by `%s` on %s.\n\nMachine: %s.\n\n", command, time.Now().UTC().Format("2006-01-02 15:04 UTC"), Machine())
	b.WriteString("Every ratio is between rows measured in the same run; absolute times on a shared 2-core machine are noise. " +
		"Throughput rows are the best of 3 transfers; every byte is hashed (sha256) by the bench as it arrives and checked against the file.\n")
	Table(&b, rows)
	if notes != "" {
		b.WriteString("\n" + notes)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
