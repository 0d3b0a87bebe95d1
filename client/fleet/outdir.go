package fleet

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
)

// Dir is the --output-dir output: for each target, NAME.out and NAME.err
// hold what a single-target run of it prints on stdout and stderr, byte for
// byte (its messages included), and NAME.status its exit status and a
// newline, as `echo $?` prints it. Files are opened through an os.Root, so
// no name can reach outside the directory.
type Dir struct {
	// Messages are the lines about a target's end, appended to NAME.err;
	// by default none.
	Messages func(r *Result) []string

	root  *os.Root
	mu    sync.Mutex
	files map[string][2]*os.File // by Target.Addr
}

// NewDir makes the directory path (and its parents) if need be.
func NewDir(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("--output-dir: %w", err)
	}
	root, err := os.OpenRoot(path)
	if err != nil {
		return nil, fmt.Errorf("--output-dir: %w", err)
	}
	return &Dir{root: root, files: map[string][2]*os.File{}}, nil
}

// Start implements Output.
func (d *Dir) Start(t *Target) (io.Writer, io.Writer, error) {
	out, err := d.root.Create(t.Name + ".out")
	if err != nil {
		return nil, nil, fmt.Errorf("--output-dir: %w", err)
	}
	errf, err := d.root.Create(t.Name + ".err")
	if err != nil {
		out.Close()
		return nil, nil, fmt.Errorf("--output-dir: %w", err)
	}
	d.mu.Lock()
	d.files[t.Addr] = [2]*os.File{out, errf}
	d.mu.Unlock()
	return out, errf, nil
}

// Done implements Output. A target that never started gets no files.
func (d *Dir) Done(r *Result) {
	d.mu.Lock()
	f, ok := d.files[r.Target.Addr]
	delete(d.files, r.Target.Addr)
	d.mu.Unlock()
	if !ok {
		return
	}
	if d.Messages != nil {
		for _, m := range d.Messages(r) {
			io.WriteString(f[1], m+"\n")
		}
	}
	f[0].Close()
	f[1].Close()
	if err := d.root.WriteFile(r.Target.Name+".status", []byte(strconv.Itoa(r.Status)+"\n"), 0o644); err != nil {
		r.Err = fmt.Errorf("--output-dir: %w", err)
	}
}

// Close closes the directory.
func (d *Dir) Close() error { return d.root.Close() }
