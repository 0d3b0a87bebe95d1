package interceptors

import (
	"context"
	"log/slog"
	"runtime/debug"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/rexec/rexec/internal/version"
)

// The fixed messages of auth refusals. Every authentication failure gets
// UnauthenticatedMessage, whatever its cause, so that the client learns
// nothing about which check failed; the server log says which.
const (
	UnauthenticatedMessage  = "rexec: authentication failed: check that your key file matches the server's and your clock is right"
	PermissionDeniedMessage = "rexec: this key is not allowed to call this method (scopes)"
)

// ServerConfig configures the server chain.
type ServerConfig struct {
	Verifier *Verifier
	Logger   *slog.Logger
	// AuthAdmin makes health and reflection need a token with the admin
	// scope. By default they are open, so probes and `grpcurl list` work.
	AuthAdmin bool
	// NoAuth leaves authentication out of the chain: for benchmarks only.
	NoAuth bool
	// OnAuthFailure, when set, is told of every call that auth refused,
	// and why (for metrics). It must not block. By default nothing is.
	OnAuthFailure func(ctx context.Context, fullMethod string, err *AuthError)
}

// ServerOptions returns the interceptor chains for a server: call logging,
// authentication (all methods but health and reflection unless AuthAdmin),
// and panic recovery innermost, so a panicking handler becomes Internal;
// with auth, also the Verifier's stats handler, which lets a connection
// present a token it spent again (spent.go).
func ServerOptions(cfg ServerConfig) []grpc.ServerOption {
	logger := logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		cfg.Logger.Log(ctx, slog.Level(lvl), msg, fields...)
	})
	logOpts := []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		// Successful calls at debug: the audit log already records commands.
		logging.WithLevels(func(c codes.Code) logging.Level {
			if c == codes.OK {
				return logging.LevelDebug
			}
			return logging.DefaultServerCodeToLevel(c)
		}),
	}
	recoverOpt := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		cfg.Logger.ErrorContext(ctx, "handler panicked", "panic", p, "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "rexec: internal error (the server log has the details)")
	})
	// The version header first, so that every call carries it (version.go).
	opts := VersionServerOptions(version.String())
	if !cfg.NoAuth && cfg.Verifier != nil {
		// Each connection's identity for the tokens it may present again
		// (spent.go).
		opts = append(opts, grpc.StatsHandler(cfg.Verifier.StatsHandler()))
	}
	return append(opts,
		grpc.ChainUnaryInterceptor(
			logging.UnaryServerInterceptor(logger, logOpts...),
			cfg.unaryAuth,
			recovery.UnaryServerInterceptor(recoverOpt),
		),
		grpc.ChainStreamInterceptor(
			logging.StreamServerInterceptor(logger, logOpts...),
			cfg.streamAuth,
			recovery.StreamServerInterceptor(recoverOpt),
		),
	)
}

// CallFromContext is what a gRPC server call's context says of it, for
// Verify: its :authority, its connection's local address and TLS state.
func CallFromContext(ctx context.Context, method string) Call {
	c := Call{Method: method, TLS: ConnFromContext(ctx)}
	if a := metadata.ValueFromIncomingContext(ctx, ":authority"); len(a) == 1 {
		c.Authority = a[0]
	}
	if p, ok := peer.FromContext(ctx); ok {
		c.Local = p.LocalAddr
	}
	return c
}

// needsAuth reports whether calls of method must carry a token.
func (cfg ServerConfig) needsAuth(method string) bool {
	return !cfg.NoAuth && (cfg.AuthAdmin || !IsAdminMethod(method))
}

// unaryAuth and streamAuth authenticate a call that needs it and put its
// key in the context. (go-grpc-middleware's auth and selector interceptors
// did the same, at a fmt.Sprintf of the method name and a CallMeta per
// call: a tenth of what auth cost an Echo.)
func (cfg ServerConfig) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !cfg.needsAuth(info.FullMethod) {
		return handler(ctx, req)
	}
	ctx, err := cfg.authenticate(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (cfg ServerConfig) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !cfg.needsAuth(info.FullMethod) {
		return handler(srv, ss)
	}
	ctx, err := cfg.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	w := middleware.WrapServerStream(ss)
	w.WrappedContext = ctx
	return handler(srv, w)
}

func (cfg ServerConfig) authenticate(ctx context.Context, method string) (context.Context, error) {
	vals := metadata.ValueFromIncomingContext(ctx, MetadataKey)
	var (
		k   *Key
		err error
	)
	switch len(vals) {
	case 0:
		err = authFail("", AuthNoToken, "%v", errNoToken)
	case 1:
		cs, _ := ctx.Value(connCtxKey{}).(*connSpent)
		k, err = cfg.Verifier.verifyOnConn(cs, vals[0], CallFromContext(ctx, method))
	default:
		err = authFail("", AuthTokenCount, "%d authorization values, want one", len(vals))
	}
	if err == nil {
		return ContextWithKey(ctx, k), nil
	}
	ae := err.(*AuthError)
	if cfg.OnAuthFailure != nil {
		cfg.OnAuthFailure(ctx, method, ae)
	}
	attrs := []any{"method", method, "key_id", ae.KeyID, "kind", ae.Kind, "reason", ae.Reason}
	if p, ok := peer.FromContext(ctx); ok {
		attrs = append(attrs, "peer", p.Addr.String())
	}
	cfg.Logger.WarnContext(ctx, "auth refused", attrs...)
	if ae.Denied {
		return nil, status.Error(codes.PermissionDenied, PermissionDeniedMessage)
	}
	return nil, status.Error(codes.Unauthenticated, UnauthenticatedMessage)
}
