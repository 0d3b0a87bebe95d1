package telemetry_test

import (
	"context"
	"io"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/telemetry"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/server"
)

// tracedServer is an in-process server whose spans go to an in-memory exporter.
func tracedServer(t *testing.T, maxConcurrent int) (*testenv.Server, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tr := telemetry.NewTracingWith("test", sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	o := testenv.Options{Server: server.Config{Observe: []grpc.ServerOption{tr.ServerOption()}}}
	o.Runner.Observer = telemetry.NewObserver(nil)
	o.Runner.MaxConcurrent = maxConcurrent
	return testenv.StartServer(t, o), exp
}

// spanNamed returns the one ended span of that name.
func spanNamed(t *testing.T, exp *tracetest.InMemoryExporter, name string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %s, want 1 (all: %v)", len(found), name, names(exp))
	}
	return found[0]
}

func names(exp *tracetest.InMemoryExporter) []string {
	var n []string
	for _, s := range exp.GetSpans() {
		n = append(n, s.Name)
	}
	return n
}

func attrs(ev sdktrace.Event) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, a := range ev.Attributes {
		m[a.Key] = a.Value
	}
	return m
}

// TestServerSpanIsChildOfClientSpan: a client that starts a span makes a
// call; rexecd's span of the call is that span's child (the W3C trace
// context crossed in the metadata), with the command's start and end as
// events. A health check makes no span.
func TestServerSpanIsChildOfClientSpan(t *testing.T) {
	t.Parallel()
	srv, exp := tracedServer(t, 0)
	c := srv.Client(t, nil)

	// The caller's own tracer: a span that the client's calls are part of.
	callerTP := sdktrace.NewTracerProvider()
	defer callerTP.Shutdown(context.Background())
	ctx, span := callerTP.Tracer("caller").Start(context.Background(), "deploy step")
	e, err := c.Run(ctx, &rexecv1.RunRequest{Shell: "echo hi; exit 3"}, io.Discard, io.Discard)
	span.End()
	if err != nil || e.GetExitCode() != 3 {
		t.Fatalf("Run: %v %v", e, err)
	}
	if _, err := healthpb.NewHealthClient(c.Conn()).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}

	s := spanNamed(t, exp, "rexec.v1.ExecService/Run")
	caller := span.SpanContext()
	if s.SpanContext.TraceID() != caller.TraceID() || s.Parent.SpanID() != caller.SpanID() || !s.Parent.IsRemote() {
		t.Errorf("server span: trace %s parent %s (remote %t), want the caller's span: trace %s span %s",
			s.SpanContext.TraceID(), s.Parent.SpanID(), s.Parent.IsRemote(), caller.TraceID(), caller.SpanID())
	}
	if s.SpanKind != trace.SpanKindServer {
		t.Errorf("span kind %v, want server", s.SpanKind)
	}
	if len(s.Events) != 2 || s.Events[0].Name != "started" || s.Events[1].Name != "exited" {
		t.Fatalf("events %v, want started, exited", s.Events)
	}
	started, exited := attrs(s.Events[0]), attrs(s.Events[1])
	if started["rexec.pid"].AsInt64() <= 0 || started["rexec.exec_id"].AsString() == "" {
		t.Errorf("started event %v: want a pid and an exec id", started)
	}
	if exited["rexec.exit_code"].AsInt64() != 3 || exited["rexec.reason"].AsString() != "exited" ||
		exited["rexec.stdout_bytes"].AsInt64() != 3 || exited["rexec.exec_id"] != started["rexec.exec_id"] {
		t.Errorf("exited event %v: want exit code 3, reason exited, 3 stdout bytes, the started exec id", exited)
	}
	if n := len(exp.GetSpans()); n != 1 {
		t.Errorf("%d spans, want only Run's (health checks are not traced): %v", n, names(exp))
	}
}

// TestSpanWithoutCallerIsRoot: a call with no trace context gets a root
// span; a command refused at the limit is an event too, and the call's
// span says ResourceExhausted.
func TestSpanWithoutCallerIsRoot(t *testing.T) {
	t.Parallel()
	srv, exp := tracedServer(t, 1)
	c := srv.Client(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	testenv.StartRun(t, ctx, c.Exec(), &rexecv1.RunRequest{Shell: "sleep 300"})
	_, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("second command at the limit: %v", err)
	}
	spans := exp.GetSpans() // the sleeper's call has not ended: only the refused one
	if len(spans) != 1 {
		t.Fatalf("spans %v, want the refused call's", names(exp))
	}
	s := spans[0]
	if s.Parent.IsValid() {
		t.Errorf("parent %v, want none", s.Parent)
	}
	if len(s.Events) != 1 || s.Events[0].Name != "refused" || attrs(s.Events[0])["rexec.reason"].AsString() != "concurrency_limit" {
		t.Errorf("events %v, want one refused, concurrency_limit", s.Events)
	}
	var code string
	for _, a := range s.Attributes {
		if a.Key == "rpc.response.status_code" {
			code = a.Value.AsString()
		}
	}
	if code != "RESOURCE_EXHAUSTED" {
		t.Errorf("rpc.response.status_code %q, want RESOURCE_EXHAUSTED (attributes %v)", code, s.Attributes)
	}
}
