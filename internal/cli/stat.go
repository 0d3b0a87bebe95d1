package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

func (c *command) statCmd() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "stat [-L] :PATH...",
		Short: "Describe paths on the server: type, size, mode, owner, mtime",
		Long: `Describe each PATH on the server as stat(1) does. A symlink is described itself, with its
target; -L follows it (inside the key's root, for a key with root=).`,
		Example: `  rexec stat :drop/big.iso
  rexec stat -L :current                   # what the symlink points to`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{":"}
			}
			return exitWith(c.stat(follow, args))
		},
	}
	cmd.Flags().BoolVarP(&follow, "dereference", "L", false, "follow a symlink and describe its target")
	return cmd
}

func (c *command) stat(follow bool, args []string) int {
	cl, err := c.dial()
	if err != nil {
		return c.fail(err)
	}
	ctx, _, stop := signalContext()
	defer stop()
	fails := &pathFailures{c: c, name: "stat"}
	for _, a := range args {
		resp, err := cl.Files().Stat(ctx, &rexecv1.StatRequest{Path: remotePath(a), Follow: follow})
		if err != nil {
			if !fails.add(a, err) {
				break
			}
			continue
		}
		e := resp.GetInfo()
		w := c.env.Stdout
		fmt.Fprintf(w, "  File: %s\n", a)
		if e.GetType() == rexecv1.FileType_FILE_TYPE_SYMLINK {
			fmt.Fprintf(w, "Target: %s\n", e.GetSymlinkTarget())
		}
		fmt.Fprintf(w, "  Type: %s\n  Size: %d\n  Mode: %04o (%s)\n Links: %d\n   Uid: %d\n   Gid: %d\nModify: %s\n",
			typeWord(e.GetType()), e.GetSize(), e.GetMode(), modeString(e), e.GetNlink(), e.GetUid(), e.GetGid(),
			e.GetMtime().AsTime().Local().Format(time.RFC3339Nano))
	}
	return fails.status()
}

func typeWord(t rexecv1.FileType) string {
	switch t {
	case rexecv1.FileType_FILE_TYPE_REGULAR:
		return "regular file"
	case rexecv1.FileType_FILE_TYPE_DIRECTORY:
		return "directory"
	case rexecv1.FileType_FILE_TYPE_SYMLINK:
		return "symbolic link"
	}
	return "other (a FIFO, device or socket: rexec never opens it)"
}
