package cli

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/rexec/rexec/client"
	"github.com/rexec/rexec/internal/tlsconfig"
)

// clientTLS are rexec's --tls-* flags.
type clientTLS struct {
	caFile, certFile, keyFile string
}

func (t *clientTLS) register(fs *pflag.FlagSet) {
	fs.StringVar(&t.caFile, "tls-ca", t.caFile, "dial with TLS, trusting the CAs in this PEM file")
	fs.StringVar(&t.certFile, "tls-cert", t.certFile, "client certificate for mTLS (PEM, with --tls-key; implies TLS)")
	fs.StringVar(&t.keyFile, "tls-key", t.keyFile, "the PEM private key of --tls-cert")
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
	return []client.Option{client.WithTLS(cfg)}, nil
}

// tlsHint is what to check when a connection failed in a way that points at
// TLS: a handshake error, or a server that hung up during it (a TLS 1.3
// server's alert about a missing client certificate races with the client's
// first write, so it may show as a reset or broken pipe), or a plaintext
// dial to a TLS server (which sees garbage and hangs up: EOF). Empty when
// nothing does.
func (t *clientTLS) tlsHint(msg string) string {
	usingTLS := t.caFile != "" || t.certFile != ""
	hungUp := strings.Contains(msg, "EOF") || strings.Contains(msg, "broken pipe") || strings.Contains(msg, "connection reset")
	switch {
	case strings.Contains(msg, "tls:") || strings.Contains(msg, "x509:"):
		return "the TLS handshake failed: check --tls-ca (the CA that signed the server's certificate) and --tls-cert/--tls-key (a client certificate the server's CA signed)"
	case usingTLS && hungUp:
		return "the server hung up during TLS: if it requires client certificates (mTLS), give --tls-cert and --tls-key signed by its CA"
	case !usingTLS && hungUp:
		return "the server hung up: if rexecd serves TLS, give --tls-ca (and --tls-cert/--tls-key for mTLS)"
	}
	return ""
}
