package server

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/rexec/rexec/files"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/codec"
	"github.com/rexec/rexec/journal"
	"github.com/rexec/rexec/runner"
)

// Config configures a Server. Zero fields take the defaults below.
type Config struct {
	// Verifier checks every call's token (required unless NoAuth).
	Verifier *interceptors.Verifier
	// NoAuth serves without authentication. It exists only so that a
	// benchmark can measure what auth costs; rexecd has no flag for it.
	NoAuth bool
	// Runner runs the commands (required); share it with the raw transport
	// so that both count against one --max-concurrent.
	Runner *runner.Runner
	// Logger gets call errors. By default slog.Default().
	Logger *slog.Logger
	// AuthAdmin closes health and reflection to calls without an admin-scoped
	// token. By default they are open.
	AuthAdmin bool
	// Creds are the transport credentials (TLS). By default none: plaintext.
	Creds credentials.TransportCredentials
	// MaxRecvMsgSize bounds one request message. By default 4 MiB (gRPC's).
	MaxRecvMsgSize int
	// MaxHeaderListSize bounds a call's metadata (uncompressed), so that
	// nobody can make the server hold large headers before auth has run.
	// By default 8 KiB: a token is at most 512 bytes.
	MaxHeaderListSize uint32
	// MaxConcurrentStreams is the number of calls one connection may have
	// open at once, advertised to clients in SETTINGS. By default the
	// runner's MaxConcurrent plus 256 (for echo, health, and calls that are
	// refused at the command limit). It must be set explicitly: grpc-go's
	// server advertises nothing by default, and its clients then assume
	// 100 and queue every call past that.
	MaxConcurrentStreams uint32
	// KeepaliveTime is how long a connection may be quiet before the server
	// pings the client to check it is alive. By default 30s.
	KeepaliveTime time.Duration
	// KeepaliveTimeout is how long the server waits for a ping's answer
	// before it closes the connection. By default 10s.
	KeepaliveTimeout time.Duration
	// KeepaliveMinTime is the most often a client may ping; a client that
	// pings more often is sent GOAWAY. By default 5s.
	KeepaliveMinTime time.Duration
	// SessionStartTimeout is how long a Session (or an Attach) may wait for
	// its first message, start; then the call ends with DeadlineExceeded. By
	// default 10s.
	SessionStartTimeout time.Duration
	// Files serves the FileService (package files) when set. Its Keys, for
	// the sweep of expired partial uploads, default to the Verifier's.
	Files *files.Config
	// StreamWindow is the HTTP/2 flow-control window for what a client
	// sends on one call (an upload, a Session's stdin); a connection's is
	// four times it. It bounds what the server buffers per call when it
	// reads slower than the network, and a call's speed to StreamWindow per
	// round trip (1 MiB: 1 GB/s at 1 ms, 100 MB/s at 10 ms: raise it for
	// uploads over long distances). gRPC's adaptive windows grow to 16 MiB
	// a call instead: 8 transfers at once then held 130 MiB of server RSS on
	// loopback. By default 1 MiB: a session's stdin on loopback moved
	// 0.27-0.36 GB/s with 512 KiB, 0.35-0.51 GB/s with 1 MiB, no more with
	// 2 MiB (1 GiB, rounds in turn); 8 file transfers at once held 42 MiB of
	// server RSS with 512 KiB, 53 MiB with 2 MiB.
	StreamWindow int32
	// Observe are server options that observe every call (metrics
	// interceptors, a stats handler), put outermost so that they see calls
	// that auth refuses too. By default there are none.
	Observe []grpc.ServerOption
	// OnAuthFailure, when set, is told of every call that auth refused, and
	// why (for metrics). By default nothing is.
	OnAuthFailure func(ctx context.Context, fullMethod string, err *interceptors.AuthError)
	// Journal, when set, keeps every command's events: the calls' streams
	// read them from it, commands may be RESUMABLE or DETACHED, and
	// ExecutionService is served. By default there is none: every command
	// ends with its call.
	Journal *journal.Journal
}

// Server is rexec's gRPC server.
type Server struct {
	grpc   *grpc.Server
	health *health.Server
	cfg    Config
	// base is cancelled, with runner.ErrShutdown as its cause, when the
	// shutdown grace has passed: every running command is then killed.
	base     context.Context
	stopCmds context.CancelCauseFunc
	files    *files.Service // nil without Config.Files
}

// New builds a Server from cfg.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.KeepaliveTime, 30*time.Second)
	def(&cfg.KeepaliveTimeout, 10*time.Second)
	def(&cfg.KeepaliveMinTime, 5*time.Second)
	def(&cfg.SessionStartTimeout, 10*time.Second)
	if cfg.MaxRecvMsgSize <= 0 {
		cfg.MaxRecvMsgSize = 4 << 20
	}
	if cfg.MaxConcurrentStreams == 0 {
		cfg.MaxConcurrentStreams = uint32(cfg.Runner.Options().MaxConcurrent) + 256
	}
	if cfg.StreamWindow <= 0 {
		cfg.StreamWindow = 1 << 20
	}
	if cfg.MaxHeaderListSize == 0 {
		cfg.MaxHeaderListSize = 8 << 10
	}
	if cfg.Verifier == nil && !cfg.NoAuth {
		panic("server: Config.Verifier is required")
	}
	opts := append(slices.Clip(cfg.Observe), interceptors.ServerOptions(interceptors.ServerConfig{
		Verifier: cfg.Verifier, Logger: cfg.Logger, AuthAdmin: cfg.AuthAdmin, NoAuth: cfg.NoAuth,
		OnAuthFailure: cfg.OnAuthFailure,
	})...)
	// The codec's pool has a tier for a file chunk (files.DefaultChunkSize
	// with its framing), for an output chunk and for a stdin message, where
	// gRPC's default pool gave each a 1 MiB buffer, zeroed (package codec).
	// Measured, 8 transfers at once (4 up, 4 down, mTLS): 130 MiB of server
	// RSS with 1 MiB chunks and adaptive windows, 87 MiB with 1 MiB windows,
	// 62 MiB with 256 KiB chunks and buffers, 58 MiB with 512 KiB windows.
	opts = append(opts, codec.ServerOptions()...)
	opts = append(opts,
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize),
		grpc.InitialWindowSize(cfg.StreamWindow), grpc.InitialConnWindowSize(4*cfg.StreamWindow),
		grpc.MaxConcurrentStreams(cfg.MaxConcurrentStreams),
		grpc.MaxHeaderListSize(cfg.MaxHeaderListSize),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: cfg.KeepaliveTime, Timeout: cfg.KeepaliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: cfg.KeepaliveMinTime, PermitWithoutStream: true}),
		refuseCompressedOption(),
	)
	if cfg.Creds != nil {
		opts = append(opts, grpc.Creds(cfg.Creds))
	}
	s := &Server{grpc: grpc.NewServer(opts...), health: health.NewServer(), cfg: cfg}
	s.base, s.stopCmds = context.WithCancelCause(context.Background())

	rexecv1.RegisterExecServiceServer(s.grpc, &execService{s: s})
	rexecv1.RegisterExecutionServiceServer(s.grpc, &executionService{s: s})
	rexecv1.RegisterEchoServiceServer(s.grpc, echoService{})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc) // v1 and v1alpha
	services := []string{"", rexecv1.ExecService_ServiceDesc.ServiceName, rexecv1.ExecutionService_ServiceDesc.ServiceName, rexecv1.EchoService_ServiceDesc.ServiceName}
	if cfg.Files != nil {
		fc := *cfg.Files
		if fc.Keys == nil && cfg.Verifier != nil {
			fc.Keys = cfg.Verifier.Keys().All
		}
		s.files = files.New(fc, s.base)
		rexecv1.RegisterFileServiceServer(s.grpc, s.files)
		services = append(services, rexecv1.FileService_ServiceDesc.ServiceName)
	}
	for _, name := range services {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	return s
}

// Serve accepts connections on lis until Shutdown or Stop.
func (s *Server) Serve(lis net.Listener) error {
	if s.files != nil {
		s.files.Start()
	}
	return s.grpc.Serve(lis)
}

// GRPC returns the underlying server, e.g. to register more services.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Shutdown stops accepting calls and waits for running ones, and for the
// journal's commands that run without a call (detached, or waiting for
// their client to resume). Commands still running after grace are killed
// (their clients get Exited with reason shutdown, and so does the journal);
// Shutdown returns once every call and command has ended, or after the
// runner's kill and drain graces more, when it stops whatever is left.
func (s *Server) Shutdown(grace time.Duration) {
	s.health.Shutdown() // probes see NOT_SERVING at once
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		if j := s.cfg.Journal; j != nil {
			<-j.Idle()
		}
		close(done)
	}()
	s.cfg.Runner.Drain(grace, done, s.stopCmds, s.grpc.Stop)
	s.stopFiles()
}

// Stop closes every connection and kills every command at once.
func (s *Server) Stop() {
	s.stopCmds(runner.ErrShutdown)
	s.grpc.Stop()
	s.stopFiles()
}

// stopFiles ends the file service's background work and waits a little for
// its upload streams to save their state (gRPC's Stop does not wait for
// handlers), so that an upload cut by the shutdown resumes where it was.
func (s *Server) stopFiles() {
	if s.files == nil {
		return
	}
	s.stopCmds(runner.ErrShutdown)
	if !s.files.Wait(10 * time.Second) {
		s.cfg.Logger.Warn("file service: some uploads did not save their state within 10s")
	}
}

// commandContext is the context of one command: cancelled when the call
// ends, and when the server's shutdown grace has passed. It derives from the
// server's base context so that the shutdown cause reaches the command
// synchronously, before Stop closes the call's transport; of the call's
// values it carries only the trace span (otelgrpc's, when tracing is on), so
// that the runner's observer can add the command's events to it. Take other
// values from the call's own context.
// executionContext is the parent context of a command the journal keeps:
// the server's base (a shutdown ends it), not ended by the call (the
// execution's lifetime says what the call's end does), with the call's
// span, so that the command's start and end are events of it.
func (s *Server) executionContext(call context.Context) context.Context {
	if span := trace.SpanFromContext(call); span.IsRecording() {
		return trace.ContextWithSpan(s.base, span)
	}
	return s.base
}

func (s *Server) commandContext(call context.Context) (context.Context, func()) {
	parent := s.executionContext(call)
	ctx, cancel := context.WithCancelCause(parent)
	stop := context.AfterFunc(call, func() { cancel(context.Cause(call)) })
	return ctx, func() { stop(); cancel(nil) }
}
