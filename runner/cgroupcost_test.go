//go:build linux

package runner_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/runner"
)

// BenchmarkCgroupCost runs `true` with and without a cgroup in
// interleaved rounds and reports the medians' ratio (cgroup/none).
func BenchmarkCgroupCost(b *testing.B) {

	if why := testenv.CgroupsHere(); why != "" {
		b.Skip(why)
	}
	with := runner.New(runner.Options{Cgroups: runner.CgroupsRequire, CgroupParent: testenv.CgroupParent})
	defer with.Close()
	without := runner.New(runner.Options{})
	var s [2][]time.Duration
	one := func(r *runner.Runner) time.Duration {
		t := time.Now()
		p, err := r.Start(context.Background(), runner.Spec{Argv: []string{"true"}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Wait(&discardSink{}); err != nil {
			b.Fatal(err)
		}
		return time.Since(t)
	}
	for range 20 {
		one(with)
		one(without)
	}
	for i := 0; i < b.N; i += 20 {
		for k, r := range []*runner.Runner{without, with} {
			for range 20 {
				s[k] = append(s[k], one(r))
			}
		}
	}
	med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	b.ReportMetric(float64(med(s[0]))/1e3, "us-none")
	b.ReportMetric(float64(med(s[1]))/1e3, "us-cgroup")
	b.ReportMetric(float64(med(s[1]))/float64(med(s[0])), "ratio")
}
