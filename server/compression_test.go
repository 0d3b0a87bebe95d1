package server_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/testenv"
)

// TestCompressedRequestsRefused: a gzip-compressed request is refused
// before it is inflated — unary (decoded before auth runs) and streaming,
// with a token and without — and nothing runs; the same calls uncompressed
// work. rexecd links gzip through its OTLP exporter, so without the refusal
// a caller without a token could make it inflate 4 MiB from a few KiB.
func TestCompressedRequestsRefused(t *testing.T) {
	t.Parallel()
	srv := testenv.StartServer(t, testenv.Options{})
	gz := client.WithDialOptions(grpc.WithDefaultCallOptions(grpc.UseCompressor(gzip.Name)))
	ctx := context.Background()
	refused := func(what string, err error) {
		t.Helper()
		if status.Code(err) != codes.Internal || !strings.Contains(status.Convert(err).Message(), "compressed requests are not accepted") {
			t.Errorf("%s, gzip-compressed: %v, want Internal saying compressed requests are not accepted", what, err)
		}
	}

	c := srv.Client(t, nil, gz)
	_, err := c.Echo(ctx, strings.Repeat("a", 64<<10), false)
	refused("Echo", err)
	_, err = c.Run(ctx, &rexecv1.RunRequest{Shell: "echo ran"}, io.Discard, io.Discard)
	refused("Run", err)

	noKey, err := client.New(srv.Addr, gz)
	if err != nil {
		t.Fatal(err)
	}
	defer noKey.Close()
	_, err = noKey.Echo(ctx, strings.Repeat("a", 64<<10), false)
	refused("Echo without a token", err)

	if strings.Contains(srv.Log.String(), "command started") {
		t.Error("a command started from a compressed request")
	}
	plain := srv.Client(t, nil)
	if out, err := plain.Echo(ctx, "hello", false); err != nil || out != "hello" {
		t.Errorf("uncompressed Echo after: %q %v", out, err)
	}
}
