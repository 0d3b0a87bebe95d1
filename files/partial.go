package files

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// uploadState is what the server keeps of a partial upload on disk, beside
// its bytes: enough to go on after a restart without re-reading them.
type uploadState struct {
	V  int    `json:"v"`
	ID string `json:"id"`
	// Key is the id of the key that started it: no other key may touch it.
	Key string `json:"key"`
	// Path is the destination, a name in the key's FS.
	Path string `json:"path"`
	// The source's identity: the upload's size, and its mtime.
	Size      int64  `json:"size"`
	MtimeSec  int64  `json:"mtime_sec"`
	MtimeNsec int32  `json:"mtime_nsec"`
	Mode      uint32 `json:"mode"`
	Preserve  bool   `json:"preserve"`
	// Committed bytes are in the partial file and in Hash.
	Committed int64 `json:"committed"`
	// Hash is the SHA-256 state of the committed bytes
	// (encoding.BinaryMarshaler of crypto/sha256).
	Hash    []byte    `json:"hash"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

const stateVersion = 1

// maxStateFile bounds what loadState reads: a state is a few hundred bytes
// plus the path.
const maxStateFile = 64 << 10

func (st *uploadState) mtime() time.Time { return time.Unix(st.MtimeSec, int64(st.MtimeNsec)) }

// newUploadID is 16 random bytes in hex.
func newUploadID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	return hex.EncodeToString(b[:])
}

// validUploadID reports whether id could be one newUploadID made: it is
// used in file names, so nothing else is let near the filesystem.
func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (c *callFS) partPath(id string) string  { return filepath.Join(c.partialDir, id+".part") }
func (c *callFS) statePath(id string) string { return filepath.Join(c.partialDir, id+".json") }

// saveState writes st durably: a temporary file, fsync, rename over the old
// state, fsync of the directory. The bytes it counts must be synced first.
func (c *callFS) saveState(st *uploadState) error {
	st.V = stateVersion
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := c.statePath(st.ID) + ".tmp"
	f, err := c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = c.Rename(tmp, c.statePath(st.ID))
	}
	if err != nil {
		_ = c.Remove(tmp)
		return err
	}
	return c.syncDir(c.partialDir)
}

// errBadState is a state file that cannot be used; the sweep removes it.
var errBadState = errors.New("bad partial upload state")

// loadState reads the state of upload id. A missing one is fs.ErrNotExist;
// one that does not parse, or does not fit its partial file, errBadState.
func (c *callFS) loadState(id string) (*uploadState, error) {
	f, err := c.OpenFile(c.statePath(id), os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxStateFile+1))
	f.Close()
	if err != nil {
		return nil, err
	}
	var st uploadState
	if len(b) > maxStateFile || json.Unmarshal(b, &st) != nil || st.V != stateVersion || st.ID != id ||
		st.Size < 0 || st.Committed < 0 || st.Committed > st.Size || st.Key == "" || st.Path == "" {
		return nil, fmt.Errorf("%w: %s", errBadState, c.statePath(id))
	}
	if _, err := hashAt(&st); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errBadState, c.statePath(id), err)
	}
	return &st, nil
}

// hashAt is st's SHA-256 state, ready to take the bytes after Committed.
func hashAt(st *uploadState) (sha256Hash, error) {
	h := sha256.New().(sha256Hash)
	if len(st.Hash) == 0 && st.Committed == 0 {
		return h, nil
	}
	if err := h.UnmarshalBinary(st.Hash); err != nil {
		return nil, err
	}
	return h, nil
}

// sha256Hash is crypto/sha256's hash with its state (un)marshaling.
type sha256Hash interface {
	io.Writer
	Sum(b []byte) []byte
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// listStates reads every state in c's partial directory. Bad ones are
// returned by id in bad, for the sweep.
func (c *callFS) listStates() (states []*uploadState, bad []string, err error) {
	ids, err := c.partialIDs()
	if err != nil {
		return nil, nil, err
	}
	for id, hasState := range ids {
		if !hasState {
			continue
		}
		st, err := c.loadState(id)
		switch {
		case errors.Is(err, errBadState):
			bad = append(bad, id)
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, nil, err
		default:
			states = append(states, st)
		}
	}
	return states, bad, nil
}

// partialIDs lists the upload ids in c's partial directory, and whether
// each has a state file. A missing directory is empty.
func (c *callFS) partialIDs() (map[string]bool, error) {
	d, err := c.OpenFile(c.partialDir, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for _, n := range names {
		id, ext, _ := strings.Cut(n, ".")
		if !validUploadID(id) {
			continue
		}
		ids[id] = ids[id] || ext == "json"
	}
	return ids, nil
}

// dropPartial removes upload id's files.
func (c *callFS) dropPartial(id string) {
	_ = c.Remove(c.partPath(id))
	_ = c.Remove(c.statePath(id))
	_ = c.Remove(c.statePath(id) + ".tmp")
}

// syncDir fsyncs directory name, so that a rename in it is durable.
func (c *callFS) syncDir(name string) error {
	d, err := c.OpenFile(name, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// sweep removes c's partial uploads that expired (no byte for PartialTTL
// and no stream on them), bad state files, and stray files of neither.
// With lazy it does nothing when it swept less than a minute (or a TTL)
// ago. The caller holds st.mu, or sweep takes it.
func (s *Service) sweep(c *callFS, st *store, lock bool) {
	if lock {
		st.mu.Lock()
		defer st.mu.Unlock()
	}
	now := s.cfg.Now()
	if now.Sub(st.sweptAt) < min(time.Minute, s.cfg.PartialTTL/8) {
		return
	}
	st.sweptAt = now
	ids, err := c.partialIDs()
	if err != nil {
		s.cfg.Logger.Warn("cannot sweep partial uploads", "dir", c.describe(c.partialDir), "err", err)
		return
	}
	for id, hasState := range ids {
		if s.active(c, id) {
			continue
		}
		state, err := c.loadState(id)
		switch {
		case err == nil && now.Sub(state.Updated) < s.cfg.PartialTTL:
			continue
		case err == nil:
			s.cfg.Logger.Info("partial upload expired", "upload_id", id, "key_id", state.Key, "path", state.Path,
				"committed", state.Committed, "size", state.Size, "updated", state.Updated)
		case !hasState || errors.Is(err, fs.ErrNotExist):
			// A part file without a state: a crash between the two, or
			// junk. It goes once it is as old as an expired upload.
			if fi, err := c.Lstat(c.partPath(id)); err == nil && now.Sub(fi.ModTime()) < s.cfg.PartialTTL {
				continue
			}
		default:
			s.cfg.Logger.Warn("removing a partial upload whose state cannot be read", "upload_id", id, "err", err)
		}
		c.dropPartial(id)
	}
}

// describe names a name of c for the server's log.
func (c *callFS) describe(name string) string {
	if c.rooted {
		return filepath.Join(c.key.Root, name)
	}
	return name
}
