package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rexec/rexec/internal/cliflag"
	"github.com/rexec/rexec/internal/tlsconfig"
)

func (c *command) certsCmd() *cobra.Command {
	var dir, name string
	cmd := &cobra.Command{
		Use:   "certs --dir DIR [--client-name NAME]",
		Short: "Write a throwaway CA, server and client certificate for TLS and mTLS",
		Long: `Write a throwaway CA (ECDSA P-256, 30 days), a server certificate for 127.0.0.1, ::1 and
localhost, and a client certificate into DIR, and print the rexecd, rexec and grpcurl command
lines that use them. For a real deployment use your own CA and a server name that matches --addr.`,
		Example: `  rexec certs --dir certs
  rexecd --tls-cert certs/server.crt --tls-key certs/server.key --tls-client-ca certs/ca.crt
  rexec --tls-ca certs/ca.crt --tls-cert certs/client.crt --tls-key certs/client.key run -- uname -a`,
		Args: cliflag.NoArgs("give the directory with --dir"),
		RunE: func(cmd *cobra.Command, _ []string) error { return exitWith(c.certs(dir, name)) },
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to write the PEM files into (created; must not hold them already)")
	cmd.Flags().StringVar(&name, "client-name", "rexec-client", "common name of the client certificate")
	return cmd
}

// certs makes a throwaway CA, server and client certificate for trying TLS
// and mTLS on one machine, and prints how to use them.
func (c *command) certs(dir, name string) int {
	if dir == "" {
		return c.fail(errors.New("certs: give --dir DIR"))
	}
	f, err := tlsconfig.WriteDemo(dir, name)
	if err != nil {
		return c.fail(fmt.Errorf("certs: %w", err))
	}
	fmt.Fprintf(c.env.Stdout, `wrote a throwaway CA, a server certificate (127.0.0.1, ::1, localhost) and a client certificate, valid %d days:
  %s  %s
  %s  %s
  %s  %s
(%s can sign more certificates: keep it private, or delete it)

server, mTLS (client certificates required):
  rexecd --tls-cert %s --tls-key %s --tls-client-ca %s
client:
  rexec --tls-ca %s --tls-cert %s --tls-key %s run -- uname -a
grpcurl:
  grpcurl -cacert %s -cert %s -key %s \
    -H "authorization: $(rexec token --method /rexec.v1.ExecService/Run)" \
    -d '{"shell":"uname -a"}' 127.0.0.1:50051 rexec.v1.ExecService/Run
`, int(tlsconfig.DemoValidity.Hours()/24), f.CACert, f.CAKey, f.ServerCert, f.ServerKey, f.ClientCert, f.ClientKey, f.CAKey,
		f.ServerCert, f.ServerKey, f.CACert,
		f.CACert, f.ClientCert, f.ClientKey,
		f.CACert, f.ClientCert, f.ClientKey)
	return 0
}
