package journal_test

import (
	"context"
	"testing"

	"github.com/rexec/rexec/journal"
	"github.com/rexec/rexec/runner"
)

// BenchmarkStartTrue is one whole CALL command through the journal: start
// `true`, read its attachment to the end, close it. Beside the runner's
// BenchmarkStartTrue it is what the journal adds to a command's round trip
// (its directory and meta file at the start, its end at the end).
func BenchmarkStartTrue(b *testing.B) { benchStart(b, "true") }

// BenchmarkStartEcho is BenchmarkStartTrue with a line of output: the
// journal's first segment file as well.
func BenchmarkStartEcho(b *testing.B) { benchStart(b, "echo", "hi") }

func benchStart(b *testing.B, argv ...string) {
	j, err := journal.Open(journal.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	r := runner.New(runner.Options{})
	ctx := context.Background()
	b.ReportAllocs()
	for range b.N {
		_, a, err := j.Start(ctx, r, runner.Spec{Argv: argv}, journal.StartOptions{Lifetime: journal.Call, Attach: true})
		if err != nil {
			b.Fatal(err)
		}
		for {
			it, err := a.Next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if it.Kind == journal.ItemExited {
				break
			}
		}
		a.Close(nil)
	}
}
