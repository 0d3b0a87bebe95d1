package bench

import (
	"fmt"
	"slices"
	"time"
)

// Sample is a set of timings of one operation.
type Sample []time.Duration

// Time runs op n times and records each duration; it stops at the first error.
func Time(n int, op func() error) (Sample, error) {
	s := make(Sample, 0, n)
	for range n {
		start := time.Now()
		if err := op(); err != nil {
			return s, err
		}
		s = append(s, time.Since(start))
	}
	return s, nil
}

// Interleave runs each op in turn, n rounds, and records each op's
// durations apart: drift on a shared machine then falls on every op alike,
// and ratios between them hold though the absolute times wander. It stops
// at the first error.
func Interleave(n int, ops []func() error) ([]Sample, error) {
	s := make([]Sample, len(ops))
	for i := range s {
		s[i] = make(Sample, 0, n)
	}
	for range n {
		for i, op := range ops {
			start := time.Now()
			if err := op(); err != nil {
				return s, err
			}
			s[i] = append(s[i], time.Since(start))
		}
	}
	return s, nil
}

// Quantile returns the q-quantile (0..1) by nearest rank.
func (s Sample) Quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	i := int(q*float64(len(c))+0.5) - 1
	return c[max(0, min(i, len(c)-1))]
}

// Median is the 0.5-quantile.
func (s Sample) Median() time.Duration { return s.Quantile(0.5) }

// P99 is the 0.99-quantile.
func (s Sample) P99() time.Duration { return s.Quantile(0.99) }

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }
