package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rexec/rexec/internal/cliflag"
	"github.com/rexec/rexec/internal/framelab"
)

func (c *command) framesCmd() *cobra.Command {
	var (
		asJSON bool
		big    int
	)
	cmd := &cobra.Command{
		Use:   "frames [--json] [--big N]",
		Short: "The framing lab: the same messages over unframed TCP, framed TCP, UDP and gRPC",
		Long: `Send the same messages (three short lines, then --big bytes) four ways on loopback sockets of
its own, and print what the receiver saw: TCP merging and splitting writes, a length prefix
keeping them apart, UDP keeping boundaries but capping size, and gRPC's HTTP/2 frames decoded.
It needs no server.`,
		Example: `  rexec frames
  rexec frames --json | jq .tcp_framed
  rexec frames --big 1000000`,
		Args: cliflag.NoArgs("the lab takes flags only"),
		RunE: func(cmd *cobra.Command, _ []string) error { return exitWith(c.frames(asJSON, big)) },
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().IntVar(&big, "big", 100<<10, "size of the last, big message in bytes")
	return cmd
}

// frames is `rexec frames`, the framing lab; the lab itself is framelab's.
func (c *command) frames(asJSON bool, big int) int {
	if big <= 0 {
		return c.fail(fmt.Errorf("frames: --big %d: want a size in bytes, 1 to %d", big, framelab.MaxBig))
	}
	ctx, _, stop := signalContext()
	defer stop()
	rep, err := framelab.Run(ctx, framelab.Options{Big: big})
	if err != nil {
		return c.fail(err)
	}
	if asJSON {
		enc := json.NewEncoder(c.env.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteText(c.env.Stdout)
	}
	if err != nil {
		return c.fail(err)
	}
	return 0
}
