package fleet

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Record is one target's line of --json output (NDJSON).
type Record struct {
	Target  string `json:"target"`
	Address string `json:"address"`
	// Class is ok, failed, unreachable, auth, timeout, refused or
	// cancelled.
	Class string `json:"class"`
	// ExitStatus is what a single-target run exits with: the exit code,
	// 128+N for signal N, 255 when rexec failed there.
	ExitStatus int `json:"exit_status"`
	// ExitCode is the command's exit code, -1 when a signal ended it;
	// absent when it did not run to an exit.
	ExitCode *int32 `json:"exit_code,omitempty"`
	// Signal is the signal that ended the command (TERM, KILL…).
	Signal   string `json:"signal,omitempty"`
	TimedOut bool   `json:"timed_out,omitempty"`
	// Error is rexec's one-line message when it failed there.
	Error       string  `json:"error,omitempty"`
	PID         int     `json:"pid,omitempty"`
	DurationMS  float64 `json:"duration_ms"`
	StdoutBytes int64   `json:"stdout_bytes"`
	StderrBytes int64   `json:"stderr_bytes"`
	// DroppedBytes is output the server dropped past --max-output.
	DroppedBytes uint64 `json:"dropped_bytes,omitempty"`
}

// SummaryRecord is the last line of --json output.
type SummaryRecord struct {
	Summary    bool           `json:"summary"`
	Targets    int            `json:"targets"`
	OK         int            `json:"ok"`
	Failed     int            `json:"failed"`
	NotRun     int            `json:"unreachable"`
	Cancelled  int            `json:"cancelled,omitempty"`
	Classes    map[string]int `json:"classes"`
	ExitStatus int            `json:"exit_status"`
	DurationMS float64        `json:"duration_ms"`
	// FailedTargets are the targets that did not exit 0, folded.
	FailedTargets string `json:"failed_targets,omitempty"`
}

// JSON is the --json output: one Record a target as it ends, on W. The
// targets' output itself is not written (count it in the records; keep it
// with --output-dir).
type JSON struct {
	W io.Writer
	// Messages give a record's error; by default Explain's line.
	Messages func(r *Result) []string

	mu sync.Mutex
}

// Start implements Output.
func (j *JSON) Start(*Target) (io.Writer, io.Writer, error) { return io.Discard, io.Discard, nil }

// Done implements Output.
func (j *JSON) Done(r *Result) {
	rec := Record{
		Target: r.Target.Name, Address: r.Target.Addr, Class: string(r.Class), ExitStatus: r.Status,
		PID: r.PID, DurationMS: float64(r.Duration) / float64(time.Millisecond),
		StdoutBytes: r.StdoutBytes, StderrBytes: r.StderrBytes,
	}
	if e := r.Exited; e != nil {
		code := e.GetExitCode()
		rec.ExitCode = &code
		rec.Signal, rec.TimedOut, rec.DroppedBytes = e.GetSignal(), e.GetTimedOut(), e.GetDroppedBytes()
	}
	if r.Err != nil && j.Messages != nil {
		if m := j.Messages(r); len(m) > 0 {
			rec.Error = m[0]
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	json.NewEncoder(j.W).Encode(&rec)
}

// Summary writes the summary record.
func (j *JSON) Summary(s Summary) error {
	rec := SummaryRecord{Summary: true, Targets: s.Targets, OK: s.OK, Failed: s.Failed, NotRun: s.NotRun,
		Cancelled: s.Cancelled, Classes: map[string]int{}, ExitStatus: s.ExitStatus,
		DurationMS: float64(s.Duration) / float64(time.Millisecond), FailedTargets: s.FailedFolded()}
	for c, names := range s.ByClass {
		rec.Classes[string(c)] = len(names)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return json.NewEncoder(j.W).Encode(&rec)
}
