package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
)

func run(t *testing.T, name string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = testenv.RepoRoot()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func TestGrpcurl(t *testing.T) {
	grpcurl := testenv.Tool(t, "grpcurl")
	srv := testenv.StartServer(t, testenv.Options{})

	// list and describe need no .proto files: reflection answers.
	out, stderr, err := run(t, grpcurl, "-plaintext", srv.Addr, "list")
	if err != nil {
		t.Fatalf("list: %v %s", err, stderr)
	}
	for _, svc := range []string{"rexec.v1.ExecService", "rexec.v1.EchoService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !strings.Contains(out, svc) {
			t.Errorf("list lacks %s:\n%s", svc, out)
		}
	}
	out, stderr, err = run(t, grpcurl, "-plaintext", srv.Addr, "describe", "rexec.v1.ExecService")
	if err != nil || !strings.Contains(out, "rpc Run ( .rexec.v1.RunRequest ) returns ( stream .rexec.v1.RunResponse )") {
		t.Errorf("describe: %v %s\n%s", err, stderr, out)
	}

	// An authorized call, as README shows it.
	tok := interceptors.Mint(srv.Key, "/rexec.v1.ExecService/Run", srv.Addr, time.Now())
	out, stderr, err = run(t, grpcurl, "-plaintext", "-H", "authorization: "+tok,
		"-d", `{"shell":"echo hi; exit 3"}`, srv.Addr, "rexec.v1.ExecService/Run")
	if err != nil {
		t.Fatalf("authorized Run: %v %s", err, stderr)
	}
	events := decodeJSONStream(t, out)
	if len(events) != 3 || events[0]["event"]["started"] == nil || events[2]["event"]["exited"] == nil {
		t.Fatalf("events %v: want started, stdout, exited", events)
	}
	stdout := events[1]["event"]["stdout"].(map[string]any)
	if data, _ := base64.StdEncoding.DecodeString(stdout["data"].(string)); string(data) != "hi\n" {
		t.Errorf("stdout %q", data)
	}
	if code := events[2]["event"]["exited"].(map[string]any)["exitCode"]; code != float64(3) {
		t.Errorf("exit code %v, want 3", code)
	}

	// The same token again is a replay; no token at all is refused alike.
	for name, hdr := range map[string][]string{"replayed": {"-H", "authorization: " + tok}, "no token": nil} {
		args := append(append([]string{"-plaintext"}, hdr...), "-d", `{"shell":"echo hi"}`, srv.Addr, "rexec.v1.ExecService/Run")
		_, stderr, err := run(t, grpcurl, args...)
		if err == nil || !strings.Contains(stderr, "Code: Unauthenticated") {
			t.Errorf("%s: %v, stderr %q: want Unauthenticated", name, err, stderr)
		}
	}

	// Health answers without a token.
	out, _, err = run(t, grpcurl, "-plaintext", srv.Addr, "grpc.health.v1.Health/Check")
	if err != nil || !strings.Contains(out, `"SERVING"`) {
		t.Errorf("health: %v %s", err, out)
	}
}

// TestGrpcurlExecutions: grpcurl alone, as README shows it, starts a
// detached command, lists executions and reads a journal by id.
func TestGrpcurlExecutions(t *testing.T) {
	grpcurl := testenv.Tool(t, "grpcurl")
	srv := testenv.StartServer(t, testenv.Options{})
	call := func(method, body string) string {
		t.Helper()
		tok := interceptors.Mint(srv.Key, "/"+method, srv.Addr, time.Now())
		out, stderr, err := run(t, grpcurl, "-plaintext", "-H", "authorization: "+tok, "-d", body, srv.Addr, method)
		if err != nil {
			t.Fatalf("%s: %v %s", method, err, stderr)
		}
		return out
	}
	out, _, _ := run(t, grpcurl, "-plaintext", srv.Addr, "list")
	if !strings.Contains(out, "rexec.v1.ExecutionService") {
		t.Errorf("list lacks rexec.v1.ExecutionService:\n%s", out)
	}
	started := decodeJSONStream(t, call("rexec.v1.ExecService/Run", `{"shell":"echo from-the-journal; exit 4","lifetime":"LIFETIME_DETACHED"}`))
	if len(started) != 1 || started[0]["event"]["started"] == nil {
		t.Fatalf("detached Run: %v, want one started event", started)
	}
	id := started[0]["event"]["started"].(map[string]any)["executionId"].(string)
	var listed struct {
		Executions []struct {
			ExecutionID string `json:"executionId"`
			State       string `json:"state"`
			Exited      struct {
				ExitCode int `json:"exitCode"`
			} `json:"exited"`
		} `json:"executions"`
	}
	waitFor(t, "the detached command's end", func() bool {
		if err := json.Unmarshal([]byte(call("rexec.v1.ExecutionService/ListExecutions", `{"all":true}`)), &listed); err != nil {
			t.Fatal(err)
		}
		return len(listed.Executions) == 1 && listed.Executions[0].State == "EXECUTION_STATE_ENDED"
	})
	if e := listed.Executions[0]; e.ExecutionID != id || e.Exited.ExitCode != 4 {
		t.Errorf("listed %+v", listed)
	}
	logs := decodeJSONStream(t, call("rexec.v1.ExecutionService/Logs", `{"executionId":"`+id+`"}`))
	if len(logs) != 3 || logs[0]["execution"] == nil || logs[1]["event"]["stdout"] == nil || logs[2]["event"]["exited"] == nil {
		t.Fatalf("logs: %v, want the execution, its stdout, its exit", logs)
	}
	data, _ := base64.StdEncoding.DecodeString(logs[1]["event"]["stdout"].(map[string]any)["data"].(string))
	if string(data) != "from-the-journal\n" {
		t.Errorf("logs stdout %q", data)
	}
}

func TestBufGeneratedSchemaWithGrpcurl(t *testing.T) {
	buf := testenv.Tool(t, "buf")
	grpcurl := testenv.Tool(t, "grpcurl")
	srv := testenv.StartServer(t, testenv.Options{})

	// buf builds the schema from proto/ alone; grpcurl uses it instead of reflection.
	image := filepath.Join(t.TempDir(), "rexec.binpb")
	if _, stderr, err := run(t, buf, "build", "-o", image); err != nil {
		t.Fatalf("buf build: %v %s", err, stderr)
	}
	tok := interceptors.Mint(srv.Key, "/rexec.v1.EchoService/Echo", srv.Addr, time.Now())
	out, stderr, err := run(t, grpcurl, "-plaintext", "-use-reflection=false", "-protoset", image,
		"-H", "authorization: "+tok, "-d", `{"message":"hello","upper":true}`, srv.Addr, "rexec.v1.EchoService/Echo")
	if err != nil || !strings.Contains(out, `"HELLO"`) {
		t.Fatalf("echo through a buf-built protoset: %v %s %s", err, out, stderr)
	}

	// buf curl, buf's own client, through reflection.
	tok = interceptors.Mint(srv.Key, "/rexec.v1.EchoService/Echo", srv.Addr, time.Now())
	out, stderr, err = run(t, buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge",
		"-H", "authorization: "+tok, "-d", `{"message":"buf"}`, "http://"+srv.Addr+"/rexec.v1.EchoService/Echo")
	if err != nil || !strings.Contains(out, `"buf"`) {
		t.Errorf("buf curl: %v %s %s", err, out, stderr)
	}
}

func TestBufLintAndGeneratedCodeFresh(t *testing.T) {
	buf := testenv.Tool(t, "buf")
	if _, stderr, err := run(t, buf, "lint"); err != nil {
		t.Fatalf("buf lint: %v %s", err, stderr)
	}
	// Generate into a scratch dir and compare with the committed gen/.
	dir := t.TempDir()
	tmpl := `{"version":"v2","managed":{"enabled":true,"override":[{"file_option":"go_package_prefix","value":"github.com/rexec/rexec/gen"}]},` +
		`"plugins":[{"local":"` + testenv.Tool(t, "protoc-gen-go") + `","out":"` + dir + `","opt":"paths=source_relative"},` +
		`{"local":"` + testenv.Tool(t, "protoc-gen-go-grpc") + `","out":"` + dir + `","opt":"paths=source_relative"}]}`
	if _, stderr, err := run(t, buf, "generate", "--template", tmpl); err != nil {
		t.Fatalf("buf generate: %v %s", err, stderr)
	}
	for _, f := range []string{"exec.pb.go", "exec_grpc.pb.go", "echo.pb.go", "echo_grpc.pb.go", "files.pb.go", "files_grpc.pb.go", "execution.pb.go", "execution_grpc.pb.go"} {
		got, err1 := os.ReadFile(filepath.Join(dir, "rexec/v1", f))
		want, err2 := os.ReadFile(filepath.Join(testenv.RepoRoot(), "gen/rexec/v1", f))
		if err1 != nil || err2 != nil || !bytes.Equal(got, want) {
			t.Errorf("gen/rexec/v1/%s is stale: run scripts/generate.sh (%v %v)", f, err1, err2)
		}
	}
}

func decodeJSONStream(t *testing.T, s string) []map[string]map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	var out []map[string]map[string]any
	for dec.More() {
		var m map[string]map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("grpcurl output: %v\n%s", err, s)
		}
		out = append(out, m)
	}
	return out
}
