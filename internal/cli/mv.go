package cli

import (
	"path"

	"github.com/spf13/cobra"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/cliflag"
)

func (c *command) mvCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "mv :SRC :DST",
		Short: "Rename a file or directory on the server",
		Long: `Rename SRC to DST on the server, as rename(2) does: a file at DST is replaced. When DST is a
directory, SRC goes inside it, as mv does. Both are server paths. Needs the key scope files-write.`,
		Example: `  rexec mv :drop/big.iso :archive/big.iso
  rexec mv :drop/big.iso :archive/        # into the directory`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return cliflag.Usagef(cmd, "mv takes two server paths: rexec mv :SRC :DST")
			}
			return exitWith(c.mv(args[0], args[1]))
		},
	}
}

func (c *command) mv(src, dst string) int {
	cl, err := c.dial()
	if err != nil {
		return c.fail(err)
	}
	ctx, _, stop := signalContext()
	defer stop()
	fails := &pathFailures{c: c, name: "mv"}
	from, to := remotePath(src), remotePath(dst)
	if st, err := cl.Files().Stat(ctx, &rexecv1.StatRequest{Path: to, Follow: true}); err == nil &&
		st.GetInfo().GetType() == rexecv1.FileType_FILE_TYPE_DIRECTORY {
		to = path.Join(to, path.Base(from))
	}
	if _, err := cl.Files().Rename(ctx, &rexecv1.RenameRequest{From: from, To: to}); err != nil {
		fails.add(src, err)
	}
	return fails.status()
}
