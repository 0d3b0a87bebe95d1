package cli

import (
	"errors"
	"fmt"

	"github.com/rexec/rexec/internal/tlsconfig"
)

// certs makes a throwaway CA, server and client certificate for trying TLS
// and mTLS on one machine, and prints how to use them.
func (c *command) certs(args []string) int {
	fs := c.flags()
	dir := fs.String("dir", "", "directory to write the PEM files into (created; must not hold them already)")
	name := fs.String("client-name", "rexec-client", "common name of the client certificate")
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if *dir == "" {
		return c.fail(errors.New("certs: give --dir DIR"))
	}
	f, err := tlsconfig.WriteDemo(*dir, *name)
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
