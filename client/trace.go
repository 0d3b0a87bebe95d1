package client

import (
	"context"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// traceDialOption passes the trace context on: every call carries the W3C
// traceparent (and tracestate) of the span in its context, if any, so that
// rexecd's span of the call is that span's child. The client span itself
// comes from the global OpenTelemetry tracer provider: none (no cost but
// the header) unless the program set one.
func traceDialOption() grpc.DialOption {
	return grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithPropagators(propagation.TraceContext{})))
}

// WithTraceParent makes the trace context given as W3C traceparent and
// tracestate values (as in $TRACEPARENT and $TRACESTATE, which some CLIs
// and CI systems set) the parent of calls whose context carries no span. An
// empty or malformed traceparent is ignored, as the W3C spec says.
func WithTraceParent(traceparent, tracestate string) Option {
	return func(o *options) {
		ctx := propagation.TraceContext{}.Extract(context.Background(),
			propagation.MapCarrier{"traceparent": traceparent, "tracestate": tracestate})
		sc := trace.SpanContextFromContext(ctx)
		if !sc.IsValid() {
			return
		}
		parent := func(ctx context.Context) context.Context {
			if trace.SpanContextFromContext(ctx).IsValid() {
				return ctx
			}
			return trace.ContextWithRemoteSpanContext(ctx, sc)
		}
		o.dialOpts = append(o.dialOpts,
			grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				return invoker(parent(ctx), method, req, reply, cc, opts...)
			}),
			grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
				return streamer(parent(ctx), desc, cc, method, opts...)
			}))
	}
}
