package rawserver_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/rawsock"
	"github.com/rexec/rexec/rawsock/rawserver"
)

// TestIdleConnectionClosed: an authenticated connection that runs no
// command is closed after Config.IdleTimeout with an Unavailable error
// frame that says why; one whose command runs longer than that, or that
// keeps sending frames, is not. Before, it stayed open forever.
func TestIdleConnectionClosed(t *testing.T) {
	const idle = 300 * time.Millisecond
	s := start(t, rawserver.Config{IdleTimeout: idle})
	ctx := context.Background()

	busy := s.dial(t)
	ex, err := busy.Run(ctx, &rexecv1.RunRequest{Shell: "sleep 1; echo done"}, io.Discard, io.Discard)
	if err != nil || ex.GetExitCode() != 0 {
		t.Fatalf("a command running past the idle timeout: %v %v, want it to run to its end", ex, err)
	}
	// Frames more often than the timeout keep it open.
	for range 8 {
		time.Sleep(idle / 3)
		if _, err := busy.Echo(ctx, "here", false); err != nil {
			t.Fatalf("a connection sending a frame every %v was closed: %v", idle/3, err)
		}
	}

	quiet := s.dial(t)
	time.Sleep(4 * idle)
	_, err = quiet.Echo(ctx, "late", false)
	var re *rawsock.Error
	if !errors.As(err, &re) || re.Code != rawsock.CodeUnavailable || !strings.Contains(re.Message, "ran no command for 300ms") {
		t.Fatalf("echo after %v idle: %v, want Unavailable saying the connection was idle", 4*idle, err)
	}
	if _, err := quiet.Echo(ctx, "again", false); err == nil {
		t.Error("the idle connection is still open")
	}
	if !strings.Contains(s.log.String(), "raw connection closed: idle") {
		t.Errorf("the server log does not say it closed an idle connection:\n%s", s.log.String())
	}
}
