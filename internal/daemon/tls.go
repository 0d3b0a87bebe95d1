package daemon

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/spf13/pflag"
	"google.golang.org/grpc/credentials"

	"github.com/rexec/rexec/internal/tlsconfig"
)

// DaemonTLS is rexecd's transport security, from --tls-* and
// --allow-plaintext.
type DaemonTLS struct {
	CertFile, KeyFile string
	// ClientCAFile, when set, makes client certificates required: each must
	// be signed by a CA in this file (mTLS).
	ClientCAFile string
	// AllowPlaintext lets rexecd serve without TLS on an address that is not
	// loopback. By default it refuses to.
	AllowPlaintext bool
}

func (t *DaemonTLS) register(fs *pflag.FlagSet) {
	fs.StringVar(&t.CertFile, "tls-cert", "", "serve TLS with this PEM certificate (with --tls-key)")
	fs.StringVar(&t.KeyFile, "tls-key", "", "the PEM private key of --tls-cert")
	fs.StringVar(&t.ClientCAFile, "tls-client-ca", "", "require client certificates signed by a CA in this PEM file (mTLS)")
	fs.BoolVar(&t.AllowPlaintext, "allow-plaintext", false, "serve without TLS on a non-loopback address (the network must be trusted)")
}

// enabled reports whether any TLS flag was given.
func (t *DaemonTLS) enabled() bool {
	return t.CertFile != "" || t.KeyFile != "" || t.ClientCAFile != ""
}

// creds returns the server's transport credentials, nil for plaintext, and
// with TLS the files that SIGHUP reloads.
func (t *DaemonTLS) creds() (credentials.TransportCredentials, *tlsconfig.Reloadable, error) {
	if !t.enabled() {
		return nil, nil, nil
	}
	if t.CertFile == "" || t.KeyFile == "" {
		return nil, nil, fmt.Errorf("TLS needs both --tls-cert and --tls-key (make a throwaway set with `rexec certs --dir DIR`)")
	}
	r, err := tlsconfig.NewReloadable(t.CertFile, t.KeyFile, t.ClientCAFile)
	if err != nil {
		return nil, nil, err
	}
	return credentials.NewTLS(r.Config()), r, nil
}

// checkListener refuses a plaintext listener that others can reach. The
// token signs the method and a nonce but not the request: on a network,
// without TLS, an observer reads every command and its output, and one who
// can also block the original call can send its token (within the skew
// window, once) with a command of their own.
func (t *DaemonTLS) checkListener(listen string, addr net.Addr) error {
	if t.enabled() || t.AllowPlaintext {
		return nil
	}
	if a, ok := addr.(*net.TCPAddr); ok && a.IP.IsLoopback() {
		return nil
	}
	return fmt.Errorf("refusing to serve plaintext on --listen %s (bound %s), which is not a loopback address: "+
		"without TLS anyone on the network path reads every command and its output and can replace a call's request "+
		"under its token; give --tls-cert and --tls-key (and --tls-client-ca for mTLS), "+
		"or --allow-plaintext if the network itself is trusted", listen, addr)
}

// logAttrs describes the transport for the startup log line.
func (t *DaemonTLS) logAttrs() slog.Attr {
	switch {
	case t.ClientCAFile != "":
		return slog.String("transport", "mTLS")
	case t.enabled():
		return slog.String("transport", "TLS")
	}
	return slog.String("transport", "plaintext")
}
