package fleet

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rexec/rexec/client/hostset"
)

// Summary counts a run's results.
type Summary struct {
	Targets int
	OK      int
	// Failed ran and exited nonzero.
	Failed int
	// NotRun could not run the command: unreachable, auth, timeout,
	// refused.
	NotRun int
	// Cancelled had not ended when the run was interrupted.
	Cancelled int
	// ByClass names the targets of every class but OK.
	ByClass    map[Class][]string
	ExitStatus int
	Duration   time.Duration
	// Interrupted is set when a signal ended the run.
	Interrupted bool
}

// Summarize counts results; exitStatus is ExitStatus's.
func Summarize(results []*Result, exitStatus int, took time.Duration, interrupted bool) Summary {
	s := Summary{Targets: len(results), ByClass: map[Class][]string{}, ExitStatus: exitStatus, Duration: took, Interrupted: interrupted}
	for _, r := range results {
		switch r.Class {
		case OK:
			s.OK++
			continue
		case Failed:
			s.Failed++
		case Cancelled:
			s.Cancelled++
		default:
			s.NotRun++
		}
		s.ByClass[r.Class] = append(s.ByClass[r.Class], r.Target.Name)
	}
	return s
}

// classOrder is the order of the summary's detail lines.
var classOrder = []Class{Failed, Unreachable, Timeout, Auth, Refused, Cancelled}

// Lines are the summary for people, for stderr: the counts, then one line
// a class with its targets folded.
//
//	rexec: 95 ok, 3 failed, 2 unreachable (of 100 targets)
//	rexec: failed: node[03,07-08]
//	rexec: unreachable (timeout): node09
func (s Summary) Lines() []string {
	head := fmt.Sprintf("rexec: %d ok, %d failed, %d unreachable", s.OK, s.Failed, s.NotRun)
	if s.Cancelled > 0 {
		head += fmt.Sprintf(", %d not finished", s.Cancelled)
	}
	head += fmt.Sprintf(" (of %d targets, %v)", s.Targets, s.Duration.Round(time.Millisecond))
	if s.Interrupted {
		head = "rexec: interrupted: " + strings.TrimPrefix(head, "rexec: ")
	}
	lines := []string{head}
	for _, c := range classOrder {
		names := s.ByClass[c]
		if len(names) == 0 {
			continue
		}
		label := string(c)
		switch c {
		case Timeout, Auth, Refused:
			label = "unreachable (" + label + ")"
		case Cancelled:
			label = "not finished"
		}
		lines = append(lines, fmt.Sprintf("rexec: %s: %s", label, hostset.Fold(names)))
	}
	return lines
}

// FailedFolded is every target that did not exit 0, folded.
func (s Summary) FailedFolded() string {
	var all []string
	for _, names := range s.ByClass {
		all = append(all, names...)
	}
	return hostset.Fold(all)
}

// WriteFailedFile writes the targets that did not exit 0 (failed, could
// not run, or not finished) to path, one a line as they were written:
// ready for --hosts-file. With none, the file is empty.
func WriteFailedFile(path string, results []*Result) error {
	var b strings.Builder
	for _, r := range results {
		if r.Class != OK {
			b.WriteString(r.Target.Name + "\n")
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("--failed-file: %w", err)
	}
	return nil
}
