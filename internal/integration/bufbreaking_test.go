package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rexec/rexec/internal/testenv"
)

// git runs git in dir as a fixed author and fails the test on an error.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestBufBreakingScript runs scripts/buf-breaking.sh (what CI runs) on
// throwaway repositories holding this repository's buf.yaml and protos: an
// added field passes, a removed one fails and names the fix, the commit
// trailer lets it pass as a decision, and a shallow clone or a first commit
// passes with a message that says nothing was compared.
func TestBufBreakingScript(t *testing.T) {
	t.Parallel()
	buf := testenv.Tool(t, "buf")
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not on PATH")
	}
	script := filepath.Join(testenv.RepoRoot(), "scripts", "buf-breaking.sh")
	check := func(dir string) (string, error) {
		cmd := exec.Command("bash", script, dir)
		cmd.Env = append(os.Environ(), "BUF="+buf)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	repo := t.TempDir()
	git(t, repo, "init", "-q")
	for _, f := range []string{"buf.yaml", "proto/rexec/v1/exec.proto", "proto/rexec/v1/echo.proto"} {
		b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(repo, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-q", "-m", "protos")
	if out, err := check(repo); err != nil || !strings.Contains(out, "skipped: HEAD is the first commit") {
		t.Errorf("first commit: %v %s", err, out)
	}

	exec_ := filepath.Join(repo, "proto/rexec/v1/exec.proto")
	edit := func(old, new string) {
		t.Helper()
		b, _ := os.ReadFile(exec_)
		if !strings.Contains(string(b), old) {
			t.Fatalf("exec.proto has no %q", old)
		}
		if err := os.WriteFile(exec_, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edit("  uint64 max_output_bytes = 7;\n", "  uint64 max_output_bytes = 7;\n  string label = 99;\n")
	git(t, repo, "commit", "-q", "-am", "add a field")
	if out, err := check(repo); err != nil || !strings.Contains(out, "no breaking change") {
		t.Errorf("an added field: %v %s", err, out)
	}

	edit("  string dir = 4;\n", "")
	git(t, repo, "commit", "-q", "-am", "drop dir")
	out, err := check(repo)
	if err == nil || !strings.Contains(out, `Previously present field "4" with name "dir"`) || !strings.Contains(out, "API-Breaking-Change:") {
		t.Errorf("a removed field: %v %s; want a failure naming the field and the trailer", err, out)
	}

	git(t, repo, "commit", "-q", "--amend", "-m", "drop dir\n\nAPI-Breaking-Change: dir is gone; clients set it in the shell command")
	if out, err := check(repo); err != nil || !strings.Contains(out, "API-Breaking-Change: dir is gone") {
		t.Errorf("a removed field with the trailer: %v %s; want a pass that repeats the decision", err, out)
	}

	// A merge: HEAD~1 is main before it, and the trailer may be in any
	// commit of the merged branch.
	git(t, repo, "reset", "-q", "--hard", "HEAD~1")
	git(t, repo, "checkout", "-q", "-b", "feature")
	edit("  repeated string env = 3;\n", "")
	git(t, repo, "commit", "-q", "-am", "drop env\n\nAPI-Breaking-Change: env is gone")
	if err := os.WriteFile(filepath.Join(repo, "NOTES"), []byte("later\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, repo, "add", "NOTES")
	git(t, repo, "commit", "-q", "-m", "a later commit without the trailer")
	git(t, repo, "checkout", "-q", "main")
	git(t, repo, "merge", "-q", "--no-ff", "-m", "merge feature", "feature")
	if out, err := check(repo); err != nil || !strings.Contains(out, "API-Breaking-Change: env is gone") {
		t.Errorf("a merge whose branch decided the break: %v %s", err, out)
	}

	shallow := filepath.Join(t.TempDir(), "shallow")
	git(t, repo, "clone", "-q", "--depth", "1", "file://"+repo, shallow)
	if out, err := check(shallow); err != nil || !strings.Contains(out, "shallow clone") {
		t.Errorf("a shallow clone: %v %s", err, out)
	}
}
