package telemetry

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsPath is where the metrics listener serves the metrics.
const MetricsPath = "/metrics"

// Listener serves metrics over HTTP on a listener of its own: never the
// gRPC port, whose every call needs a token.
type Listener struct {
	srv  *http.Server
	done chan struct{}
}

// Serve serves m's registry at MetricsPath on lis, in Prometheus's text
// format (or OpenMetrics, when the scraper asks for it), until Close.
// Scrapes are bounded: 4 at once, 10 s each, 8 KiB of headers.
func Serve(lis net.Listener, m *Metrics, log *slog.Logger) *Listener {
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Registry:            m.reg, // promhttp_metric_handler_errors_total
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
		EnableOpenMetrics:   true,
	}))
	l := &Listener{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      15 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    8 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(l.done)
		if err := l.srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", "err", err)
		}
	}()
	return l
}

// Close stops serving and closes open scrapes' connections.
func (l *Listener) Close() error {
	err := l.srv.Close()
	<-l.done
	return err
}
