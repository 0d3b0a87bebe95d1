package cli

import (
	"fmt"
	"strings"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
)

// envList is a repeatable KEY=VALUE flag.
type envList []string

func (e *envList) String() string { return strings.Join(*e, ",") }

// Type names the value in help.
func (e *envList) Type() string { return "KEY=VALUE" }

// Set adds one entry.
func (e *envList) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

// limitList collects --limit NAME=VALUE flags, in the key file's words.
type limitList struct{ l interceptors.Limits }

func (f *limitList) String() string { return "" }

// Type names the value in help.
func (f *limitList) Type() string { return "NAME=VALUE" }

// Set parses one limit.
func (f *limitList) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("%q is not NAME=VALUE (names: %s)", v, interceptors.LimitNames())
	}
	return f.l.SetLimit(name, value)
}

// proto is the request's Limits message, nil when no limit was given.
func (f *limitList) proto() *rexecv1.Limits {
	if f.l.IsZero() {
		return nil
	}
	return &rexecv1.Limits{MemoryBytes: uint64(f.l.Memory), Pids: uint64(f.l.Pids), MilliCpu: uint64(f.l.MilliCPU),
		Nofile: uint64(f.l.NoFile), FsizeBytes: uint64(f.l.FSize)}
}

// localeVars are the variables the client sends for the command's
// environment: Debian's ssh_config has "SendEnv LANG LC_*". (The server
// starts commands with a login's environment, none of its own.)
var localeVars = []string{"LANG", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE", "LC_MONETARY",
	"LC_MESSAGES", "LC_PAPER", "LC_NAME", "LC_ADDRESS", "LC_TELEPHONE", "LC_MEASUREMENT", "LC_IDENTIFICATION"}

// localeEnv is the locale variables set in the client's environment, as
// KEY=VALUE entries; --env entries come after them and override them.
func localeEnv(getenv func(string) string) []string {
	var env []string
	for _, k := range localeVars {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}
