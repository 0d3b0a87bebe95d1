package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// helloSource is the anchor of the cold-start rows: the smallest Go program
// that prints, so that what rexec adds to a process's start is measured
// against what any Go process pays on this machine.
const helloSource = `package main

import "fmt"

func main() { fmt.Println("hello, world") }
`

// Hello returns the path of a Go hello-world binary, built once per run by
// the same toolchain as rexec.
func (e *Env) Hello(ctx context.Context) (string, error) {
	if e.hello != "" {
		return e.hello, nil
	}
	bin, err := e.Bin(ctx)
	if err != nil {
		return "", err
	}
	src := filepath.Join(bin, "hello-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	for name, text := range map[string]string{"main.go": helloSource, "go.mod": "module hello\n\ngo 1.26\n"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(text), 0o644); err != nil {
			return "", err
		}
	}
	out := filepath.Join(bin, "hello")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
	cmd.Dir = src
	// Outside this module: no workspace, no module proxy needed.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build hello: %w: %s", err, b)
	}
	e.hello = out
	return out, nil
}
