package files

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// usage is what the quota of c's root counts: the bytes of its regular
// files (from a walk at most QuotaRescan old, plus what rexec wrote and
// removed since) and the declared sizes of the partial uploads (states)
// into it, which are their reservations. partial is the latter alone.
func (s *Service) usage(c *callFS, st *store, states []*uploadState) (used, files, partial int64, err error) {
	known := make(map[string]bool, len(states))
	for _, p := range states {
		partial += p.Size
		known[p.ID] = true
	}
	st.lmu.Lock()
	defer st.lmu.Unlock()
	now := s.cfg.Now()
	if st.walked.IsZero() || now.Sub(st.walked) >= s.cfg.QuotaRescan {
		b, n, err := c.walk(known)
		if err != nil {
			return 0, 0, 0, err
		}
		st.used, st.files, st.walked = b, n, now
	}
	return st.used + partial, st.files, partial, nil
}

// counted adds what rexec just wrote (or, negative, removed) to the count
// of the root's tree, until its next walk.
func (st *store) counted(bytes int64) {
	st.lmu.Lock()
	defer st.lmu.Unlock()
	st.used += bytes
}

// recount makes the next quota check walk the tree again (after a removal
// whose size rexec did not count).
func (st *store) recount() {
	st.lmu.Lock()
	defer st.lmu.Unlock()
	st.walked = time.Time{}
}

// walk counts the regular files under c's root and their bytes, without
// following symlinks. The partial files of the uploads in skip are left
// out: their declared sizes count instead. Everything else in the partial
// directory counts, so nothing can be hidden from the quota there.
func (c *callFS) walk(skip map[string]bool) (bytes, files int64, err error) {
	stack := []string{"."}
	for len(stack) > 0 {
		dir := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		d, err := c.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			if dir == "." {
				return 0, 0, err
			}
			continue // gone, swapped for a symlink, or unreadable: not counted
		}
		for {
			ents, err := d.ReadDir(1024)
			for _, e := range ents {
				name := filepath.Join(dir, e.Name())
				switch {
				case e.IsDir():
					stack = append(stack, name)
				case e.Type().IsRegular():
					if id, ext, _ := strings.Cut(e.Name(), "."); dir == c.partialDir && ext == "part" && skip[id] {
						continue
					}
					if fi, err := e.Info(); err == nil {
						bytes += fi.Size()
						files++
					}
				}
			}
			if errors.Is(err, io.EOF) || len(ents) == 0 {
				break
			}
			if err != nil {
				break
			}
		}
		d.Close()
	}
	return bytes, files, nil
}

// Usage says what the key's root holds, its quota, and its filesystem's
// size.
func (s *Service) Usage(ctx context.Context, _ *rexecv1.UsageRequest) (*rexecv1.UsageResponse, error) {
	c, err := s.begin(ctx)
	if err != nil {
		return nil, toStatus("", err)
	}
	defer c.Close()
	st := s.storeOf(c)
	s.sweep(c, st, true)
	states, _, err := c.listStates()
	if err != nil {
		return nil, toStatus("", err)
	}
	resp := &rexecv1.UsageResponse{QuotaBytes: c.key.Quota}
	top := c.home
	if c.rooted {
		top = "."
		resp.Root = c.key.Root
		if resp.UsedBytes, resp.Files, resp.PartialBytes, err = s.usage(c, st, states); err != nil {
			return nil, toStatus("", err)
		}
	} else {
		for _, p := range states {
			if p.Key == c.key.ID {
				resp.PartialBytes += p.Size
			}
		}
	}
	d, err := c.OpenFile(top, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, toStatus(top, err)
	}
	defer d.Close()
	if resp.FsTotalBytes, resp.FsFreeBytes, err = statfs(d); err != nil {
		return nil, toStatus(top, err)
	}
	return resp, nil
}
