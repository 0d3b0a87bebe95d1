package cli

import (
	"github.com/spf13/pflag"

	"github.com/rexec/rexec/client"
	"github.com/rexec/rexec/internal/tlsconfig"
)

// clientTLS are rexec's --tls-* flags.
type clientTLS struct {
	caFile, certFile, keyFile string
	// serverName, when set, is the name the server's certificate must
	// have (instead of the host dialed).
	serverName string
}

func (t *clientTLS) register(fs *pflag.FlagSet) {
	fs.StringVar(&t.caFile, "tls-ca", t.caFile, "dial with TLS, trusting the CAs in this PEM file")
	fs.StringVar(&t.certFile, "tls-cert", t.certFile, "client certificate for mTLS (PEM, with --tls-key; implies TLS)")
	fs.StringVar(&t.keyFile, "tls-key", t.keyFile, "the PEM private key of --tls-cert")
	fs.StringVar(&t.serverName, "tls-server-name", t.serverName, "check the server's certificate for this name instead of the host dialed")
}

// options returns the client options for the flags: none for plaintext.
func (t *clientTLS) options() ([]client.Option, error) {
	if t.caFile == "" && t.certFile == "" && t.keyFile == "" {
		return nil, nil
	}
	cfg, err := tlsconfig.Client(t.caFile, t.certFile, t.keyFile)
	if err != nil {
		return nil, err
	}
	cfg.ServerName = t.serverName
	return []client.Option{client.WithTLS(cfg)}, nil
}
