package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// lsOpts are the flags of rexec ls.
type lsOpts struct {
	long, partial bool
}

func (c *command) lsCmd() *cobra.Command {
	var o lsOpts
	cmd := &cobra.Command{
		Use:   "ls [-l] [--partial] [:PATH...]",
		Short: "List files on the server (the key's root, or its home, by default)",
		Long: `List the entries of each directory PATH on the server (a file is listed as itself), sorted by
name; symlinks are listed, never followed. -l adds the type and mode, links, owner, size, mtime
and a symlink's target. A remote path may be written with or without the leading ':'.

--partial lists this key's partial uploads instead: what an interrupted ` + "`rexec cp`" + ` left on the
server, how much of each is there, and when it expires (rexecd's --partial-ttl). Cancel one with
` + "`rexec rm --partial`" + `.`,
		Example: `  rexec ls                                # the key's root (or home directory)
  rexec ls -l :drop                       # long format
  rexec ls --partial                      # interrupted uploads: resume with rexec cp --resume`,
		RunE: func(cmd *cobra.Command, args []string) error { return exitWith(c.ls(o, args)) },
	}
	cmd.Flags().BoolVarP(&o.long, "long", "l", false, "long format: type, mode, links, owner, size, mtime, target")
	cmd.Flags().BoolVar(&o.partial, "partial", false, "list this key's partial uploads")
	return cmd
}

func (c *command) ls(o lsOpts, args []string) int {
	cl, err := c.dial()
	if err != nil {
		return c.fail(err)
	}
	ctx, _, stop := signalContext()
	defer stop()
	fails := &pathFailures{c: c, name: "ls"}
	if o.partial {
		if len(args) > 0 {
			fmt.Fprintln(c.env.Stderr, "rexec: ls --partial lists every partial upload of the key: it takes no path")
			return ExitFailure
		}
		resp, err := cl.Files().ListUploads(ctx, &rexecv1.ListUploadsRequest{})
		if err != nil {
			fails.add(":", err)
			return fails.status()
		}
		c.printUploads(resp.GetUploads())
		return 0
	}
	if len(args) == 0 {
		args = []string{":"}
	}
	printed := false
	for _, a := range args {
		ents, err := client.List(ctx, cl.Files(), remotePath(a))
		if err != nil {
			if !fails.add(a, err) {
				break
			}
			continue
		}
		if len(args) > 1 {
			if printed {
				fmt.Fprintln(c.env.Stdout)
			}
			fmt.Fprintf(c.env.Stdout, "%s:\n", a)
		}
		printed = true
		if o.long {
			printLong(c.env.Stdout, ents)
		} else {
			for _, e := range ents {
				fmt.Fprintln(c.env.Stdout, e.GetName())
			}
		}
	}
	return fails.status()
}

// printLong writes entries as ls -l does: numbers right-aligned in
// columns as wide as their widest.
func printLong(w io.Writer, ents []*rexecv1.FileInfo) {
	var wl, wu, wg, ws int
	for _, e := range ents {
		wl = max(wl, len(fmt.Sprint(e.GetNlink())))
		wu = max(wu, len(fmt.Sprint(e.GetUid())))
		wg = max(wg, len(fmt.Sprint(e.GetGid())))
		ws = max(ws, len(fmt.Sprint(e.GetSize())))
	}
	for _, e := range ents {
		name := e.GetName()
		if e.GetType() == rexecv1.FileType_FILE_TYPE_SYMLINK {
			name += " -> " + e.GetSymlinkTarget()
		}
		fmt.Fprintf(w, "%s %*d %*d %*d %*d %s %s\n", modeString(e), wl, e.GetNlink(), wu, e.GetUid(), wg, e.GetGid(),
			ws, e.GetSize(), e.GetMtime().AsTime().Local().Format("2006-01-02 15:04"), name)
	}
}

// modeString is a FileInfo's type and mode as ls -l writes them.
func modeString(e *rexecv1.FileInfo) string {
	b := []byte("----------")
	switch e.GetType() {
	case rexecv1.FileType_FILE_TYPE_DIRECTORY:
		b[0] = 'd'
	case rexecv1.FileType_FILE_TYPE_SYMLINK:
		b[0] = 'l'
	case rexecv1.FileType_FILE_TYPE_OTHER:
		b[0] = '?'
	}
	m := e.GetMode()
	for i, c := range "rwxrwxrwx" {
		if m&(1<<(8-i)) != 0 {
			b[1+i] = byte(c)
		}
	}
	special := func(bit uint32, at int, set, setNoX byte) {
		if m&bit == 0 {
			return
		}
		if b[at] == 'x' {
			b[at] = set
		} else {
			b[at] = setNoX
		}
	}
	special(0o4000, 3, 's', 'S')
	special(0o2000, 6, 's', 'S')
	special(0o1000, 9, 't', 'T')
	return string(b)
}

// printUploads writes partial uploads as a table.
func (c *command) printUploads(ups []*rexecv1.UploadStatus) {
	if len(ups) == 0 {
		fmt.Fprintln(c.env.Stderr, "no partial uploads")
		return
	}
	slices.SortFunc(ups, func(a, b *rexecv1.UploadStatus) int { return strings.Compare(a.GetPath(), b.GetPath()) })
	tw := tabwriter.NewWriter(c.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "UPLOAD ID\tHAS\tOF\tUPDATED\tEXPIRES\tPATH")
	for _, u := range ups {
		state := u.GetUpdated().AsTime().Local().Format(time.DateTime)
		if u.GetActive() {
			state = "now (writing)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.GetUploadId(), human(u.GetCommittedSize()), human(u.GetSource().GetSize()),
			state, u.GetExpires().AsTime().Local().Format(time.DateTime), u.GetPath())
	}
	tw.Flush()
}
