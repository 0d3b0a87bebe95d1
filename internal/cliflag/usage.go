// Package cliflag holds what rexec's and rexecd's command lines share: flag
// values that read as people type them, and usage errors said in one line
// that names the flag and the fix, instead of a flag dump.
//
//	root.SetFlagErrorFunc(cliflag.FlagError)
//	...
//	if err := root.Execute(); err != nil {
//		fmt.Fprintln(stderr, cliflag.Line(root, args, err))
//	}
package cliflag

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// UsageError is a command line that was refused before anything ran.
type UsageError struct {
	Cmd *cobra.Command // the command whose flags or arguments were wrong
	Err error
}

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// FlagError is a cobra flag error func: it marks the error as a usage error
// of cmd.
func FlagError(cmd *cobra.Command, err error) error { return &UsageError{Cmd: cmd, Err: err} }

// Usagef returns a usage error of cmd with a message of its own.
func Usagef(cmd *cobra.Command, format string, a ...any) error {
	return &UsageError{Cmd: cmd, Err: fmt.Errorf(format, a...)}
}

// Line says a usage error in one line, prefixed with the program's name:
// what is wrong, the flag it concerns, and where the help is. args are the
// arguments the program was given, to recognise a long flag written with one
// dash (-timeout), which Go's flag package accepted and pflag reads as
// shorthands.
func Line(root *cobra.Command, args []string, err error) string {
	cmd := root
	var ue *UsageError
	if errors.As(err, &ue) && ue.Cmd != nil {
		cmd = ue.Cmd
	}
	where := root.Name() + ": "
	if cmd != root {
		where += strings.TrimPrefix(cmd.CommandPath(), root.Name()+" ") + ": "
	}
	help := cmd.CommandPath() + " --help"
	var (
		notExist *pflag.NotExistError
		noValue  *pflag.ValueRequiredError
		invalid  *pflag.InvalidValueError
		syntax   *pflag.InvalidSyntaxError
	)
	switch {
	case errors.As(err, &notExist):
		if long := oneDashLong(cmd, args); long != "" {
			return fmt.Sprintf("%s-%s: a long flag takes two dashes: --%s", where, long, long)
		}
		flag := "--" + notExist.GetSpecifiedName()
		if s := notExist.GetSpecifiedShortnames(); s != "" {
			flag = "-" + s[:1]
		}
		return fmt.Sprintf("%sunknown flag %s (%s lists the flags)", where, flag, help)
	case errors.As(err, &noValue):
		return fmt.Sprintf("%s%s needs a value (%s says which)", where, flagName(noValue.GetFlag()), help)
	case errors.As(err, &invalid):
		return fmt.Sprintf("%s%s %q: %v", where, flagName(invalid.GetFlag()), invalid.GetValue(), errors.Unwrap(invalid))
	case errors.As(err, &syntax):
		return fmt.Sprintf("%sbad flag syntax %q (%s)", where, syntax.GetSpecifiedFlag(), help)
	}
	return fmt.Sprintf("%s%v (%s)", where, err, help)
}

// flagName is how a user would have typed f.
func flagName(f *pflag.Flag) string {
	if f == nil {
		return "flag"
	}
	return "--" + f.Name
}

// oneDashLong returns the name of the first argument before "--" that is a
// long flag of cmd written with one dash, or "".
func oneDashLong(cmd *cobra.Command, args []string) string {
	for _, a := range args {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || strings.HasPrefix(a, "--") || len(a) < 3 {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if cmd.Flags().Lookup(name) != nil || cmd.InheritedFlags().Lookup(name) != nil {
			return name
		}
	}
	return ""
}

// NoArgs refuses arguments in one line that says what the command takes
// instead.
func NoArgs(instead string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return Usagef(cmd, "unexpected argument %q: %s", args[0], instead)
		}
		return nil
	}
}

// ExactArgs wants n arguments, and says what they are in one line
// otherwise.
func ExactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < n:
			return Usagef(cmd, "missing argument: %s", what)
		case len(args) > n:
			return Usagef(cmd, "unexpected argument %q: %s", args[n], what)
		}
		return nil
	}
}
