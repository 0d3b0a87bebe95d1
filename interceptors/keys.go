package interceptors

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// MinSecretLen is the shortest secret a key may have, in bytes.
const MinSecretLen = 32

// The scopes a key may grant. A key line with no scopes grants them all, as
// an authorized_keys line with no options does.
const (
	ScopeExec    = "exec"    // ExecService.Run, ExecutionService
	ScopeSession = "session" // ExecService.Session
	ScopeEcho    = "echo"    // EchoService
	ScopeAdmin   = "admin"   // health and reflection, when they are closed
	// ScopeFiles reads files: FileService Stat, List, Download, Usage and
	// ListUploads.
	ScopeFiles = "files"
	// ScopeFilesWrite changes files: FileService StartUpload, Upload,
	// QueryUpload, CancelUpload, Mkdir, Remove, Rename, Symlink and
	// SetAttributes. It does not imply ScopeFiles: a drop-box key may write
	// and not read.
	ScopeFilesWrite = "files-write"
	// ScopeReplay lets the key's tokens be used more than once inside the
	// skew window, for load-test tools that send one static header (ghz).
	// It weakens replay protection for that key on purpose, so it is never
	// implied: a key line with no scopes does not have it.
	ScopeReplay = "replay"
)

// AllScopes lists every scope a key line with no scopes grants, in the
// order of the docs. ScopeReplay is not among them. The file scopes are:
// a plain line's key has exec, which reaches every file its user can reach
// (`cat`, `tee`), so granting them adds no power, and leaving them out would
// only make `rexec cp` fail with the key rexecd makes on first start.
var AllScopes = []string{ScopeExec, ScopeSession, ScopeEcho, ScopeAdmin, ScopeFiles, ScopeFilesWrite}

// knownScope reports whether a key line may list s.
func knownScope(s string) bool { return s == ScopeReplay || slices.Contains(AllScopes, s) }

// Key is one line of a key file.
type Key struct {
	ID     string
	Secret []byte
	// Scopes granted; nil or empty means all (only on a line without
	// options: a line with options lists its scopes).
	Scopes []string

	// Cert, from the key-file option cert=NAME, binds the key to a client
	// certificate: it is accepted only on a connection whose verified client
	// certificate has NAME as its subject common name or as a DNS or URI SAN
	// (mTLS), and never on the raw transport. Empty: any connection.
	Cert string

	// Root, from root=DIR, confines the key's file calls to DIR (an absolute
	// path): they resolve every path inside it and reach nothing outside.
	// It does not confine commands: a key with exec or session and a root
	// runs commands as rexecd's user. Empty: file calls reach the whole
	// filesystem as rexecd's user may.
	Root string
	// Quota, from quota=SIZE, bounds the bytes under Root (finished files and
	// partial uploads); 0 means none. It needs Root.
	Quota int64

	// User, from user=NAME, runs the key's commands (and its file calls)
	// as that unix user, with a login's environment. Empty: as the user
	// rexecd runs as.
	User string
	// Limits, from memory=, pids=, cpu=, nofile= and fsize=, cap every
	// command of the key; a request may ask for less, never more.
	Limits Limits
	// Max, from max=N, bounds the key's commands running at once, beside
	// the server's --max-concurrent; 0 means only the server's bound.
	Max int

	// macs holds keyed HMAC states: Reset returns one to its keyed state
	// without the key schedule and allocations of hmac.New (measured: the
	// largest single cost of auth per call). Use a Key by pointer.
	macs sync.Pool
}

// macState is a keyed HMAC-SHA256 with room for the message it signs and
// for the sum, so that signing allocates nothing: a buffer on the stack
// would escape through the hash.Hash interface, 512 bytes a call.
type macState struct {
	h   hash.Hash
	buf [512]byte
	sum [sha256.Size]byte
}

// mac returns a keyed HMAC-SHA256, ready to write; put it back in k.macs.
func (k *Key) mac() *macState {
	if m, ok := k.macs.Get().(*macState); ok {
		m.h.Reset()
		return m
	}
	return &macState{h: hmac.New(sha256.New, k.Secret)}
}

// Allows reports whether k grants scope. A key with no scopes grants all
// but ScopeReplay, which must be listed.
func (k *Key) Allows(scope string) bool {
	if scope == ScopeReplay {
		return slices.Contains(k.Scopes, scope)
	}
	return len(k.Scopes) == 0 || slices.Contains(k.Scopes, scope)
}

// ListsScope reports whether k's line lists scope itself, as opposed to
// granting it by listing none. Powers that reach other keys' work (admin
// over every execution) need the scope listed.
func (k *Key) ListsScope(scope string) bool { return slices.Contains(k.Scopes, scope) }

// Line formats k as a key file line: id, secret, scopes, options. A key with
// options must have scopes: ParseKeys refuses the line of one without.
func (k *Key) Line() string {
	s := k.ID + " " + base64.StdEncoding.EncodeToString(k.Secret)
	if len(k.Scopes) > 0 {
		s += " " + strings.Join(k.Scopes, ",")
	}
	if opts := formatOptions(k); len(opts) > 0 {
		s += " " + strings.Join(opts, " ")
	}
	return s
}

// GenerateKey returns a new key with a 32-byte random secret.
func GenerateKey(id string, scopes ...string) (*Key, error) {
	if !validKeyID(id) {
		return nil, fmt.Errorf("key id %q: use 1 to 64 of a-z A-Z 0-9 . _ -", id)
	}
	k := &Key{ID: id, Secret: make([]byte, MinSecretLen), Scopes: scopes}
	if _, err := rand.Read(k.Secret); err != nil {
		return nil, err
	}
	return k, nil
}

// DefaultKeyPath is $XDG_CONFIG_HOME/rexec/keys, or ~/.config/rexec/keys.
func DefaultKeyPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no default key file: %w (give one with --key-file)", err)
	}
	return filepath.Join(dir, "rexec", "keys"), nil
}

// ParseKeys parses key file text: one key a line,
//
//	KEY_ID BASE64_SECRET [SCOPE,...] [NAME=VALUE ...]
//
// blank lines and `#` comments ignored. A line with options must list its
// scopes; an unknown option, a malformed value, an option given twice and a
// key id used twice are errors naming the line.
func ParseKeys(data []byte) ([]*Key, error) {
	var keys []*Key
	lineOf := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, err := parseKeyLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d%s", n, err)
		}
		if first, dup := lineOf[k.ID]; dup {
			return nil, fmt.Errorf("lines %d and %d both have key id %q: give each key its own id (a client could not tell which secret to sign with)", first, n, k.ID)
		}
		lineOf[k.ID] = n
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("no keys in it")
	}
	return keys, nil
}

// parseKeyLine parses one non-empty line. Its errors start with ": " or
// " (key ...): " so that the caller prefixes "line N".
func parseKeyLine(line string) (*Key, error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return nil, errors.New(": want KEY_ID BASE64_SECRET [SCOPE,...] [NAME=VALUE ...]")
	}
	k := &Key{ID: f[0]}
	if !validKeyID(k.ID) {
		return nil, fmt.Errorf(": key id %q: use 1 to 64 of a-z A-Z 0-9 . _ -", k.ID)
	}
	secret, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return nil, fmt.Errorf(" (key %q): secret is not standard base64", k.ID)
	}
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf(" (key %q): secret is %d bytes, want at least %d (make one with `rexec keygen`)", k.ID, len(secret), MinSecretLen)
	}
	k.Secret = secret
	rest := f[2:]
	if len(rest) > 0 && !strings.Contains(rest[0], "=") {
		for _, s := range strings.Split(rest[0], ",") {
			if !knownScope(s) {
				return nil, fmt.Errorf(" (key %q): unknown scope %q (known: %s,%s)", k.ID, s, strings.Join(AllScopes, ","), ScopeReplay)
			}
			k.Scopes = append(k.Scopes, s)
		}
		rest = rest[1:]
	}
	if len(rest) > 0 && len(k.Scopes) == 0 {
		return nil, fmt.Errorf(" (key %q): a line with options (%s) must list its scopes before them, e.g. `exec,session`: no scopes means all only on a line without options", k.ID, strings.Join(rest, " "))
	}
	if err := parseOptions(k, rest); err != nil {
		return nil, fmt.Errorf(" (key %q): %w", k.ID, err)
	}
	return k, nil
}

// LoadKeyFile reads and parses a key file. It refuses a file that group or
// others may read or write, as ssh refuses such a private key.
func LoadKeyFile(path string) ([]*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is open to group or others (mode %04o): run `chmod 600 %s`", path, perm, path)
	}
	if fi.Size() > 1<<20 {
		return nil, fmt.Errorf("key file %s is over 1 MiB: not a key file", path)
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	keys, err := ParseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return keys, nil
}

// EnsureKeyFile creates a key file at path with one new key (id "default",
// all scopes), mode 0600, unless a file is there already. It reports whether
// it created one.
func EnsureKeyFile(path string) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	k, err := GenerateKey("default")
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return false, err
	}
	_, err = fmt.Fprintf(f, "# rexec keys: KEY_ID BASE64_SECRET [SCOPE,...] [NAME=VALUE ...]; no scopes means all (%s)\n%s\n",
		strings.Join(AllScopes, ","), k.Line())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err == nil, err
}

// KeyRing is the set of keys a server accepts. Replace swaps the whole set at
// once (rotation), safe while calls are being verified.
type KeyRing struct {
	keys atomic.Pointer[map[string]*Key]
}

// NewKeyRing returns a ring holding keys.
func NewKeyRing(keys []*Key) *KeyRing {
	r := &KeyRing{}
	r.Replace(keys)
	return r
}

// Replace makes keys the ring's whole set.
func (r *KeyRing) Replace(keys []*Key) {
	m := make(map[string]*Key, len(keys))
	for _, k := range keys {
		m[k.ID] = k
	}
	r.keys.Store(&m)
}

// Lookup returns the key with id, or nil.
func (r *KeyRing) Lookup(id string) *Key { return (*r.keys.Load())[id] }

// All returns the keys, in no particular order.
func (r *KeyRing) All() []*Key {
	m := *r.keys.Load()
	keys := make([]*Key, 0, len(m))
	for _, k := range m {
		keys = append(keys, k)
	}
	return keys
}

// Len is the number of keys.
func (r *KeyRing) Len() int { return len(*r.keys.Load()) }
