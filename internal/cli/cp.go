package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rexec/rexec/internal/cliflag"
	"github.com/rexec/rexec/internal/transfer"
)

// cpOpts are the flags of rexec cp.
type cpOpts struct {
	recursive, preserve, resume bool
	jobs                        int
	progress                    string
}

func (c *command) cpCmd() *cobra.Command {
	var o cpOpts
	cmd := &cobra.Command{
		Use:   "cp [-r] [-p] [-j N] [--resume] [--progress auto|bar|none|json] SRC... DST",
		Short: "Copy files to or from the server, checked end to end with SHA-256, resumable",
		Long: `Copy files between this machine and the server, as scp does: a remote path starts with ':'
(":" alone is the key's root, or the home directory of rexecd's user for a key without root=).
One side is remote, the other local. DST is a directory when it is one, ends in '/', or when
there are several SRCs.

Every file is hashed with SHA-256 at both ends, and lands at its destination only when whole:
the server writes an upload to a partial file and renames it into place once its size and hash
match; a download lands beside DST (.NAME.rexec-SIZE-MTIME.part) and is renamed when complete.
An interrupted copy (Ctrl-C, a killed rexec, a dropped connection) run again with --resume sends
only what the other side does not have; the server keeps partial uploads for rexecd's
--partial-ttl (24 h); ` + "`rexec ls --partial`" + ` lists them.

-r copies directories with N files in flight (-j); symlinks are copied as symlinks, never
followed out of a tree. -p keeps modes and mtimes (without it a file's mode is masked with
0755). The progress bar (on a terminal's stderr) shows each file in flight; --progress json
writes one JSON object a line on stdout for scripts.

Exit status: 0 when every file went; 1 when any path failed (one line each on stderr); 255 when
rexec itself could not work (connection, auth, a missing scope, usage); 130 when interrupted.`,
		Example: `  rexec cp big.iso :drop/                   # upload into drop/ on the server
  rexec cp :drop/big.iso .                  # download it here
  rexec cp -r -j 8 :/var/log/app ./logs     # a whole tree, 8 files at a time
  rexec cp --resume big.iso :drop/          # go on from where an interrupted copy was
  rexec cp -rp site/ :www/                  # keep modes and mtimes
  rexec cp --progress json big.iso : | jq -c 'select(.event=="done")'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch o.progress {
			case "auto", "bar", "none", "json":
			default:
				return cliflag.Usagef(cmd, "--progress %q: want auto, bar, none or json", o.progress)
			}
			if o.jobs < 1 || o.jobs > 256 {
				return cliflag.Usagef(cmd, "-j %d: want 1 to 256 files in flight", o.jobs)
			}
			if len(args) < 2 {
				return cliflag.Usagef(cmd, "cp needs a source and a destination: rexec cp SRC... DST (a remote path starts with ':')")
			}
			return exitWith(c.cp(cmd, o, args))
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.recursive, "recursive", "r", false, "copy directories and everything in them")
	f.BoolVarP(&o.preserve, "preserve", "p", false, "keep modes and mtimes")
	f.IntVarP(&o.jobs, "jobs", "j", 4, "files in flight at once with -r")
	f.BoolVar(&o.resume, "resume", false, "go on from partial transfers of the same sources (refused when a source changed)")
	f.StringVar(&o.progress, "progress", "auto", "auto (a bar when stderr is a terminal), bar, none, or json (lines on stdout)")
	return cmd
}

func (c *command) cp(cmd *cobra.Command, o cpOpts, args []string) int {
	cl, err := c.dial()
	if err != nil {
		return c.fail(err)
	}
	var progress transfer.Progress
	switch o.progress {
	case "json":
		progress = transfer.JSON(c.env.Stdout)
	case "bar":
		progress = transfer.Bars(c.env.Stderr)
	case "auto":
		if _, tty := terminalFD(c.env.Stderr); tty {
			progress = transfer.Bars(c.env.Stderr)
		}
	}
	ctx, signaled, stop := signalContext()
	defer stop()
	res, err := transfer.Copy(ctx, cl, args, transfer.Options{
		Recursive: o.recursive, Preserve: o.preserve, Resume: o.resume, Jobs: o.jobs, Progress: progress,
	})
	var ue *transfer.UsageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintln(c.env.Stderr, cliflag.Line(cmd.Root(), args, cliflag.Usagef(cmd, "%s", ue.Msg)))
		return ExitFailure
	case ctx.Err() != nil:
		stop()
		sig := signaled()
		fmt.Fprintf(c.env.Stderr, "rexec: cp: interrupted (%v): run the same copy with --resume to go on from where it was\n", sig)
		return 128 + int(sig)
	case err != nil:
		return c.fail(err)
	}
	for _, f := range res.Failures {
		fmt.Fprintf(c.env.Stderr, "rexec: cp: %s\n", f)
	}
	if len(res.Failures) > 0 {
		return exitPathFailed
	}
	return 0
}
