package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"

	"github.com/rexec/rexec/internal/telemetry"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/server"
)

// TestTraceContextFromCLI: the real rexec passes $TRACEPARENT on, so that
// the server's span of its call is the child of the span it names (as a CI
// job or a script traced by otel-cli would set it); a malformed one is
// ignored and the call works, with a root span.
func TestTraceContextFromCLI(t *testing.T) {
	t.Parallel()
	bin := binaries(t)
	exp := tracetest.NewInMemoryExporter()
	tr := telemetry.NewTracingWith("test", sdktrace.WithSyncer(exp))
	defer tr.Shutdown(context.Background())
	o := testenv.Options{Server: server.Config{Observe: []grpc.ServerOption{tr.ServerOption()}}}
	o.Runner.Observer = telemetry.NewObserver(nil)
	srv := testenv.StartServer(t, o)

	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		spanID  = "00f067aa0ba902b7"
	)
	for _, tc := range []struct{ name, traceparent, wantParent string }{
		{"traceparent", "00-" + traceID + "-" + spanID + "-01", spanID},
		{"malformed", "00-" + traceID + "-zz-01", ""},
	} {
		exp.Reset()
		cmd := exec.Command(filepath.Join(bin, "rexec"), "--addr", srv.Addr, "--key-file", srv.KeyFile, "run", "-n", "--", "true")
		cmd.Env = append(os.Environ(), "TRACEPARENT="+tc.traceparent, "TRACESTATE=vendor=x")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: rexec run: %v %s", tc.name, err, out)
		}
		spans := exp.GetSpans()
		if len(spans) != 1 {
			t.Fatalf("%s: %d spans, want the call's", tc.name, len(spans))
		}
		s := spans[0]
		switch {
		case tc.wantParent == "" && s.Parent.IsValid():
			t.Errorf("%s: parent %s, want a root span", tc.name, s.Parent.SpanID())
		case tc.wantParent != "" && (s.Parent.SpanID().String() != tc.wantParent || s.SpanContext.TraceID().String() != traceID):
			t.Errorf("%s: span in trace %s with parent %s, want trace %s, parent %s",
				tc.name, s.SpanContext.TraceID(), s.Parent.SpanID(), traceID, tc.wantParent)
		case tc.wantParent != "" && s.SpanContext.TraceState().Get("vendor") != "x":
			t.Errorf("%s: tracestate %q, want vendor=x", tc.name, s.SpanContext.TraceState())
		}
		if len(s.Events) != 2 {
			t.Errorf("%s: events %v, want started and exited", tc.name, s.Events)
		}
	}
}
