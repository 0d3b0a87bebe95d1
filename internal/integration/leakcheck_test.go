package integration

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rexec/rexec/internal/testenv"
)

// TestEveryTestPackageChecksLeaks keeps "goleak in every test package" true
// as packages are added: a directory with _test.go files must call goleak
// in one of them (VerifyTestMain, or Find as internal/cli does around
// testscript).
func TestEveryTestPackageChecksLeaks(t *testing.T) {
	t.Parallel()
	root := testenv.RepoRoot()
	tests := map[string]bool{} // dir -> some test file mentions goleak
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "tools") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dir, _ := filepath.Rel(root, filepath.Dir(path))
		tests[dir] = tests[dir] || strings.Contains(string(b), "goleak.")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(tests) == 0 {
		t.Fatal("found no test packages")
	}
	for dir, ok := range tests {
		if !ok {
			t.Errorf("%s has tests but no goleak check: add func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }", dir)
		}
	}
}
