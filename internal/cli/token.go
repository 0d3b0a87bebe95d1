package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rexec/rexec/client"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/cliflag"
)

func (c *command) tokenCmd() *cobra.Command {
	var method string
	cmd := &cobra.Command{
		Use:   "token [--method /rexec.v1.ExecService/Run]",
		Short: "Print an authorization value for one grpcurl call",
		Long: `Print a token for the metadata key "authorization", minted with the key file's first key
(or --key-id) for one method and for the server at --addr (or the one target of -H): the token
signs that address, so give grpcurl the same one. It is good for one call within the server's
--skew (60 s) of its minting: the server remembers its nonce.`,
		Example: `  grpcurl -plaintext -H "authorization: $(rexec token)" \
    -d '{"shell":"echo hi"}' 127.0.0.1:50051 rexec.v1.ExecService/Run
  rexec token --method /rexec.v1.EchoService/Echo`,
		Args: cliflag.NoArgs("the method is --method's"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !strings.HasPrefix(method, "/") || strings.Count(method, "/") != 2 {
				return exitWith(c.fail(fmt.Errorf("token: --method %q is not a full method name like /rexec.v1.ExecService/Run", method)))
			}
			if code, ok := c.oneTarget("token"); !ok {
				return exitWith(code)
			}
			key, err := client.LoadKey(c.g.keyFile, c.g.keyID)
			if err != nil {
				return exitWith(c.fail(err))
			}
			// The token signs the server's address: give grpcurl the same.
			fmt.Fprintln(c.env.Stdout, interceptors.Mint(key, method, c.g.addr, time.Now()))
			return nil
		},
	}
	cmd.Flags().StringVar(&method, "method", "/rexec.v1.ExecService/Run", "the full method name the token is for")
	return cmd
}
