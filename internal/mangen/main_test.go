package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestManPages: a page per command, each with its synopsis and examples.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	if err := write(dir); err != nil {
		t.Fatal(err)
	}
	for page, want := range map[string]string{
		"rexec.1":            "rexec version",
		"rexec-run.1":        "rexec run -it -- bash",
		"rexec-completion.1": "source <(rexec completion bash)",
		"rexec-keygen.1":     "USER.HOST-XXXXXX",
		"rexecd.8":           "--raw-listen",
	} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Error(err)
			continue
		}
		text := string(b)
		for _, w := range []string{".TH ", ".SH SYNOPSIS", ".SH EXAMPLE", want} {
			if !strings.Contains(text, w) {
				t.Errorf("%s lacks %q", page, w)
			}
		}
	}
}
