package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/telemetry"
	"github.com/rexec/rexec/internal/version"
	"github.com/rexec/rexec/rawsock/rawserver"
	"github.com/rexec/rexec/runner"
)

// observability is what --metrics-listen and --otlp-endpoint turn on; its
// zero value (neither flag) observes nothing and costs nothing.
type observability struct {
	metrics *telemetry.Metrics
	tracing *telemetry.Tracing
	lis     *telemetry.Listener
}

// startObservability makes the metrics and the tracer that the flags ask
// for. The metrics listener is opened by serveMetrics, once the runner is
// made.
func startObservability(ctx context.Context, cfg DaemonConfig) (*observability, error) {
	o := &observability{}
	if cfg.MetricsListen != "" {
		o.metrics = telemetry.NewMetrics(version.String())
	}
	if cfg.OTLPEndpoint != "" {
		t, err := telemetry.NewTracing(ctx, cfg.OTLPEndpoint, version.String())
		if err != nil {
			return nil, fmt.Errorf("--otlp-endpoint %s: %w", cfg.OTLPEndpoint, err)
		}
		o.tracing = t
	}
	return o, nil
}

// runnerObserver is the runner's observer, or nil when nothing is observed.
func (o *observability) runnerObserver() runner.Observer {
	if o.metrics == nil && o.tracing == nil {
		return nil
	}
	return telemetry.NewObserver(o.metrics)
}

// serverOptions are the gRPC server's observing options: metrics
// interceptors and the tracing stats handler.
func (o *observability) serverOptions() []grpc.ServerOption {
	var opts []grpc.ServerOption
	if o.metrics != nil {
		opts = append(opts, o.metrics.ServerOptions()...)
	}
	if o.tracing != nil {
		opts = append(opts, o.tracing.ServerOption())
	}
	return opts
}

func (o *observability) onAuthFailure() func(context.Context, string, *interceptors.AuthError) {
	if o.metrics == nil {
		return nil
	}
	return o.metrics.GRPCAuthFailure
}

func (o *observability) rawObserver() rawserver.Observer {
	if o.metrics == nil {
		return nil
	}
	return o.metrics.Raw()
}

// serveMetrics opens --metrics-listen. Its address must be loopback unless
// --allow-plaintext says the network is trusted: the listener has no TLS
// and no auth, and its counts of auth failures by reason would tell a
// prober which of its guesses got further (an unknown key id, or a bad
// signature for a known one), which the fixed Unauthenticated message
// keeps from it.
func (o *observability) serveMetrics(cfg DaemonConfig, run *runner.Runner, log *slog.Logger) error {
	if o.metrics == nil {
		return nil
	}
	o.metrics.SetCommandsLimit(run.Options().MaxConcurrent)
	lis, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return fmt.Errorf("--metrics-listen: %w", err)
	}
	if a, ok := lis.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() && !cfg.TLS.AllowPlaintext {
		lis.Close()
		return fmt.Errorf("refusing --metrics-listen %s (bound %s), which is not a loopback address: the metrics "+
			"listener has no TLS and no auth, and its auth-failure counts tell a prober which check refused it; "+
			"keep it on loopback (scrape through a local agent or proxy), or give --allow-plaintext if the network "+
			"itself is trusted", cfg.MetricsListen, lis.Addr())
	}
	if cfg.MetricsAddrFile != "" {
		if err := os.WriteFile(cfg.MetricsAddrFile, []byte(lis.Addr().String()), 0o644); err != nil {
			lis.Close()
			return fmt.Errorf("--metrics-addr-file: %w", err)
		}
	}
	o.lis = telemetry.Serve(lis, o.metrics, cfg.Pprof, log)
	log.Info("rexecd metrics listening", "metrics", "http://"+lis.Addr().String()+telemetry.MetricsPath)
	if cfg.Pprof {
		log.Info("rexecd profiles listening", "pprof", "http://"+lis.Addr().String()+telemetry.PprofPath)
	}
	return nil
}

// close stops the metrics listener and sends the spans still buffered
// (waiting at most 5 s for a collector).
func (o *observability) close(log *slog.Logger) {
	if o.lis != nil {
		o.lis.Close()
	}
	if o.tracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := o.tracing.Shutdown(ctx); err != nil {
			log.Warn("OTLP exporter: spans not sent at shutdown", "err", err)
		}
	}
}
