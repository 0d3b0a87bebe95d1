package cli

import (
	"github.com/spf13/cobra"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/cliflag"
)

func (c *command) mkdirCmd() *cobra.Command {
	var parents bool
	cmd := &cobra.Command{
		Use:   "mkdir [-p] :PATH...",
		Short: "Make directories on the server",
		Long: `Make each directory PATH on the server (mode 0755). With -p, make missing parents too, and
succeed when the directory exists. Needs the key scope files-write.`,
		Example: `  rexec mkdir :drop/incoming
  rexec mkdir -p :drop/2026/11/25`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cliflag.Usagef(cmd, "mkdir needs a path: rexec mkdir [-p] :PATH")
			}
			return exitWith(c.mkdir(parents, args))
		},
	}
	cmd.Flags().BoolVarP(&parents, "parents", "p", false, "make missing parents; an existing directory is fine")
	return cmd
}

func (c *command) mkdir(parents bool, args []string) int {
	cl, err := c.dial()
	if err != nil {
		return c.fail(err)
	}
	ctx, _, stop := signalContext()
	defer stop()
	fails := &pathFailures{c: c, name: "mkdir"}
	for _, a := range args {
		if _, err := cl.Files().Mkdir(ctx, &rexecv1.MkdirRequest{Path: remotePath(a), Parents: parents}); err != nil && !fails.add(a, err) {
			break
		}
	}
	return fails.status()
}
