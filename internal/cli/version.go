package cli

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/rexec/rexec/client"
	"github.com/rexec/rexec/internal/cliflag"
	"github.com/rexec/rexec/internal/version"
)

func (c *command) versionCmd() *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version [--client]",
		Short: "Print this rexec's version and the server's",
		Long: `Print this rexec's version (the module version it was built from, or the one given with
-ldflags) and the server's. rexecd names its version in the response header rexec-version of
every call, refused ones too; rexec version makes one Echo call to read it. --client (or
rexec --version) prints this rexec's alone, with no call.

When a call fails in a way a version mismatch explains (the server does not know the method, or
a request field), rexec's error line names both versions.`,
		Example: `  rexec version
  rexec --addr db1 version
  rexec version --client        # as rexec --version`,
		Args: cliflag.NoArgs("rexec version takes flags only"),
		RunE: func(cmd *cobra.Command, _ []string) error { return exitWith(c.version(clientOnly)) },
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print this rexec's version only; make no call")
	return cmd
}

func (c *command) version(clientOnly bool) int {
	fmt.Fprintf(c.env.Stdout, "rexec  %s (%s %s/%s)\n", version.String(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if clientOnly {
		return 0
	}
	if code, ok := c.oneTarget("version"); !ok {
		return code
	}
	if _, err := c.dial(); err != nil {
		// No usable key: the server names its version when it refuses a
		// call, too.
		tlsOpts, terr := c.g.tls.options()
		if terr != nil {
			return c.fail(terr)
		}
		if c.cl, err = client.New(c.g.addr, append(tlsOpts, client.WithDialOptions(c.versions.DialOptions()...))...); err != nil {
			return c.fail(err)
		}
	}
	v, err := c.serverVersion()
	switch {
	case err != nil:
		return c.fail(err)
	case v == "":
		fmt.Fprintf(c.env.Stdout, "rexecd (unknown: the server at %s names no version, so it is older than this rexec)\n", c.g.addr)
	default:
		fmt.Fprintf(c.env.Stdout, "rexecd %s at %s\n", v, c.g.addr)
	}
	return 0
}

// serverVersion returns the version the server sent on an earlier call of
// this run, or else on one Echo call: "" when the server sends none. A
// refused Echo (no echo scope, a bad key) carries the header too.
func (c *command) serverVersion() (string, error) {
	if v, ok := c.versions.Get(); ok {
		return v, nil
	}
	if c.cl == nil {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.cl.Echo(ctx, "", false)
	if v, ok := c.versions.Get(); ok {
		return v, nil
	}
	return "", err
}

// versionMismatch names both versions, for an error a mismatch explains.
func (c *command) versionMismatch() string {
	server := "older than the rexec-version header"
	if v, err := c.serverVersion(); err == nil && v != "" {
		server = v
	} else if err != nil {
		server = "unknown"
	}
	return fmt.Sprintf("this rexec is %s, the server's rexecd %s; use a rexec and rexecd of one version", version.String(), server)
}
