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
	b.WriteString(tuningNotes)
	if notes != "" {
		b.WriteString("\n" + notes)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// tuningNotes say what was tuned (kept only where the table showed a gain)
// and what bounds the goals that are not met. Figures here are from the
// runs named; the table above is the current run's.
const tuningNotes = `
## Tuning: what was kept

Each change was measured with ` + "`rexec-bench all --only throughput`" + ` (512 MiB, same run, several runs) or the
benchmarks named, and kept only where it helped:

| change | effect | kept |
| --- | --- | --- |
| output chunk 32 KiB → 128 KiB (` + "`runner.Options.ChunkSize`" + `) | gRPC 0.43× → 0.62× of the local pipe; raw 0.93× → 1.22× | yes |
| stdout pipe 64 KiB → 1 MiB (` + "`F_SETPIPE_SZ`, `runner.Options.PipeSize`" + `) | gRPC 0.62× → 0.62–0.74× (fewer, fuller reads) | yes |
| client HTTP/2 window: adaptive → fixed 8 MiB (` + "`client.WithWindow`" + `) | gRPC +0.04× | yes |
| gRPC read/write buffers 32 KiB → 256 KiB | none measurable (0.66× → 0.64×) | no |
| chunk 256 KiB / 512 KiB | within noise of 128 KiB | no (more memory per command) |
| buffers taken only once the pipe is readable | idle commands hold no 128 KiB buffers | yes |
| keyed HMAC states pooled per key | Verify 2.4 µs/7 allocs → 1.36 µs/2 allocs; Mint 1.6 → 0.93 µs (` + "`BenchmarkVerify`, `BenchmarkMint`" + `) | yes |
| server advertises MaxConcurrentStreams | 1000 calls on one connection no longer run in waves of 100 | yes |

## What bounds the goals not met

- **Process creation on this VM.** Measured on the same idle machine: ` + "`/bin/true`" + ` from bash 2.1 ms, ` + "`sh -c true`" + `
  2.6 ms, a Go hello-world process 6.7 ms (the issue's figures were 0.6 ms and 1.1 ms: this VM creates
  processes about 4–6× slower today). Python spawning 1000 ` + "`sh -c 'sleep 1; echo x'`" + ` took 9.8 s just to start them.
  - *1000 × sleep 1*: the local os/exec baseline of the same commands takes ~10 s; rexec adds ~6 %.
    The 3 s goal is below what this machine can spawn.
  - *cold ` + "`rexec run -- true`" + `*: ` + "`rexec help`" + ` alone takes ~25 ms (a 19 MB binary; ` + "`GODEBUG=inittrace=1`" + ` shows
    ~14 ms of package init, led by protodesc/descriptorpb (reflection), html/template (grpc's x/net/trace)
    and grpc itself). 75× faster than ssh cold would need the whole round trip in ~4 ms here. Next step:
    split rexecd out of the rexec binary so the CLI links neither reflection nor the server, and build
    with ` + "`-tags grpcnotrace`" + `.
- **warm Run(true)**: the raw transport adds ~0.6 ms over local os/exec (pipes, process group, guard,
  pump); gRPC another ~0.6 ms (stream set-up, three flushed writes: Started, Exited, trailers).
- **echo with auth**: CPU profile of ` + "`BenchmarkEcho`" + ` (` + "`go test -bench Echo -cpuprofile`, `pprof -top -cum`" + `)
  after pooling: authenticate 1.4 %, Verify 1.1 %, Mint 0.6 %, hpack encode/decode of the fresh 140-byte
  header 2.2 % + 1.9 % — against the logging interceptor's 7.7 % that both variants pay. What remains
  of the gap is the header's bytes and hpack work on the latency-bound one-caller path.
`
