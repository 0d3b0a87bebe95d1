package runner

import (
	"context"
	"log/slog"
)

// audit logs one line when a command starts and one when it ends, with the
// caller's attributes (peer, key id, transport) from Spec.Audit. Both
// transports get the same record because the runner writes it.
func (p *Process) auditStart() {
	l := p.r.opts.Audit
	if l == nil {
		return
	}
	l.LogAttrs(context.Background(), slog.LevelInfo, "command started", append(p.spec.Audit,
		slog.String("exec_id", p.id),
		slog.String("command", p.spec.Describe()),
		slog.String("dir", p.cmd.Dir),
		slog.String("user", p.acct.Name),
		slog.Int("pid", p.Pid()),
		slog.Bool("tty", p.spec.TTY != nil),
	)...)
}

// auditEnd is written as the command's slot is freed, before its client
// has Exited: it depends on no client, so every started command has one,
// also when a shutdown closes a client that stopped reading.
func (p *Process) auditEnd(r *Result, sinkErr error) {
	l := p.r.opts.Audit
	if l == nil {
		return
	}
	attrs := append(p.spec.Audit,
		slog.String("exec_id", p.id),
		slog.Int("pid", r.Pid),
		slog.Int("exit_code", r.ExitCode),
		slog.String("signal", r.SignalName),
		slog.String("reason", r.Reason.String()),
		slog.String("sent_signal", r.SentSignalName),
		slog.Duration("duration", r.Duration),
		slog.Int64("stdout_bytes", r.StdoutBytes),
		slog.Int64("stderr_bytes", r.StderrBytes),
		slog.Int64("dropped_bytes", r.Dropped),
		slog.Bool("output_incomplete", r.OutputIncomplete),
		slog.Int64("unread_bytes", r.Unread),
		slog.Duration("user_cpu", r.Usage.UserCPU),
		slog.Duration("system_cpu", r.Usage.SystemCPU),
		slog.Int64("peak_memory_bytes", r.Usage.PeakMemory),
		slog.Int64("peak_processes", r.Usage.PeakProcesses),
	)
	if sinkErr != nil {
		attrs = append(attrs, slog.String("peer_error", sinkErr.Error()))
	}
	l.LogAttrs(context.Background(), slog.LevelInfo, "command ended", attrs...)
}
