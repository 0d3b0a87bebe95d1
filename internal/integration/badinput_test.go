package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/runner"
)

// started counts the commands the server started, from its audit log.
func started(srv *testenv.Server) int {
	return strings.Count(srv.Log.String(), "msg=\"command started\"")
}

// servesNext checks that the server still runs a good command after a bad
// request, and that the bad request started none: exactly one more "command
// started" audit line, the good one's.
func servesNext(t *testing.T, srv *testenv.Server, before int) {
	t.Helper()
	c := srv.Client(t, nil)
	var out strings.Builder
	ex, err := c.Run(context.Background(), &rexecv1.RunRequest{Argv: []string{"echo", "next"}}, &out, io.Discard)
	if err != nil || ex.GetExitCode() != 0 || out.String() != "next\n" {
		t.Fatalf("the next good call: %v %v %q", ex, err, out.String())
	}
	if n := started(srv); n != before+1 {
		t.Errorf("%d commands started around one good call: the bad request started %d", n-before, n-before-1)
	}
}

// TestBadInputMatrix sends every kind of bad Run request the Go client can
// form to a real server. Each must fail with its exact code and a message
// that names the field, start nothing, and leave the server serving.
// (TestBadRequests in server/ covers a few of these rows; this is the full
// matrix.)
func TestBadInputMatrix(t *testing.T) {
	srv := testenv.StartServer(t, testenv.Options{Runner: runner.Options{MaxTimeout: time.Hour}})
	c := srv.Client(t, nil)
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	touch := "touch " + marker
	manyEnv := make([]string, 257)
	for i := range manyEnv {
		manyEnv[i] = "K=v"
	}
	big := strings.Repeat("x", 128<<10+1)
	cases := []struct {
		name  string
		req   *rexecv1.RunRequest
		code  codes.Code
		field string // the message must name it
	}{
		{"empty command", &rexecv1.RunRequest{}, codes.InvalidArgument, "command"},
		{"env only", &rexecv1.RunRequest{Env: []string{"A=1"}}, codes.InvalidArgument, "command"},
		{"shell and argv", &rexecv1.RunRequest{Shell: touch, Argv: []string{"touch", marker}}, codes.InvalidArgument, "command"},
		{"shell with NUL", &rexecv1.RunRequest{Shell: touch + "\x00; true"}, codes.InvalidArgument, "shell"},
		{"argv with NUL", &rexecv1.RunRequest{Argv: []string{"touch", marker + "\x00x"}}, codes.InvalidArgument, "argv"},
		{"argv[0] empty", &rexecv1.RunRequest{Argv: []string{"", marker}}, codes.InvalidArgument, "argv"},
		{"dir missing", &rexecv1.RunRequest{Shell: touch, Dir: filepath.Join(dir, "no", "such")}, codes.FailedPrecondition, "dir"},
		{"dir is a file", &rexecv1.RunRequest{Shell: touch, Dir: file}, codes.FailedPrecondition, "dir"},
		{"dir with NUL", &rexecv1.RunRequest{Shell: touch, Dir: dir + "\x00"}, codes.InvalidArgument, "dir"},
		{"env without =", &rexecv1.RunRequest{Shell: touch, Env: []string{"NOEQUALS"}}, codes.InvalidArgument, "env"},
		{"env empty key", &rexecv1.RunRequest{Shell: touch, Env: []string{"=v"}}, codes.InvalidArgument, "env"},
		{"env with NUL", &rexecv1.RunRequest{Shell: touch, Env: []string{"K=a\x00b"}}, codes.InvalidArgument, "env"},
		{"env 257 entries", &rexecv1.RunRequest{Shell: touch, Env: manyEnv}, codes.InvalidArgument, "env"},
		{"env over 128 KiB", &rexecv1.RunRequest{Shell: touch, Env: []string{"K=" + big}}, codes.InvalidArgument, "env"},
		{"argv over 128 KiB", &rexecv1.RunRequest{Argv: []string{"touch", marker, big}}, codes.InvalidArgument, "argv"},
		{"shell over 128 KiB", &rexecv1.RunRequest{Shell: touch + " #" + big}, codes.InvalidArgument, "shell"},
		{"negative timeout", &rexecv1.RunRequest{Shell: touch, Timeout: durationpb.New(-time.Second)}, codes.InvalidArgument, "timeout"},
		{"timeout over max", &rexecv1.RunRequest{Shell: touch, Timeout: durationpb.New(2 * time.Hour)}, codes.InvalidArgument, "timeout"},
		{"timeout huge", &rexecv1.RunRequest{Shell: touch, Timeout: &durationpb.Duration{Seconds: 1 << 62}}, codes.InvalidArgument, "timeout"},
		{"timeout mixed signs", &rexecv1.RunRequest{Shell: touch, Timeout: &durationpb.Duration{Seconds: 1, Nanos: -5}}, codes.InvalidArgument, "timeout"},
		// Past 4 MiB gRPC itself refuses the message before rexec sees it;
		// its message names the size, not a field.
		{"stdin over 4 MiB", &rexecv1.RunRequest{Shell: touch, Stdin: make([]byte, 4<<20+1)}, codes.ResourceExhausted, "larger than max"},
		{"env over 4 MiB", &rexecv1.RunRequest{Shell: touch, Env: []string{"K=" + strings.Repeat("y", 4<<20)}}, codes.ResourceExhausted, "larger than max"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := started(srv)
			_, err := c.Run(context.Background(), tc.req, io.Discard, io.Discard)
			st := status.Convert(err)
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.field) {
				t.Errorf("got %v %q, want %v naming %q", st.Code(), st.Message(), tc.code, tc.field)
			}
			if len(st.Message()) > 300 {
				t.Errorf("message is %d bytes long: it should be one short line", len(st.Message()))
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the bad request ran its command")
			}
			servesNext(t, srv, before)
		})
	}
}

// TestBadInputGrpcurl sends raw JSON through the real grpcurl binary:
// malformed JSON (unknown field, wrong type) is refused by grpcurl itself,
// naming the field, and never reaches the server; well-formed but bad
// requests get the server's status. The server serves the next call.
func TestBadInputGrpcurl(t *testing.T) {
	grpcurl := testenv.Tool(t, "grpcurl")
	srv := testenv.StartServer(t, testenv.Options{})
	marker := filepath.Join(t.TempDir(), "ran")
	big := base64.StdEncoding.EncodeToString(make([]byte, 4<<20+1))
	cases := []struct {
		name string
		json string
		want []string // all in grpcurl's output (stdout and stderr)
		ok   bool     // grpcurl exits 0: the call was made and ended OK
	}{
		// grpcurl parses the JSON before it dials: these never reach the server.
		{"unknown field", `{"shel":"touch ` + marker + `"}`, []string{"no known field named shel"}, false},
		{"wrong type", `{"shell":5}`, []string{"expecting string", "got 5"}, false},
		{"timeout not a duration", `{"shell":"touch ` + marker + `","timeout":"soon"}`, []string{"bad Duration", `"soon"`}, false},
		// grpcurl's JSON reader takes a scalar for a repeated field: argv is
		// then the one word "touch PATH", which is no executable. That is the
		// command's exit 127, data, not a gRPC error; nothing runs.
		{"argv not a list", `{"argv":"touch ` + marker + `"}`, []string{`"exitCode": 127`}, true},
		{"not JSON", `{"shell":`, []string{"Error"}, false},
		{"empty", `{}`, []string{"Code: InvalidArgument", "command"}, false},
		{"shell and argv", `{"shell":"touch ` + marker + `","argv":["true"]}`, []string{"Code: InvalidArgument", "both shell and argv"}, false},
		{"argv with NUL", `{"argv":["touch","` + marker + `\u0000"]}`, []string{"Code: InvalidArgument", "argv[1] contains a NUL byte"}, false},
		{"env without =", `{"shell":"touch ` + marker + `","env":["X"]}`, []string{"Code: InvalidArgument", "env[0]"}, false},
		{"negative timeout", `{"shell":"touch ` + marker + `","timeout":"-5s"}`, []string{"Code: InvalidArgument", "timeout"}, false},
		{"dir missing", `{"shell":"touch ` + marker + `","dir":"/no/such/dir"}`, []string{"Code: FailedPrecondition", "dir"}, false},
		{"over 4 MiB", `{"shell":"touch ` + marker + `","stdin":"` + big + `"}`, []string{"Code: ResourceExhausted", "larger than max"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := started(srv)
			tok := interceptors.Mint(srv.Key, "/rexec.v1.ExecService/Run", srv.Addr, time.Now())
			cmd := exec.Command(grpcurl, "-plaintext", "-H", "authorization: "+tok, "-d", "@",
				srv.Addr, "rexec.v1.ExecService/Run")
			var stdout, stderrBuf bytes.Buffer
			cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(tc.json), &stdout, &stderrBuf
			err := cmd.Run()
			out, stderr := stdout.String(), stderrBuf.String()
			if (err == nil) != tc.ok {
				t.Fatalf("grpcurl: %v, want ok=%v\n%s%s", err, tc.ok, out, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(out+stderr, w) {
					t.Errorf("output lacks %q:\n%s%s", w, out, stderr)
				}
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the bad request ran its command")
			}
			servesNext(t, srv, before)
		})
	}
}
