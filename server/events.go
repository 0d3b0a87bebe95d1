package server

import (
	"google.golang.org/protobuf/types/known/durationpb"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/runner"
)

// eventSink adapts runner events to rexecv1.Event messages. Send marshals a
// message before it returns, so one set of messages is reused for every
// event of a stream: no allocation per output chunk.
type eventSink struct {
	send    func(*rexecv1.Event) error
	ev      rexecv1.Event
	out     rexecv1.Output
	stdout  rexecv1.Event_Stdout
	stderr  rexecv1.Event_Stderr
	started rexecv1.Event_Started
}

func newEventSink(send func(*rexecv1.Event) error) *eventSink {
	s := &eventSink{send: send}
	s.stdout.Stdout = &s.out
	s.stderr.Stderr = &s.out
	return s
}

func (s *eventSink) Started(id string, pid int) error {
	s.started.Started = &rexecv1.Started{ExecutionId: id, Pid: int32(pid)}
	s.ev.Kind = &s.started
	return s.send(&s.ev)
}

func (s *eventSink) Output(st runner.Stream, seq uint64, data []byte) error {
	s.out.Seq, s.out.Data = seq, data
	if st == runner.Stderr {
		s.ev.Kind = &s.stderr
	} else {
		s.ev.Kind = &s.stdout
	}
	err := s.send(&s.ev)
	s.out.Data = nil // the runner reuses data's buffer
	return err
}

func (s *eventSink) Exited(r *runner.Result) error {
	s.ev.Kind = &rexecv1.Event_Exited{Exited: exitedMessage(r)}
	return s.send(&s.ev)
}

func exitedMessage(r *runner.Result) *rexecv1.Exited {
	return &rexecv1.Exited{
		ExitCode:         int32(r.ExitCode),
		Signal:           r.SignalName,
		SignalNumber:     int32(r.Signal),
		TimedOut:         r.TimedOut(),
		Reason:           rexecv1.EndReason(r.Reason),
		Duration:         durationpb.New(r.Duration),
		OutputIncomplete: r.OutputIncomplete,
		DroppedBytes:     uint64(r.Dropped),
		StdoutBytes:      uint64(r.StdoutBytes),
		StderrBytes:      uint64(r.StderrBytes),
		SentSignal:       r.SentSignalName,
		SentSignalNumber: int32(r.SentSignal),
		Usage: &rexecv1.Usage{
			UserCpu:         durationpb.New(r.Usage.UserCPU),
			SystemCpu:       durationpb.New(r.Usage.SystemCPU),
			PeakMemoryBytes: uint64(max(r.Usage.PeakMemory, 0)),
			PeakProcesses:   uint64(max(r.Usage.PeakProcesses, 0)),
			Cgroup:          r.Usage.Cgroup,
		},
		Message: r.Message,
	}
}
