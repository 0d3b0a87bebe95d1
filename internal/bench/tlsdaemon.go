package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/rexec/rexec/internal/tlsconfig"
)

// TLSDaemon is a rexecd that requires mutual TLS (1.3, the Go default), with
// the throwaway certificates its clients use: the way rexec runs anywhere
// off loopback, and so the fair match for ssh, which always encrypts.
type TLSDaemon struct {
	*Daemon
	Certs *tlsconfig.Files
}

// certDir makes a directory for the run (removed when it ends) with a
// throwaway CA and server and client certificates in its certs/.
func (e *Env) certDir(prefix string) (string, *tlsconfig.Files, error) {
	dir, err := os.MkdirTemp(e.Cfg.TmpDir, prefix)
	if err != nil {
		return "", nil, err
	}
	e.onClose(func() { os.RemoveAll(dir) })
	certs, err := tlsconfig.WriteDemo(filepath.Join(dir, "certs"), "bench")
	return dir, certs, err
}

// TLSDaemon returns the run's mTLS rexecd, started on first use.
func (e *Env) TLSDaemon(ctx context.Context) (*TLSDaemon, error) {
	if e.tls != nil {
		return e.tls, nil
	}
	_, certs, err := e.certDir("rexec-bench-tls-")
	if err != nil {
		return nil, err
	}
	d, err := e.StartDaemon(ctx, "--tls-cert", certs.ServerCert, "--tls-key", certs.ServerKey, "--tls-client-ca", certs.CACert)
	if err != nil {
		return nil, err
	}
	e.tls = &TLSDaemon{Daemon: d, Certs: certs}
	return e.tls, nil
}

// CLI is a rexec command line against this daemon, with its key and the
// client's certificate.
func (t *TLSDaemon) CLI(ctx context.Context, bin string, args ...string) *exec.Cmd {
	base := []string{"--addr", t.Addr, "--key-file", t.KeyFile,
		"--tls-ca", t.Certs.CACert, "--tls-cert", t.Certs.ClientCert, "--tls-key", t.Certs.ClientKey}
	return exec.CommandContext(ctx, filepath.Join(bin, "rexec"), append(base, args...)...)
}

// CLI is a rexec command line against this daemon, with its key.
func (d *Daemon) CLI(ctx context.Context, bin string, args ...string) *exec.Cmd {
	base := []string{"--addr", d.Addr, "--raw-addr", d.RawAddr, "--key-file", d.KeyFile}
	return exec.CommandContext(ctx, filepath.Join(bin, "rexec"), append(base, args...)...)
}
