package telemetry

import (
	"context"
	"log/slog"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"

	"github.com/rexec/rexec/interceptors"
)

// Transports, the values of the transport label.
const (
	TransportGRPC = "grpc"
	TransportRaw  = "raw"
)

// durationBuckets, in seconds, from 1 ms to 68 minutes: commands and calls
// run from a few milliseconds (true) to hours (a build), and gRPC's default
// buckets end at 10 s.
var durationBuckets = prometheus.ExponentialBuckets(0.001, 4, 12)

// Metrics are rexecd's Prometheus metrics, on a registry of their own. It is
// safe for concurrent use. README's "Metrics and traces" lists them.
type Metrics struct {
	reg  *prometheus.Registry
	grpc *grpcprom.ServerMetrics

	started    *prometheus.CounterVec   // transport
	running    *prometheus.GaugeVec     // transport
	ended      *prometheus.CounterVec   // transport, reason, exit_class
	duration   *prometheus.HistogramVec // transport
	output     *prometheus.CounterVec   // transport, stream
	dropped    *prometheus.CounterVec   // transport
	refused    *prometheus.CounterVec   // transport, reason
	authFailed *prometheus.CounterVec   // transport, reason
	handshakes *prometheus.CounterVec   // result, reason
	limit      prometheus.Gauge
}

// NewMetrics returns rexecd's metrics, with the Go runtime's and the
// process's, and rexec_build_info naming version.
func NewMetrics(version string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets(durationBuckets))),
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rexec_commands_started_total",
			Help: "Commands started, including those that could not be executed (exit 126 or 127).",
		}, []string{"transport"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rexec_commands_running",
			Help: "Commands running now: started and not yet ended (their slot of --max-concurrent held).",
		}, []string{"transport"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rexec_commands_ended_total",
			Help: "Commands ended, by why they ended (exited, timeout, cancelled, shutdown, oom) and their exit status class " +
				"(success, failure, not_executable, not_found, signal).",
		}, []string{"transport", "reason", "exit_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rexec_command_duration_seconds",
			Help:    "Wall time of ended commands, from their start to their exit.",
			Buckets: durationBuckets,
		}, []string{"transport"}),
		output: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rexec_output_bytes_total",
			Help: "Bytes commands wrote to stdout and stderr and the server read, counted when each command ends.",
		}, []string{"transport", "stream"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rexec_output_dropped_bytes_total",
			Help: "Output bytes read past a command's output budget and not sent.",
		}, []string{"transport"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rexec_commands_refused_total",
			Help: "Commands refused before anything started, by reason (concurrency_limit: --max-concurrent was reached; " +
				"invalid_request, failed_precondition, shutdown, cancelled, start_failed).",
		}, []string{"transport", "reason"}),
		authFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rexec_auth_failures_total",
			Help: "Calls, raw handshakes and raw frames refused by authentication or scope, by the check that failed.",
		}, []string{"transport", "reason"}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rexec_raw_handshakes_total",
			Help: "Raw transport handshakes, by result (ok, refused, failed) and reason.",
		}, []string{"result", "reason"}),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rexec_build_info",
		Help: "Always 1; its label names the version of this rexecd.",
	}, []string{"version"})
	buildInfo.WithLabelValues(version).Set(1)
	m.limit = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rexec_commands_limit",
		Help: "The most commands that may run at once (--max-concurrent), over both transports.",
	})
	m.reg.MustRegister(m.grpc, m.started, m.running, m.ended, m.duration, m.output, m.dropped, m.refused,
		m.authFailed, m.handshakes, buildInfo, m.limit,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The series a dashboard plots from the start, at zero until used.
	for _, t := range []string{TransportGRPC, TransportRaw} {
		m.started.WithLabelValues(t)
		m.running.WithLabelValues(t)
		m.output.WithLabelValues(t, "stdout")
		m.output.WithLabelValues(t, "stderr")
		m.refused.WithLabelValues(t, reasonLimit)
	}
	return m
}

// SetCommandsLimit sets rexec_commands_limit: the runner's MaxConcurrent.
func (m *Metrics) SetCommandsLimit(n int) { m.limit.Set(float64(n)) }

// Registry is where the metrics are registered; Serve serves it.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ServerOptions are the gRPC server's metrics interceptors (handled,
// started, messages, latency), for server.Config.Observe.
func (m *Metrics) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(m.grpc.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(m.grpc.StreamServerInterceptor()),
	}
}

// GRPCAuthFailure counts a call refused by auth, for
// server.Config.OnAuthFailure.
func (m *Metrics) GRPCAuthFailure(_ context.Context, _ string, err *interceptors.AuthError) {
	m.authFailed.WithLabelValues(TransportGRPC, err.Kind).Inc()
}

// transportOf is the transport a spec came by: the "transport" attribute
// both transports put in its audit attributes.
func transportOf(attrs []slog.Attr) string {
	for _, a := range attrs {
		if a.Key == "transport" {
			return a.Value.String()
		}
	}
	return "unknown"
}
