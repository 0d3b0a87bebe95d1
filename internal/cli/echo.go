package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// echoOpts are the flags of rexec echo.
type echoOpts struct {
	upper, stream, raw bool
	fleet              fleetOutput
}

func (c *command) echoCmd() *cobra.Command {
	var o echoOpts
	cmd := &cobra.Command{
		Use:   "echo [--upper] [--stream] [--raw] MSG...",
		Short: "The classic echo: the server sends the message back, optionally upper-cased",
		Long: `Send MSG (the words joined by spaces) to the server's EchoService and print the echo. With
--stream each word is one message of an EchoStream (a bidi stream); with --raw the messages go
over the raw socket transport instead. Needs the key scope echo.`,
		Example: `  rexec echo --upper hello                # HELLO
  rexec echo --stream --upper one two     # ONE and TWO, one message each
  rexec echo --raw hello                  # over the raw socket (--raw-addr)
  rexec -H node[1-4] echo hi              # every target's echo, prefixed with its name`,
		RunE: func(cmd *cobra.Command, args []string) error { return exitWith(c.echo(o, args)) },
	}
	f := cmd.Flags()
	f.SetInterspersed(false) // every word after the first message is message
	f.BoolVar(&o.upper, "upper", false, "ask the server to upper-case the echo")
	f.BoolVar(&o.stream, "stream", false, "send each MSG as one message of an EchoStream")
	f.BoolVar(&o.raw, "raw", false, "use the raw socket transport (--raw-addr) instead of gRPC")
	o.fleet.register(f)
	c.g.fleet.registerFanout(f)
	return cmd
}

func (c *command) echo(o echoOpts, msgs []string) int {
	if c.g.fleet.used() {
		ts, err := c.targets(context.Background())
		if err != nil {
			return c.fail(err)
		}
		if len(ts) > 1 {
			return c.echoOnFleet(ts, strings.Join(msgs, " "), o.upper, o.stream, o.raw, o.fleet)
		}
	}
	if o.raw {
		ctx, _, stop := signalContext()
		defer stop()
		return c.echoRaw(ctx, msgs, o.upper, o.stream)
	}
	cl, err := c.dial()
	if err != nil {
		return c.fail(err)
	}
	ctx, _, stop := signalContext()
	defer stop()
	if !o.stream {
		out, err := cl.Echo(ctx, strings.Join(msgs, " "), o.upper)
		if err != nil {
			return c.fail(err)
		}
		fmt.Fprintln(c.env.Stdout, out)
		return 0
	}
	st, err := cl.EchoStream(ctx)
	if err != nil {
		return c.fail(err)
	}
	for _, m := range msgs {
		if err := st.Send(&rexecv1.EchoStreamRequest{Message: m, Upper: o.upper}); err != nil {
			break // Recv says why
		}
		resp, err := st.Recv()
		if err != nil {
			return c.fail(err)
		}
		fmt.Fprintln(c.env.Stdout, resp.GetMessage())
	}
	if err := st.CloseSend(); err != nil {
		return c.fail(err)
	}
	if _, err := st.Recv(); err != nil && !errors.Is(err, io.EOF) {
		return c.fail(err)
	}
	return 0
}
