package integration

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/bench"
)

// collector is an OTLP/gRPC trace collector that keeps what it receives.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				c.services = append(c.services, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			c.spans = append(c.spans, ss.GetSpans()...)
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// TestOTLPExport: the real rexecd with --otlp-endpoint sends its spans to
// an OTLP collector — here one in the test, on loopback — by the time it
// has shut down: the call's span, with the command's events.
func TestOTLPExport(t *testing.T) {
	t.Parallel()
	bin := binaries(t)
	col := &collector{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, col)
	go gs.Serve(lis)
	defer gs.Stop()

	d, err := bench.StartDaemon(context.Background(), bin, "--otlp-endpoint", "http://"+lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Client()
	if err != nil {
		d.Stop()
		t.Fatal(err)
	}
	e, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: "exit 4"}, io.Discard, io.Discard)
	c.Close()
	d.Stop() // SIGTERM: rexecd sends the spans it still holds before it exits
	if !d.StoppedCleanly() {
		t.Error("rexecd did not exit 0 on SIGTERM")
	}
	if err != nil || e.GetExitCode() != 4 {
		t.Fatalf("Run: %v %v", e, err)
	}

	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.spans) != 1 {
		t.Fatalf("collector got %d spans, want the call's: %v", len(col.spans), col.spans)
	}
	s := col.spans[0]
	if s.GetName() != "rexec.v1.ExecService/Run" || s.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("span %q kind %v, want rexec.v1.ExecService/Run, server", s.GetName(), s.GetKind())
	}
	var events []string
	var exitCode int64 = -1
	for _, ev := range s.GetEvents() {
		events = append(events, ev.GetName())
		for _, a := range ev.GetAttributes() {
			if a.GetKey() == "rexec.exit_code" {
				exitCode = a.GetValue().GetIntValue()
			}
		}
	}
	if len(events) != 2 || events[0] != "started" || events[1] != "exited" || exitCode != 4 {
		t.Errorf("events %v with exit code %d, want started, exited with 4", events, exitCode)
	}
	if len(col.services) == 0 || col.services[0] != "rexecd" {
		t.Errorf("service.name %v, want rexecd", col.services)
	}
}

// TestOTLPCollectorDown: with --otlp-endpoint at a port where nothing
// listens, calls work as ever, and rexecd still stops within its bound
// (it gives up sending its spans after 5 s), with status 0.
func TestOTLPCollectorDown(t *testing.T) {
	t.Parallel()
	bin := binaries(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := lis.Addr().String()
	lis.Close()
	d, err := bench.StartDaemon(context.Background(), bin, "--otlp-endpoint", "http://"+closed)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Client()
	if err != nil {
		d.Stop()
		t.Fatal(err)
	}
	for i := range 3 {
		if e, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: "exit 5"}, io.Discard, io.Discard); err != nil || e.GetExitCode() != 5 {
			t.Fatalf("call %d with the collector down: %v %v", i, e, err)
		}
	}
	c.Close()
	d.Stop()
	if !d.StoppedCleanly() {
		t.Error("rexecd did not exit 0 on SIGTERM within 15 s with its OTLP collector down (its bound for the spans is 5 s)")
	}
}
