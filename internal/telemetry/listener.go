package telemetry

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsPath is where the metrics listener serves the metrics.
const MetricsPath = "/metrics"

// PprofPath is where the metrics listener serves the runtime's profiles
// (heap, goroutine, allocs, profile, trace, …) when it is asked to.
const PprofPath = "/debug/pprof/"

// Listener serves metrics over HTTP on a listener of its own: never the
// gRPC port, whose every call needs a token.
type Listener struct {
	srv  *http.Server
	done chan struct{}
}

// Serve serves m's registry at MetricsPath on lis, in Prometheus's text
// format (or OpenMetrics, when the scraper asks for it), until Close.
// Scrapes are bounded: 4 at once, 10 s each, 8 KiB of headers. With
// withPprof it also serves the runtime's profiles (net/http/pprof) under
// PprofPath; a CPU profile or trace may then take up to a minute.
func Serve(lis net.Listener, m *Metrics, withPprof bool, log *slog.Logger) *Listener {
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Registry:            m.reg, // promhttp_metric_handler_errors_total
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
		EnableOpenMetrics:   true,
	}))
	writeTimeout := 15 * time.Second
	if withPprof {
		// pprof's handlers are mounted on this mux, not on
		// http.DefaultServeMux (which nothing here serves).
		mux.HandleFunc("GET "+PprofPath, pprof.Index)
		mux.HandleFunc("GET "+PprofPath+"cmdline", pprof.Cmdline)
		mux.HandleFunc("GET "+PprofPath+"profile", pprof.Profile)
		mux.HandleFunc("GET "+PprofPath+"symbol", pprof.Symbol)
		mux.HandleFunc("POST "+PprofPath+"symbol", pprof.Symbol)
		mux.HandleFunc("GET "+PprofPath+"trace", pprof.Trace)
		// pprof refuses a ?seconds= past the write timeout: room for its
		// default 30 s and a minute's profile.
		writeTimeout = 75 * time.Second
	}
	l := &Listener{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      writeTimeout,
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
