package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/internal/cliflag"
)

func (c *command) dfCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "df",
		Short: "Show this key's usage and quota on the server",
		Long: `Show what this key's root holds (the bytes of its files and of partial uploads into it, which
is what quota= counts), its quota, and the free space of the filesystem under it. A key without
root= has no usage of its own: df shows its partial uploads and the filesystem of the home
directory of rexecd's user. Needs the key scope files.`,
		Example: `  rexec df
  rexec --key-id ci df`,
		Args: cliflag.NoArgs("df shows this key's usage: choose the key with --key-id"),
		RunE: func(cmd *cobra.Command, _ []string) error { return exitWith(c.df()) },
	}
}

func (c *command) df() int {
	cl, err := c.dial()
	if err != nil {
		return c.fail(err)
	}
	ctx, _, stop := signalContext()
	defer stop()
	u, err := cl.Files().Usage(ctx, &rexecv1.UsageRequest{})
	if err != nil {
		fails := &pathFailures{c: c, name: "df"}
		fails.add(":", err)
		return fails.status()
	}
	tw := tabwriter.NewWriter(c.env.Stdout, 0, 0, 2, ' ', 0)
	root := u.GetRoot()
	if root == "" {
		root = "(none: the filesystem, as rexecd's user)"
	}
	fmt.Fprintf(tw, "root\t%s\n", root)
	if u.GetRoot() != "" {
		fmt.Fprintf(tw, "used\t%s (%d bytes) in %d files and partial uploads\n", human(u.GetUsedBytes()), u.GetUsedBytes(), u.GetFiles())
	}
	if q := u.GetQuotaBytes(); q > 0 {
		fmt.Fprintf(tw, "quota\t%s (%d bytes), %.0f%% used, %s left\n", human(q), q, 100*float64(u.GetUsedBytes())/float64(q), human(max(0, q-u.GetUsedBytes())))
	} else {
		fmt.Fprintf(tw, "quota\tnone\n")
	}
	fmt.Fprintf(tw, "partial\t%s in partial uploads (rexec ls --partial)\n", human(u.GetPartialBytes()))
	fmt.Fprintf(tw, "filesystem\t%s free of %s\n", human(u.GetFsFreeBytes()), human(u.GetFsTotalBytes()))
	tw.Flush()
	return 0
}
