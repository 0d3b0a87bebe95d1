package fleet

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/rexec/rexec/client/hostset"
)

// Gather is clush -b's output: nothing while the targets run, then, at
// Close, one block for each set of targets whose stdout, stderr, exit status
// and messages are identical, headed by the set folded (node[01-05,07])
// and its size. The stdout block goes to Stdout; the stderr and the
// messages, when there are any, follow in a block of their own on Stderr.
// A target's output is spooled (in memory up to 1 MiB, then to a temporary
// file) until it ends; a target whose output equals an earlier one's keeps
// nothing.
type Gather struct {
	Stdout, Stderr io.Writer
	// Messages are the lines about a target's end; by default none.
	Messages func(r *Result) []string

	mu      sync.Mutex
	running map[string]*gatherTarget // by Target.Addr
	groups  map[[sha256.Size]byte]*gatherGroup
	order   []*gatherGroup
}

type gatherTarget struct {
	out, err *spool
}

type gatherGroup struct {
	names    []string
	out, err *spool
	header   string
	messages []string
	class    Class
}

// Start implements Output.
func (g *Gather) Start(t *Target) (io.Writer, io.Writer, error) {
	gt := &gatherTarget{out: newSpool(), err: newSpool()}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running == nil {
		g.running = map[string]*gatherTarget{}
	}
	g.running[t.Addr] = gt
	return gt.out, gt.err, nil
}

// Done implements Output.
func (g *Gather) Done(r *Result) {
	var msgs []string
	if g.Messages != nil {
		msgs = g.Messages(r)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	gt := g.running[r.Target.Addr]
	delete(g.running, r.Target.Addr)
	if gt == nil {
		gt = &gatherTarget{out: newSpool(), err: newSpool()}
	}
	header := statusText(r)
	key := sha256.New()
	fmt.Fprintf(key, "%x\n%x\n%s\n%s", gt.out.sum(), gt.err.sum(), header, strings.Join(msgs, "\n"))
	var k [sha256.Size]byte
	key.Sum(k[:0])
	if grp, ok := g.groups[k]; ok {
		grp.names = append(grp.names, r.Target.Name)
		gt.out.close()
		gt.err.close()
		return
	}
	if g.groups == nil {
		g.groups = map[[sha256.Size]byte]*gatherGroup{}
	}
	grp := &gatherGroup{names: []string{r.Target.Name}, out: gt.out, err: gt.err, header: header, messages: msgs, class: r.Class}
	g.groups[k] = grp
	g.order = append(g.order, grp)
}

// statusText says how a target ended, for a block's header: nothing for
// exit 0.
func statusText(r *Result) string {
	switch {
	case r.Class == OK:
		return ""
	case r.Class != Failed:
		return string(r.Class)
	case r.Exited.GetSignalNumber() > 0:
		return fmt.Sprintf("killed by signal %s (exit %d)", r.Exited.GetSignal(), r.Status)
	}
	return fmt.Sprintf("exit %d", r.Status)
}

// Close writes the blocks: those of commands that exited 0 first, then the
// others, each kind in the order of their first names (node9 before
// node10).
func (g *Gather) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, grp := range g.order {
		slices.SortFunc(grp.names, hostset.Compare)
	}
	slices.SortStableFunc(g.order, func(a, b *gatherGroup) int {
		if (a.class == OK) != (b.class == OK) {
			if a.class == OK {
				return -1
			}
			return 1
		}
		return hostset.Compare(a.names[0], b.names[0])
	})
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	for _, grp := range g.order {
		head := fmt.Sprintf("%s (%d)", hostset.Fold(grp.names), len(grp.names))
		if grp.header != "" {
			head += ": " + grp.header
		}
		keep(writeBlock(g.Stdout, heading(head), grp.out, nil))
		if grp.err.size > 0 || len(grp.messages) > 0 {
			keep(writeBlock(g.Stderr, heading(head+": stderr"), grp.err, grp.messages))
		}
		grp.out.close()
		grp.err.close()
	}
	g.order, g.groups = nil, nil
	return first
}

// heading is a block's head between two rules of its length (at most 72).
func heading(head string) string {
	rule := strings.Repeat("-", min(len(head), 72))
	return rule + "\n" + head + "\n" + rule + "\n"
}

func writeBlock(w io.Writer, head string, body *spool, msgs []string) error {
	if _, err := io.WriteString(w, head); err != nil {
		return err
	}
	last, err := body.copyTo(w)
	if err != nil {
		return err
	}
	if body.size > 0 && last != '\n' {
		if _, err := io.WriteString(w, "\n"+NoNewline+"\n"); err != nil {
			return err
		}
	}
	for _, m := range msgs {
		if _, err := io.WriteString(w, m+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// spoolMemory is how much of one output a spool keeps in memory before it
// moves it to a temporary file.
const spoolMemory = 1 << 20

// spool keeps one output of one target and its hash: in memory while it is
// small, in an unlinked temporary file past spoolMemory.
type spool struct {
	h    hash.Hash
	mem  bytes.Buffer
	file *os.File
	size int64
}

func newSpool() *spool { return &spool{h: sha256.New()} }

func (s *spool) Write(p []byte) (int, error) {
	s.h.Write(p)
	s.size += int64(len(p))
	if s.file == nil && s.mem.Len()+len(p) <= spoolMemory {
		return s.mem.Write(p)
	}
	if s.file == nil {
		f, err := os.CreateTemp("", "rexec-gather-*")
		if err != nil {
			return 0, fmt.Errorf("--gather: spooling output: %w", err)
		}
		os.Remove(f.Name()) // it lives until closed
		s.file = f
		if _, err := s.mem.WriteTo(f); err != nil {
			return 0, fmt.Errorf("--gather: spooling output: %w", err)
		}
	}
	if _, err := s.file.Write(p); err != nil {
		return 0, fmt.Errorf("--gather: spooling output: %w", err)
	}
	return len(p), nil
}

func (s *spool) sum() []byte { return s.h.Sum(nil) }

// copyTo writes the spooled bytes to w and returns the last one.
func (s *spool) copyTo(w io.Writer) (byte, error) {
	if s.size == 0 {
		return 0, nil
	}
	if s.file == nil {
		b := s.mem.Bytes()
		_, err := w.Write(b)
		return b[len(b)-1], err
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	if _, err := io.Copy(w, s.file); err != nil {
		return 0, err
	}
	var last [1]byte
	_, err := s.file.ReadAt(last[:], s.size-1)
	return last[0], err
}

func (s *spool) close() {
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
	s.mem = bytes.Buffer{}
}
