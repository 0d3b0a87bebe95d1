package journal

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rexec/rexec/runner"
)

// metaFile holds what the journal knows of an execution besides its output;
// it is written when the execution starts, when its output is evicted, and
// when it ends, each time to a temporary file renamed over the old one, so
// that a reader (or a restart) sees one whole version or the other.
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

func writeMeta(dir string, m *meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, metaFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, metaFile))
}

func readMeta(dir string) (*meta, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, err
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", metaFile, err)
	}
	if m.ID != filepath.Base(dir) {
		return nil, fmt.Errorf("%s: id %q in the directory of %q", metaFile, m.ID, filepath.Base(dir))
	}
	return &m, nil
}
