package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const sample = `
# a fleet
port = 50061

[hosts.prod-db]
address = "10.0.0.5:50051"
key_file = "keys/prod"
key_id = "ops"
tls_ca = "/etc/rexec/ca.crt"
tls_cert = "certs/c.crt"
tls_key = "certs/c.key"
tls_server_name = "db.internal"

[hosts.web1]

[groups]
web = ["web[01-04]", "prod-db"]
all = ["@web", "db[1-2]:50052"]
`

func TestParse(t *testing.T) {
	f, err := Parse("/home/u/.config/rexec/config", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if f.Port != 50061 {
		t.Errorf("port %d", f.Port)
	}
	h := f.Host("prod-db")
	if h == nil {
		t.Fatal("no prod-db")
	}
	want := Host{Name: "prod-db", Address: "10.0.0.5:50051", KeyFile: "/home/u/.config/rexec/keys/prod", KeyID: "ops",
		TLSCA: "/etc/rexec/ca.crt", TLSCert: "/home/u/.config/rexec/certs/c.crt", TLSKey: "/home/u/.config/rexec/certs/c.key", TLSServerName: "db.internal"}
	if *h != want {
		t.Errorf("prod-db = %+v\nwant %+v", *h, want)
	}
	if w := f.Host("web1"); w == nil || w.Address != "web1" {
		t.Errorf("web1 = %+v, want its name as its address", w)
	}
	if f.Host("nope") != nil {
		t.Error("a host not in the file")
	}
	if g := f.Groups["all"]; len(g) != 2 || g[0] != "@web" {
		t.Errorf("groups %v", f.Groups)
	}
}

// TestParseRefuses: a typo, a bad value or a bad name is an error naming
// the file and, where the decoder knows it, the line.
func TestParseRefuses(t *testing.T) {
	for name, c := range map[string]struct{ text, want string }{
		"unknown key":        {"[hosts.a]\nkeyfile = \"x\"\n", `config:2: unknown key "hosts.a.keyfile"`},
		"unknown top key":    {"prot = 1\n", `config:1: unknown key "prot"`},
		"bad toml":           {"[hosts.a\n", "config:1:"},
		"wrong type":         {"port = \"x\"\n", "config:1:"},
		"port out of range":  {"port = 70000\n", "want 1 to 65535"},
		"bad host name":      {"[hosts.\"a b\"]\n", `name "a b"`},
		"bad group name":     {"[groups]\n\"x,y\" = [\"a\"]\n", `name "x,y"`},
		"empty group":        {"[groups]\nweb = []\n", "web is empty"},
		"cert without key":   {"[hosts.a]\ntls_cert = \"c\"\n", "go together"},
		"address with comma": {"[hosts.a]\naddress = \"b,c\"\n", "not HOST or HOST:PORT"},
	} {
		_, err := Parse("/x/config", []byte(c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	// No file at the default path: the zero file, no error.
	f, err := Load("", getenv)
	if err != nil || f.Port != DefaultPort || len(f.Hosts) != 0 {
		t.Fatalf("no file: %+v %v", f, err)
	}
	// A file named explicitly, or by $REXEC_CONFIG, must exist.
	if _, err := Load(filepath.Join(dir, "missing"), getenv); err == nil {
		t.Error("a missing explicit file was accepted")
	}
	env["REXEC_CONFIG"] = filepath.Join(dir, "missing")
	if _, err := Load("", getenv); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing $REXEC_CONFIG file: %v", err)
	}
	delete(env, "REXEC_CONFIG")
	path := filepath.Join(dir, "rexec", "config")
	os.MkdirAll(filepath.Dir(path), 0o755)
	os.WriteFile(path, []byte(sample), 0o644)
	if f, err := Load("", getenv); err != nil || f.Path != path || f.Host("prod-db") == nil {
		t.Fatalf("default path: %+v %v", f, err)
	}
	other := filepath.Join(dir, "other")
	os.WriteFile(other, []byte("[hosts.x]\n"), 0o644)
	env["REXEC_CONFIG"] = other
	if f, err := Load("", getenv); err != nil || f.Host("x") == nil || f.Host("prod-db") != nil {
		t.Fatalf("$REXEC_CONFIG: %+v %v", f, err)
	}
	os.WriteFile(path, make([]byte, MaxSize+1), 0o644)
	if _, err := Load(path, getenv); err == nil || !strings.Contains(err.Error(), "over") {
		t.Errorf("oversize file: %v", err)
	}
}
