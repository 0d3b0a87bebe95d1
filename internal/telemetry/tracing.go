package telemetry

import (
	"context"
	"fmt"
	"net/url"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
)

// Tracing is rexecd's OpenTelemetry tracing: a span per gRPC call but
// health and reflection (otelgrpc's server stats handler), the child of the
// caller's span when the call carries a W3C traceparent, with the command's
// start and end as events (Observer). Every call is sampled unless its
// traceparent says it is not.
type Tracing struct {
	tp *sdktrace.TracerProvider
}

// CheckEndpoint says what is wrong with an --otlp-endpoint value, or nil.
func CheckEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want the URL of an OTLP/gRPC collector: http://HOST:4317 (plaintext) or https://HOST:4317 (TLS)")
	}
	return nil
}

// NewTracing exports spans in batches to the OTLP/gRPC collector at
// endpoint (see CheckEndpoint). The exporter connects lazily and retries;
// a collector that is down costs dropped spans, never a failed call. The
// OTEL_EXPORTER_OTLP_* environment variables (headers, certificates,
// compression) apply, as in every OpenTelemetry SDK.
func NewTracing(ctx context.Context, endpoint, version string) (*Tracing, error) {
	if err := CheckEndpoint(endpoint); err != nil {
		return nil, err
	}
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	return NewTracingWith(version, sdktrace.WithBatcher(exp)), nil
}

// NewTracingWith builds the tracer provider with opts, e.g. an in-memory
// exporter in tests: sdktrace.WithSyncer(tracetest.NewInMemoryExporter()).
func NewTracingWith(version string, opts ...sdktrace.TracerProviderOption) *Tracing {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", "rexecd"),
		attribute.String("service.version", version)))
	if err != nil { // only for two schema URLs in conflict; ours has none
		res = resource.Default()
	}
	return &Tracing{tp: sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithResource(res)}, opts...)...)}
}

// ServerOption is the gRPC stats handler that makes the spans, for
// server.Config.Observe.
func (t *Tracing) ServerOption() grpc.ServerOption {
	return grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(t.tp),
		otelgrpc.WithPropagators(propagation.TraceContext{}),
		otelgrpc.WithMeterProvider(noop.NewMeterProvider()),
		// Probes every few seconds are not worth a span each.
		otelgrpc.WithFilter(filters.Not(filters.Any(filters.HealthCheck(), filters.ServicePrefix("grpc.reflection.")))),
	))
}

// Shutdown sends the spans still buffered and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.tp.Shutdown(ctx) }
