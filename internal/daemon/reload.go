package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
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
	// requireUser refuses a key file with a key that may run commands but
	// has no user= (--require-user).
	requireUser bool
	// euid is rexecd's effective user id, canSetUID whether it may run a
	// command as another user (root, or CAP_SETUID and CAP_SETGID).
	euid      int
	canSetUID bool
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
	if err == nil {
		err = r.refuse(keys)
	}
	if err != nil {
		r.log.Error("key reload failed; keeping the old keys", "err", err)
		return
	}
	r.ring.Replace(keys)
	r.log.Info("keys reloaded", "path", r.keyPath, "key_count", len(keys))
	r.checkKeys(keys)
}

// runsCommands reports whether k may run commands (exec or session).
func runsCommands(k *interceptors.Key) bool {
	return k.Allows(interceptors.ScopeExec) || k.Allows(interceptors.ScopeSession)
}

// refuse says why keys may not be served: with --require-user, a key that
// may run commands has no user=.
func (r *reloader) refuse(keys []*interceptors.Key) error {
	if !r.requireUser {
		return nil
	}
	var ids []string
	for _, k := range keys {
		if runsCommands(k) && k.User == "" {
			ids = append(ids, k.ID)
		}
	}
	if len(ids) > 0 {
		return fmt.Errorf("key file %s: keys %s may run commands (exec or session) but have no user= (--require-user): give each a user=NAME to run as",
			r.keyPath, strings.Join(ids, ", "))
	}
	return nil
}

// checkKeys warns about keys that can never be used with this
// configuration, or run commands with more rights than their line says, at
// start and on every reload.
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
	var asRoot []string
	for _, k := range keys {
		switch {
		case k.User == "" && runsCommands(k) && r.euid == 0:
			asRoot = append(asRoot, k.ID)
		case k.User != "" && !k.UserExists():
			r.log.Warn("key's user= names no user of this host: its commands fail until the user exists", "key_id", k.ID, "user", k.User)
		case k.User != "" && !r.canSetUID:
			r.log.Warn("key has user= but rexecd may not change users (it needs root, or CAP_SETUID and CAP_SETGID): its commands fail",
				"key_id", k.ID, "user", k.User)
		}
	}
	if len(asRoot) > 0 {
		r.log.Warn("rexecd runs as root and these keys may run commands but have no user=: their commands run as root, as a root key in authorized_keys does (give each user=NAME, or start rexecd with --require-user)",
			"keys", strings.Join(asRoot, ","))
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
