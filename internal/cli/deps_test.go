package cli_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestRexecLinksNoServerCode: the rexec binary links no server, runner,
// reflection, metrics or tracing SDK: its cold start depends on what it
// links. Of OpenTelemetry it has the API and otelgrpc's client handler
// only, to pass a trace context on.
func TestRexecLinksNoServerCode(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "github.com/rexec/rexec/cmd/rexec").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{
		"github.com/rexec/rexec/runner", "github.com/rexec/rexec/server", "github.com/rexec/rexec/rawsock/rawserver",
		"github.com/rexec/rexec/internal/daemon", "github.com/rexec/rexec/internal/telemetry",
		"google.golang.org/grpc/reflection", "github.com/prometheus/",
		"go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/exporters/",
	}
	for _, p := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if p == f || strings.HasPrefix(p, strings.TrimSuffix(f, "/")+"/") {
				t.Errorf("rexec links %s", p)
			}
		}
	}
}
