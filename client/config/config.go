// Package config reads rexec's client configuration file: named hosts and
// groups of hosts, in the spirit of ~/.ssh/config, written in TOML.
//
//	f, err := config.Load("", nil) // $REXEC_CONFIG, else ~/.config/rexec/config; none is fine
//	h := f.Host("prod-db")      // nil when not named in the file
//	members := f.Groups["web"]  // target patterns, @groups among them
//
// The file:
//
//	port = 50051                      # for targets without one (default 50051)
//
//	[hosts.prod-db]
//	address = "10.0.0.5:50051"        # default: the name itself
//	key_file = "~/.config/rexec/prod.keys"
//	key_id = "ops"
//	tls_ca = "certs/ca.crt"           # relative paths: from the file's directory
//	tls_cert = "certs/client.crt"
//	tls_key = "certs/client.key"
//	tls_server_name = "db.internal"   # check the certificate for this name
//
//	[groups]
//	web = ["web[01-04]", "prod-db"]
//	all = ["@web", "db[1-2]:50052"]
//
// TOML because its tables say "a host named prod-db with these settings"
// with no indentation to get wrong, and go-toml/v2 decodes strictly: an
// unknown key (a typo such as keyfile) is an error naming its line, never
// ignored, as the key file's unknown options are.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// DefaultPort fills a target given without a port when the file gives none.
const DefaultPort = 50051

// File is a parsed configuration file. The zero File (no file) is valid.
type File struct {
	// Path is where the file was read from; empty when there was none.
	Path string
	// Port is the port of targets given without one.
	Port int
	// Hosts are the named hosts, by name.
	Hosts map[string]*Host
	// Groups are the host groups, by name (without the @): each member is
	// a target pattern, a host name or an @group.
	Groups map[string][]string
}

// Host is one named host: how to reach it and with what.
type Host struct {
	Name string
	// Address is HOST:PORT (or HOST, which gets the file's port); by
	// default the host's name.
	Address string `toml:"address"`
	// KeyFile and KeyID choose its key, as --key-file and --key-id.
	KeyFile string `toml:"key_file"`
	KeyID   string `toml:"key_id"`
	// TLSCA, TLSCert and TLSKey are its --tls-ca, --tls-cert, --tls-key.
	TLSCA   string `toml:"tls_ca"`
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// TLSServerName, when set, is the name its certificate must have
	// (instead of the host of Address).
	TLSServerName string `toml:"tls_server_name"`
}

type fileText struct {
	Port   int                 `toml:"port"`
	Hosts  map[string]*Host    `toml:"hosts"`
	Groups map[string][]string `toml:"groups"`
}

// MaxSize bounds the file; a larger one is refused unread.
const MaxSize = 1 << 20

// DefaultPath is ~/.config/rexec/config (under $XDG_CONFIG_HOME when that
// is set).
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no default config file: %w (give $REXEC_CONFIG)", err)
	}
	return filepath.Join(dir, "rexec", "config"), nil
}

// Load reads the file at path, else at getenv("REXEC_CONFIG") (getenv nil:
// os.Getenv), else at DefaultPath. A file named by path or $REXEC_CONFIG
// must exist; a missing default file is the zero File.
func Load(path string, getenv func(string) string) (*File, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if path == "" {
		path = getenv("REXEC_CONFIG")
	}
	explicit := path != ""
	if !explicit {
		var err error
		if path, err = DefaultPath(); err != nil {
			return &File{Port: DefaultPort}, nil
		}
	}
	data, err := readBounded(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return &File{Port: DefaultPort}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	return Parse(path, data)
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s is over %d bytes", path, MaxSize)
	}
	return data, nil
}

// Parse parses the text of a file read from path (which names it in
// errors and anchors its relative paths).
func Parse(path string, data []byte) (*File, error) {
	var ft fileText
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&ft); err != nil {
		return nil, explain(path, err)
	}
	f := &File{Path: path, Port: ft.Port, Hosts: ft.Hosts, Groups: ft.Groups}
	if f.Port == 0 {
		f.Port = DefaultPort
	}
	if f.Port < 1 || f.Port > 65535 {
		return nil, fmt.Errorf("%s: port = %d: want 1 to 65535", path, f.Port)
	}
	if f.Hosts == nil {
		f.Hosts = map[string]*Host{}
	}
	dir := filepath.Dir(path)
	for name, h := range f.Hosts {
		if h == nil {
			h = &Host{}
			f.Hosts[name] = h
		}
		if err := checkName(name); err != nil {
			return nil, fmt.Errorf("%s: [hosts.%s]: %w", path, name, err)
		}
		h.Name = name
		if h.Address == "" {
			h.Address = name
		}
		if strings.ContainsAny(h.Address, " ,@/") {
			return nil, fmt.Errorf("%s: [hosts.%s]: address %q is not HOST or HOST:PORT", path, name, h.Address)
		}
		if (h.TLSCert == "") != (h.TLSKey == "") {
			return nil, fmt.Errorf("%s: [hosts.%s]: tls_cert and tls_key go together", path, name)
		}
		for _, p := range []*string{&h.KeyFile, &h.TLSCA, &h.TLSCert, &h.TLSKey} {
			*p = resolvePath(dir, *p)
		}
	}
	for name, members := range f.Groups {
		if err := checkName(name); err != nil {
			return nil, fmt.Errorf("%s: [groups] %s: %w", path, name, err)
		}
		if len(members) == 0 {
			return nil, fmt.Errorf("%s: [groups] %s is empty", path, name)
		}
		if slices.Contains(members, "") {
			return nil, fmt.Errorf("%s: [groups] %s has an empty member", path, name)
		}
	}
	return f, nil
}

// Host returns the named host, or nil.
func (f *File) Host(name string) *Host {
	if f == nil {
		return nil
	}
	return f.Hosts[name]
}

func checkName(name string) error {
	if name == "" || strings.ContainsAny(name, " ,@[]/:") {
		return fmt.Errorf("name %q: a name has no spaces and none of , @ [ ] / :", name)
	}
	return nil
}

// resolvePath expands a leading ~/ and makes a relative path relative to
// dir, the config file's directory.
func resolvePath(dir, p string) string {
	switch {
	case p == "":
		return ""
	case strings.HasPrefix(p, "~/"):
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
		return p
	case filepath.IsAbs(p):
		return p
	}
	return filepath.Join(dir, p)
}

// explain turns a decoding error into one line that names the file, the
// line and what is wrong.
func explain(path string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		e := strict.Errors[0]
		row, _ := e.Position()
		return fmt.Errorf("%s:%d: unknown key %q (known: port, [hosts.NAME] address, key_file, key_id, tls_ca, tls_cert, tls_key, tls_server_name; [groups] NAME = [...])",
			path, row, strings.Join(e.Key(), "."))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		return fmt.Errorf("%s:%d:%d: %s", path, row, col, strings.TrimPrefix(de.Error(), "toml: "))
	}
	return fmt.Errorf("%s: %w", path, err)
}
