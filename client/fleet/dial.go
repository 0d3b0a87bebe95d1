package fleet

import (
	"crypto/tls"
	"fmt"
	"sync"

	"github.com/rexec/rexec/client"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/tlsconfig"
)

// Credentials name a target's key and TLS files, as rexec's --key-file,
// --key-id, --tls-ca, --tls-cert, --tls-key and --tls-server-name do.
// Empty fields are unset.
type Credentials struct {
	KeyFile, KeyID         string
	TLSCA, TLSCert, TLSKey string
	TLSServerName          string
}

// Dialer makes the clients of targets, one connection each. A target's
// credentials are, field by field: Flags' when set (given on the command
// line), else its config host's, else Defaults' (the environment's). Each
// key file and TLS file set is read once, however many targets use it.
type Dialer struct {
	Flags, Defaults Credentials
	// Options are added to every client's.
	Options []client.Option

	mu   sync.Mutex
	keys map[[2]string]*interceptors.Key
	tls  map[[3]string]*tls.Config
}

// Credentials returns the credentials t is dialed with.
func (d *Dialer) Credentials(t *Target) Credentials {
	var h Credentials
	if t.Host != nil {
		h = Credentials{KeyFile: t.Host.KeyFile, KeyID: t.Host.KeyID, TLSCA: t.Host.TLSCA, TLSCert: t.Host.TLSCert, TLSKey: t.Host.TLSKey}
	}
	pick := func(flag, host, def string) string {
		switch {
		case flag != "":
			return flag
		case host != "":
			return host
		}
		return def
	}
	c := Credentials{
		KeyFile: pick(d.Flags.KeyFile, h.KeyFile, d.Defaults.KeyFile),
		KeyID:   pick(d.Flags.KeyID, h.KeyID, d.Defaults.KeyID),
		TLSCA:   pick(d.Flags.TLSCA, h.TLSCA, d.Defaults.TLSCA),
		TLSCert: pick(d.Flags.TLSCert, h.TLSCert, d.Defaults.TLSCert),
		TLSKey:  pick(d.Flags.TLSKey, h.TLSKey, d.Defaults.TLSKey),
		// A dns:/// target's NAME or a host's tls_server_name, unless the
		// command line names one for all.
		TLSServerName: pick(d.Flags.TLSServerName, t.ServerName, d.Defaults.TLSServerName),
	}
	return c
}

// UsesTLS reports whether c dials with TLS.
func (c Credentials) UsesTLS() bool { return c.TLSCA != "" || c.TLSCert != "" || c.TLSKey != "" }

// Prepare reads every key and TLS file the targets need, so that a bad
// file stops the run before it starts, with one error that names it.
func (d *Dialer) Prepare(targets []Target) error {
	for i := range targets {
		c := d.Credentials(&targets[i])
		if _, err := d.key(c); err != nil {
			return err
		}
		if _, err := d.tlsConfig(c); err != nil {
			return err
		}
	}
	return nil
}

// Key returns the key t is signed with.
func (d *Dialer) Key(t *Target) (*interceptors.Key, error) { return d.key(d.Credentials(t)) }

// Dial returns a client of t. The connection is made by the first call.
func (d *Dialer) Dial(t *Target) (*client.Client, error) {
	c := d.Credentials(t)
	key, err := d.key(c)
	if err != nil {
		return nil, err
	}
	cfg, err := d.tlsConfig(c)
	if err != nil {
		return nil, err
	}
	opts := append([]client.Option{client.WithKey(key)}, d.Options...)
	if cfg != nil {
		if c.TLSServerName != "" {
			cfg = cfg.Clone()
			cfg.ServerName = c.TLSServerName
		}
		opts = append(opts, client.WithTLS(cfg))
	}
	return client.New(t.Addr, opts...)
}

func (d *Dialer) key(c Credentials) (*interceptors.Key, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := [2]string{c.KeyFile, c.KeyID}
	if k, ok := d.keys[id]; ok {
		return k, nil
	}
	k, err := client.LoadKey(c.KeyFile, c.KeyID)
	if err != nil {
		return nil, err
	}
	if d.keys == nil {
		d.keys = map[[2]string]*interceptors.Key{}
	}
	d.keys[id] = k
	return k, nil
}

// tlsConfig is nil for plaintext.
func (d *Dialer) tlsConfig(c Credentials) (*tls.Config, error) {
	if !c.UsesTLS() {
		return nil, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	id := [3]string{c.TLSCA, c.TLSCert, c.TLSKey}
	if cfg, ok := d.tls[id]; ok {
		return cfg, nil
	}
	cfg, err := tlsconfig.Client(c.TLSCA, c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("TLS files (--tls-ca %q, --tls-cert %q, --tls-key %q): %w", c.TLSCA, c.TLSCert, c.TLSKey, err)
	}
	if d.tls == nil {
		d.tls = map[[3]string]*tls.Config{}
	}
	d.tls[id] = cfg
	return cfg, nil
}
