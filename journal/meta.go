package journal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rexec/rexec/runner"
)

// metaFile holds what the journal knows of an execution besides its output,
// as a log of versions, one JSON object a line; the last whole line is the
// current version. The first is written as the execution starts (into its
// new directory), the next when its output is evicted and when it ends,
// each appended (appendMeta): a crash mid-write leaves a torn last line,
// and a reader takes the whole one before it. Appending costs the start
// and the end of a command no rename and no new inode (a temporary file
// renamed over the old one did: 38% of a journaled `true`'s samples went to
// those writes). A restart's recovery, and a file past metaCompactAt,
// write it whole again, one line, renamed over the old (writeMeta), so
// that nothing is ever appended after a torn line.
const metaFile = "meta.json"

// meta is metaFile's content.
type meta struct {
	ID       string    `json:"id"`
	Owner    string    `json:"owner"`
	Command  string    `json:"command"`
	Dir      string    `json:"dir,omitempty"`
	Lifetime Lifetime  `json:"lifetime"`
	TTY      bool      `json:"tty,omitempty"`
	Pid      int       `json:"pid"`
	Started  time.Time `json:"started"`

	// Set once the execution has ended.
	Ended   time.Time      `json:"ended,omitzero"`
	Exit    *runner.Result `json:"exit,omitempty"`
	LastSeq uint64         `json:"last_seq,omitempty"`
	Off     int64          `json:"output_bytes,omitempty"`

	EvictedBytes   int64 `json:"evicted_bytes,omitempty"`
	EvictedRecords int64 `json:"evicted_records,omitempty"`
	// Recovered says that a restart found the execution running (its
	// server was killed): its end is the restart's inference.
	Recovered bool `json:"recovered,omitempty"`
}

// metaCompactAt is the size past which appendMeta writes the file whole
// again: an execution whose output is evicted often appends a line each time.
const metaCompactAt = 64 << 10

// appendMeta appends m as the current version of dir's meta file,
// creating the file for a new execution.
func appendMeta(dir string, m *meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, metaFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	var size int64
	if fi, serr := f.Stat(); serr == nil {
		size = fi.Size()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && size > metaCompactAt {
		err = writeMeta(dir, m)
	}
	return err
}

// writeMeta writes dir's meta file whole, as the one version m: to a
// temporary file renamed over the old one.
func writeMeta(dir string, m *meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, metaFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, metaFile))
}

// readMeta reads the current version of dir's meta file: its last whole
// line that is a meta of this directory's execution. torn says that lines
// after it are not whole (a crash mid-append): the file must be written
// whole again before anything is appended to it.
func readMeta(dir string) (m *meta, torn bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, false, err
	}
	var lastErr error
	for len(b) > 0 {
		i := bytes.LastIndexByte(b[:len(b)-1], '\n') + 1
		line := bytes.TrimSpace(b[i:])
		b = b[:i]
		if len(line) == 0 {
			continue
		}
		var v meta
		if err := json.Unmarshal(line, &v); err != nil {
			lastErr, torn = fmt.Errorf("%s: %w", metaFile, err), true
			continue // a torn last line: the one before it holds
		}
		if v.ID != filepath.Base(dir) {
			return nil, false, fmt.Errorf("%s: id %q in the directory of %q", metaFile, v.ID, filepath.Base(dir))
		}
		return &v, torn, nil
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("%s: empty", metaFile)
	}
	return nil, false, lastErr
}
