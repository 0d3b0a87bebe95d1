// Package version names the build of rexec and rexecd: the module version
// the Go toolchain stamped into the binary, or one given at link time.
//
//	go build -ldflags "-X github.com/rexec/rexec/internal/version.Version=v1.2.3" ./cmd/...
//
// Without -ldflags, `go install github.com/rexec/rexec/cmd/rexec@v1.2.3`
// gives v1.2.3, and a build in a git checkout a pseudo-version with the
// commit (and +dirty for uncommitted changes).
package version

import (
	"runtime/debug"
	"sync"
)

// Version, when set with -ldflags -X, overrides what the build info says.
var Version string

// String is the version of this binary; "(devel)" when the toolchain
// stamped none (go test, go run outside a checkout).
func String() string { return get() }

var get = sync.OnceValue(func() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			rev = s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	if rev != "" {
		return "(devel) " + rev + dirty
	}
	return "(devel)"
})
