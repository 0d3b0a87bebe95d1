package daemon

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/tlsconfig"
)

// reloader is what SIGHUP reads again: the key file and, with TLS, the
// certificate, its key and the client CAs. Each part is replaced whole or
// not at all, and a part that fails to load keeps what it had and logs why.
type reloader struct {
	keyPath string
	ring    *interceptors.KeyRing
	tls     *tlsconfig.Reloadable // nil without TLS
	log     *slog.Logger
}

// started logs, once serving begins, what reload would check.
func (r *reloader) started(keys []*interceptors.Key) {
	r.checkKeys(keys)
	if r.tls != nil {
		r.log.Info("TLS certificate loaded", tlsAttrs(r.tls.Current())...)
	}
}

// reload reloads every part.
func (r *reloader) reload() {
	r.reloadKeys()
	r.reloadTLS()
}

func (r *reloader) reloadKeys() {
	keys, err := interceptors.LoadKeyFile(r.keyPath)
	if err != nil {
		r.log.Error("key reload failed; keeping the old keys", "err", err)
		return
	}
	r.ring.Replace(keys)
	r.log.Info("keys reloaded", "path", r.keyPath, "key_count", len(keys))
	r.checkKeys(keys)
}

// checkKeys warns about keys that can never be used with this
// configuration, or do less than their line may suggest, at start and on
// every reload.
func (r *reloader) checkKeys(keys []*interceptors.Key) {
	for _, k := range keys {
		if k.Root != "" && (k.Allows(interceptors.ScopeExec) || k.Allows(interceptors.ScopeSession)) {
			r.log.Warn("key has root= and may run commands (exec or session): root= confines its file calls only; its commands reach everything rexecd's user can",
				"key_id", k.ID, "root", k.Root)
		}
		if k.Root != "" {
			if fi, err := os.Stat(k.Root); err != nil || !fi.IsDir() {
				r.log.Warn("key's root= is not a directory: its file calls fail until it is", "key_id", k.ID, "root", k.Root)
			}
		}
	}
	if r.tls != nil && r.tls.MutualTLS() {
		return
	}
	for _, k := range keys {
		if k.Cert != "" {
			r.log.Warn("key is bound to a client certificate (cert=) but rexecd does not verify client certificates (--tls-client-ca): every call with it is refused",
				"key_id", k.ID, "cert", k.Cert)
		}
	}
}

func (r *reloader) reloadTLS() {
	if r.tls == nil {
		return
	}
	l, err := r.tls.Reload()
	if err != nil {
		old := r.tls.Current()
		r.log.Error("TLS reload failed; keeping the old certificate and client CAs", "err", err,
			"serial", old.Cert.SerialNumber.Text(16))
		return
	}
	level := slog.LevelInfo
	if time.Now().After(l.Cert.NotAfter) {
		level = slog.LevelWarn // loaded, as at start; clients will refuse it
	}
	r.log.Log(context.Background(), level, "TLS reloaded", tlsAttrs(l)...)
}

// tlsAttrs describe what new TLS handshakes use.
func tlsAttrs(l tlsconfig.Loaded) []any {
	attrs := []any{"serial", l.Cert.SerialNumber.Text(16), "subject", l.Cert.Subject.String(),
		"not_after", l.Cert.NotAfter.UTC().Format(time.RFC3339)}
	if l.ClientCAs > 0 {
		attrs = append(attrs, "client_cas", l.ClientCAs)
	}
	return attrs
}
