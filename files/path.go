package files

import (
	"fmt"
	"path/filepath"
	"strings"
)

// MaxPath is the longest path a request may name, in bytes (Linux's PATH_MAX).
const MaxPath = 4096

// name turns the path a request gives in field into a name in c's FS, or
// refuses it. It does not confine: the FS does (an *os.Root refuses what
// leaves it). It refuses what no FS should see — a NUL byte, an over-long
// path — and, for a key with a root, absolute paths (with a message that
// says how to name paths instead) and the directory of partial uploads.
// An empty path is the root, or the home directory for a key without one.
func (c *callFS) name(field, p string) (string, error) {
	switch {
	case len(p) > MaxPath:
		return "", refuse(refuseInvalid, "%s is %d bytes long, over the limit of %d", field, len(p), MaxPath)
	case strings.IndexByte(p, 0) >= 0:
		return "", refuse(refuseInvalid, "%s %q has a NUL byte", field, p)
	}
	if !c.rooted {
		if p == "" {
			return c.home, nil
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(c.home, p)
		}
		return filepath.Clean(p), nil
	}
	if p == "" {
		return ".", nil
	}
	if filepath.IsAbs(p) {
		return "", refuse(refuseOutside, "%s %q is absolute: key %q is confined to its root, so name paths relative to it (like `:file` or `:dir/file`)", field, p, c.key.ID)
	}
	if first, _, _ := strings.Cut(filepath.Clean(p), "/"); first == partialDirName {
		return "", refuse(refuseOutside, "%s %q: %s is where the server keeps partial uploads (see `rexec ls --partial`)", field, p, partialDirName)
	}
	return p, nil
}

// display is how messages name a path: as the client gave it.
func display(p string) string {
	if p == "" {
		return "."
	}
	return p
}

// isTop reports whether name is the root itself (or, without a root, "/"
// or the home directory, where an empty path leads), which may not be
// removed, renamed or replaced: `rexec rm -r :` must not empty a home.
func (c *callFS) isTop(name string) bool {
	if c.rooted {
		return filepath.Clean(name) == "."
	}
	return name == "/" || name == c.home
}

// refuseFmt is fmt.Sprintf, kept apart so vet checks refuse's format.
var refuseFmt = fmt.Sprintf
