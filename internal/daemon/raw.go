package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/journal"
	"github.com/rexec/rexec/rawsock/rawserver"
	"github.com/rexec/rexec/runner"
)

// rawDaemon is rexecd's raw listener, when --raw-listen is given.
type rawDaemon struct {
	srv    *rawserver.Server
	served chan error
}

// startRawDaemon listens on cfg.RawListen; with no address it returns nil:
// the raw transport is off unless asked for, so that a second port with its
// own protocol is never open by surprise.
func startRawDaemon(cfg DaemonConfig, ring *interceptors.KeyRing, run *runner.Runner, jrnl *journal.Journal, obs rawserver.Observer, log *slog.Logger) (*rawDaemon, error) {
	if cfg.RawListen == "" {
		return nil, nil
	}
	lis, err := net.Listen("tcp", cfg.RawListen)
	if err != nil {
		return nil, fmt.Errorf("--raw-listen: %w", err)
	}
	// The raw transport has no TLS at all: off loopback it needs the same
	// explicit --allow-plaintext as plaintext gRPC.
	if a, ok := lis.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() && !cfg.TLS.AllowPlaintext {
		lis.Close()
		return nil, fmt.Errorf("refusing --raw-listen %s (bound %s), which is not a loopback address: the raw transport "+
			"has no TLS, so anyone on the network path reads every command and its output; keep it on loopback, "+
			"or give --allow-plaintext if the network itself is trusted", cfg.RawListen, lis.Addr())
	}
	if cfg.RawAddrFile != "" {
		if err := os.WriteFile(cfg.RawAddrFile, []byte(lis.Addr().String()), 0o644); err != nil {
			lis.Close()
			return nil, fmt.Errorf("--raw-addr-file: %w", err)
		}
	}
	log.Info("rexecd raw socket listening", "raw", lis.Addr().String())
	idle := cfg.RawIdleTimeout
	if idle <= 0 {
		idle = -1 // never
	}
	d := &rawDaemon{
		srv:    rawserver.New(rawserver.Config{Keys: ring, Runner: run, Journal: jrnl, Logger: log, IdleTimeout: idle, Observer: obs}),
		served: make(chan error, 1),
	}
	go func() {
		err := d.srv.Serve(lis)
		if !errors.Is(err, rawserver.ErrServerClosed) {
			log.Error("raw listener failed", "err", err)
		}
		d.served <- err
	}()
	return d, nil
}

// shutdown stops the gRPC server and the raw listener together, each with
// the same grace, and returns when both are done.
func (d *rawDaemon) shutdown(grpc interface{ Shutdown(time.Duration) }, grace time.Duration) {
	var wg sync.WaitGroup
	wg.Go(func() { grpc.Shutdown(grace) })
	if d != nil {
		wg.Go(func() { d.srv.Shutdown(grace); <-d.served })
	}
	wg.Wait()
}

// stop stops the raw listener at once.
func (d *rawDaemon) stop() {
	if d != nil {
		d.srv.Stop()
	}
}
