package telemetry

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/rexec/rexec/runner"
)

// Refusal reasons (rexec_commands_refused_total's reason label).
const (
	reasonLimit        = "concurrency_limit"
	reasonInvalid      = "invalid_request"
	reasonPrecondition = "failed_precondition"
	reasonShutdown     = "shutdown"
	reasonCancelled    = "cancelled"
	reasonStartFailed  = "start_failed"
)

// Observer is the runner's observer (runner.Options.Observer): it counts
// commands in its Metrics, when it has them, and adds each command's start
// and end as events to the span of its call, when a tracer records one.
type Observer struct {
	m *Metrics
}

// NewObserver returns an observer counting into m; m may be nil (traces only).
func NewObserver(m *Metrics) *Observer { return &Observer{m: m} }

var _ runner.Observer = (*Observer)(nil)

// CommandStarted implements runner.Observer.
func (o *Observer) CommandStarted(ctx context.Context, spec *runner.Spec, execID string, pid int) {
	if o.m != nil {
		t := transportOf(spec.Audit)
		o.m.started.WithLabelValues(t).Inc()
		o.m.running.WithLabelValues(t).Inc()
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("started", trace.WithAttributes(
			attribute.String("rexec.exec_id", execID),
			attribute.Int("rexec.pid", pid),
		))
	}
}

// CommandEnded implements runner.Observer.
func (o *Observer) CommandEnded(ctx context.Context, spec *runner.Spec, res *runner.Result) {
	if m := o.m; m != nil {
		t := transportOf(spec.Audit)
		m.running.WithLabelValues(t).Dec()
		m.ended.WithLabelValues(t, res.Reason.String(), exitClass(res)).Inc()
		m.duration.WithLabelValues(t).Observe(res.Duration.Seconds())
		m.output.WithLabelValues(t, "stdout").Add(float64(res.StdoutBytes))
		m.output.WithLabelValues(t, "stderr").Add(float64(res.StderrBytes))
		if res.Dropped > 0 {
			m.dropped.WithLabelValues(t).Add(float64(res.Dropped))
		}
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		attrs := []attribute.KeyValue{
			attribute.String("rexec.exec_id", res.ExecID),
			attribute.Int("rexec.exit_code", res.ExitCode),
			attribute.String("rexec.reason", res.Reason.String()),
			attribute.Int64("rexec.stdout_bytes", res.StdoutBytes),
			attribute.Int64("rexec.stderr_bytes", res.StderrBytes),
			attribute.Float64("rexec.duration_seconds", res.Duration.Seconds()),
		}
		if res.SignalName != "" {
			attrs = append(attrs, attribute.String("rexec.signal", res.SignalName))
		}
		if res.SentSignalName != "" {
			attrs = append(attrs, attribute.String("rexec.sent_signal", res.SentSignalName))
		}
		if res.OutputIncomplete {
			attrs = append(attrs, attribute.Bool("rexec.output_incomplete", true))
		}
		span.AddEvent("exited", trace.WithAttributes(attrs...))
	}
}

// CommandRefused implements runner.Observer.
func (o *Observer) CommandRefused(ctx context.Context, spec *runner.Spec, err error) {
	reason := refusedReason(ctx, err)
	if o.m != nil {
		o.m.refused.WithLabelValues(transportOf(spec.Audit), reason).Inc()
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("refused", trace.WithAttributes(attribute.String("rexec.reason", reason)))
	}
}

// exitClass is rexec_commands_ended_total's exit_class: 0, 1–125 and
// 128–255 (the command's own failure), 126 and 127 (as a shell reports a
// command it could not execute or find), or killed by a signal.
func exitClass(r *runner.Result) string {
	switch {
	case r.Signal != 0:
		return "signal"
	case r.ExitCode == 0:
		return "success"
	case r.ExitCode == 126:
		return "not_executable"
	case r.ExitCode == 127:
		return "not_found"
	}
	return "failure"
}

func refusedReason(ctx context.Context, err error) string {
	var fe *runner.FieldError
	switch {
	case errors.Is(err, runner.ErrTooManyCommands):
		return reasonLimit
	case errors.As(err, &fe) && fe.Precondition:
		return reasonPrecondition
	case errors.As(err, &fe):
		return reasonInvalid
	case errors.Is(err, runner.ErrShutdown):
		return reasonShutdown
	case ctx.Err() != nil:
		return reasonCancelled
	}
	return reasonStartFailed
}
