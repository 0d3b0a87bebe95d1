package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/cliflag"
)

// rmOpts are the flags of rexec rm.
type rmOpts struct {
	recursive, partial bool
}

func (c *command) rmCmd() *cobra.Command {
	var o rmOpts
	cmd := &cobra.Command{
		Use:   "rm [-r] :PATH... | rm --partial :PATH|ID...",
		Short: "Remove files on the server; or cancel partial uploads",
		Long: `Remove each PATH on the server: a file, a symlink (never what it points to) or an empty
directory; -r removes a directory with everything in it. The key's root cannot be removed.

--partial cancels partial uploads instead (` + "`rexec ls --partial`" + ` lists them), named by their
destination or their upload id: their bytes are dropped. Needs the key scope files-write.`,
		Example: `  rexec rm :drop/old.iso
  rexec rm -r :drop/2025
  rexec rm --partial :drop/big.iso        # cancel an interrupted upload`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cliflag.Usagef(cmd, "rm needs a path: rexec rm [-r] :PATH")
			}
			if o.partial && o.recursive {
				return cliflag.Usagef(cmd, "--partial and -r do not go together: --partial cancels uploads, -r removes trees")
			}
			return exitWith(c.rm(o, args))
		},
	}
	cmd.Flags().BoolVarP(&o.recursive, "recursive", "r", false, "remove directories and everything in them")
	cmd.Flags().BoolVar(&o.partial, "partial", false, "cancel partial uploads (by destination or upload id)")
	return cmd
}

func (c *command) rm(o rmOpts, args []string) int {
	cl, err := c.dial()
	if err != nil {
		return c.fail(err)
	}
	ctx, _, stop := signalContext()
	defer stop()
	fails := &pathFailures{c: c, name: "rm"}
	fsc := cl.Files()
	if o.partial {
		resp, err := fsc.ListUploads(ctx, &rexecv1.ListUploadsRequest{})
		if err != nil {
			fails.add(":", err)
			return fails.status()
		}
		for _, a := range args {
			var ids []string
			for _, u := range resp.GetUploads() {
				if u.GetUploadId() == a || u.GetPath() == remotePath(a) {
					ids = append(ids, u.GetUploadId())
				}
			}
			if len(ids) == 0 {
				fails.add(a, fmt.Errorf("no partial upload of this key has that destination or id (rexec ls --partial)"))
				continue
			}
			for _, id := range ids {
				if _, err := fsc.CancelUpload(ctx, &rexecv1.CancelUploadRequest{UploadId: id}); err != nil && !fails.add(a, err) {
					return fails.status()
				}
			}
		}
		return fails.status()
	}
	for _, a := range args {
		if _, err := fsc.Remove(ctx, &rexecv1.RemoveRequest{Path: remotePath(a), Recursive: o.recursive}); err != nil && !fails.add(a, err) {
			break
		}
	}
	return fails.status()
}
