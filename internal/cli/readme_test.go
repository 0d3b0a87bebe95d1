package cli_test

import (
	"bytes"
	"flag"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rexec/rexec/internal/cli"
)

var update = flag.Bool("update", false, "rewrite README's framing lab block with this run's output")

// readmeLabStart is the line after which README shows `rexec frames`' output,
// in a fence of its own.
const readmeLabStart = "machines. Its real output:\n\n```\n"

// TestReadmeFramesBlock runs the framing lab as `rexec frames` and checks
// that README's "real output" block is that output, up to what differs
// between any two runs (ports, the token, byte counts that depend on
// them). When the lab's output changes, this fails until README is
// regenerated:
//
//	go test ./internal/cli -run TestReadmeFramesBlock -update
func TestReadmeFramesBlock(t *testing.T) {
	var out, errOut bytes.Buffer
	env := cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	if code := cli.Rexec([]string{"frames"}, env); code != 0 {
		t.Fatalf("rexec frames: exit %d: %s", code, errOut.String())
	}
	const path = "../../README.md"
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(readme, []byte(readmeLabStart))
	if start < 0 {
		t.Fatalf("README has no %q", readmeLabStart)
	}
	start += len(readmeLabStart)
	end := bytes.Index(readme[start:], []byte("```\n"))
	if end < 0 {
		t.Fatal("README's lab block has no closing fence")
	}
	end += start
	if *update {
		fresh := slices.Concat(readme[:start], out.Bytes(), readme[end:])
		if err := os.WriteFile(path, fresh, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("README's framing lab block rewritten")
		return
	}
	have, want := labShape(string(readme[start:end])), labShape(out.String())
	if missing, extra := lineDiff(want, have); len(missing)+len(extra) > 0 {
		t.Errorf("README's framing lab block is stale: regenerate it with\n\tgo test ./internal/cli -run TestReadmeFramesBlock -update\n"+
			"lines of this run that README lacks:\n\t%s\nlines of README that this run lacks:\n\t%s",
			strings.Join(missing, "\n\t"), strings.Join(extra, "\n\t"))
	}
}

// What differs between two runs of the lab: the ephemeral ports and the
// token's time (which also change the HPACK-coded sizes), the kernel's
// error text's addresses, and the build's version.
var (
	labNumbers   = regexp.MustCompile(`[0-9]+`)
	labEphemeral = regexp.MustCompile(`(:authority: |ts=|rexec-version: |udp4 )\S*`)
	labSpaces    = regexp.MustCompile(` +`)
)

// labShape is the lab's text with what varies between runs taken out. A
// grpc-accept-encoding header is left out too: this test's binary links
// rexecd (the scripts run it in-process) and so grpc-go's gzip, which
// rexecd's OTLP exporter imports, and grpc-go then offers gzip on every
// call; the rexec binary, whose output README shows, links no gzip.
func labShape(s string) []string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "grpc-accept-encoding:") {
			continue
		}
		l = labEphemeral.ReplaceAllString(l, "${1}X")
		l = labNumbers.ReplaceAllString(l, "N")
		lines = append(lines, labSpaces.ReplaceAllString(strings.TrimRight(l, " "), " "))
	}
	return lines
}

// lineDiff returns the lines of want not in have and of have not in want,
// as multisets: the order of a few connection-level frames (pings, window
// updates) may differ between runs.
func lineDiff(want, have []string) (missing, extra []string) {
	count := map[string]int{}
	for _, l := range have {
		count[l]++
	}
	for _, l := range want {
		if count[l] > 0 {
			count[l]--
			continue
		}
		missing = append(missing, l)
	}
	for _, l := range have {
		if count[l] > 0 {
			count[l]--
			extra = append(extra, l)
		}
	}
	return missing, extra
}
