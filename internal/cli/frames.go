package cli

import (
	"encoding/json"
	"fmt"

	"github.com/rexec/rexec/internal/framelab"
)

// frames is `rexec frames`, the framing lab; the lab itself is framelab's.
func (c *command) frames(args []string) int {
	fs := c.flags()
	asJSON := fs.Bool("json", false, "print the report as JSON")
	big := fs.Int("big", 100<<10, "size of the last, big message in bytes")
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if *big <= 0 {
		return c.fail(fmt.Errorf("frames: --big %d: want a size in bytes, 1 to %d", *big, framelab.MaxBig))
	}
	ctx, _, stop := signalContext()
	defer stop()
	rep, err := framelab.Run(ctx, framelab.Options{Big: *big})
	if err != nil {
		return c.fail(err)
	}
	if *asJSON {
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
