package interceptors

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyLineOptions: every way a line's options can be wrong is an error
// that names the line and what is wrong; none is ignored.
func TestKeyLineOptions(t *testing.T) {
	s := vectorSecretB64
	bad := []struct {
		name, text string
		want       []string // all in the error
	}{
		{"options without scopes", "ok " + s + "\nci " + s + " cert=alice",
			[]string{"line 2", `key "ci"`, "must list its scopes", "cert=alice"}},
		{"unknown option", "ci " + s + " exec chroot=/srv",
			[]string{"line 1", `unknown option "chroot"`, "known: cert, root, quota, user, memory, pids, cpu, nofile, fsize, max"}},
		{"unknown option after a good one", "ci " + s + " exec cert=alice quotas=1G",
			[]string{"line 1", `unknown option "quotas"`}},
		{"root without scopes", "ci " + s + " root=/srv/drop",
			[]string{"line 1", "must list its scopes", "root=/srv/drop"}},
		{"relative root", "ci " + s + " files root=srv/drop",
			[]string{"line 1", `root="srv/drop"`, "not absolute", "want an absolute directory path"}},
		{"quota without root", "ci " + s + " files-write quota=10G",
			[]string{"line 1", "quota= needs root="}},
		{"bad quota", "ci " + s + " files-write root=/srv quota=10GB",
			[]string{"line 1", `quota="10GB"`, "not a size", "K, M, G or T"}},
		{"zero quota", "ci " + s + " files-write root=/srv quota=0",
			[]string{"line 1", "refuses every upload"}},
		{"unknown file scope", "ci " + s + " file root=/srv",
			[]string{"line 1", `unknown scope "file"`, "files,files-write"}},
		{"user that is no name", "ci " + s + " exec user=a/b",
			[]string{"line 1", `option user="a/b": is not a user name`, "want the name of a unix user"}},
		{"memory under 1M", "ci " + s + " exec memory=512K",
			[]string{"line 1", `option memory="512K": under 1M`}},
		{"memory not a size", "ci " + s + " exec memory=lots",
			[]string{"line 1", `option memory="lots"`, "not a size"}},
		{"pids not a number", "ci " + s + " exec pids=1e3",
			[]string{"line 1", `option pids="1e3": not a whole number`}},
		{"pids 0", "ci " + s + " exec pids=0",
			[]string{"line 1", `option pids="0": under 1`}},
		{"cpu with four decimals", "ci " + s + " exec cpu=0.0001",
			[]string{"line 1", `option cpu="0.0001": not a number of CPUs`}},
		{"cpu 0", "ci " + s + " exec cpu=0",
			[]string{"line 1", `option cpu="0": 0 CPUs runs nothing`}},
		{"max 0", "ci " + s + " exec max=0",
			[]string{"line 1", `option max="0": under 1`}},
		{"duplicate option", "ci " + s + " exec cert=alice cert=bob",
			[]string{"line 1", `option "cert" given twice`}},
		{"empty value", "ci " + s + " exec cert=",
			[]string{"line 1", "option cert= is empty", "want the identity of a client certificate"}},
		{"control character", "ci " + s + " exec cert=a\x01b",
			[]string{"line 1", "control character", "want the identity"}},
		{"option without a name", "ci " + s + " exec =alice",
			[]string{"line 1", `"=alice" has no name`}},
		{"a second scope list", "ci " + s + " exec echo",
			[]string{"line 1", `"echo"`, "want NAME=VALUE", "one comma-separated list"}},
		{"a bare word after an option", "ci " + s + " exec cert=alice echo",
			[]string{"line 1", `"echo"`, "want NAME=VALUE"}},
		{"duplicate id, plain lines", "# keys\nk " + s + "\n\nk " + s,
			[]string{"lines 2 and 4", `key id "k"`, "its own id"}},
		{"duplicate id, with options", "a " + s + "\nk " + s + " exec cert=x\nk " + s + " echo",
			[]string{"lines 2 and 3", `key id "k"`}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseKeys([]byte(c.text))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestKeyLineRoundTrip: Line writes what ParseKeys read, options included.
func TestKeyLineRoundTrip(t *testing.T) {
	s := vectorSecretB64
	for _, line := range []string{
		"plain " + s,
		"scoped " + s + " exec,echo",
		"bound " + s + " exec,session cert=alice",
		"spiffe " + s + " echo cert=spiffe://example.org/ci/a=b",
		"drop " + s + " files,files-write root=/srv/drop quota=10G",
		"odd " + s + " files-write cert=ci root=/ quota=1025",
		"alice " + s + " exec,session user=alice memory=512M pids=256 cpu=1.5 nofile=1024 fsize=1G max=4",
		"odd " + s + " exec memory=1536M cpu=0.25 fsize=1000",
	} {
		keys, err := ParseKeys([]byte(line + "\n"))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if got := keys[0].Line(); got != line {
			t.Errorf("round trip:\n got %s\nwant %s", got, line)
		}
	}
	keys, _ := ParseKeys([]byte("spiffe " + s + " echo cert=spiffe://example.org/ci/a=b\n"))
	if keys[0].Cert != "spiffe://example.org/ci/a=b" {
		t.Errorf("cert= takes everything after the first '=': %q", keys[0].Cert)
	}
	keys, _ = ParseKeys([]byte("d " + s + " files root=/srv/drop/../x/ quota=512M\n"))
	if keys[0].Root != "/srv/x" || keys[0].Quota != 512<<20 {
		t.Errorf("root= is cleaned and quota= read as bytes: %q %d", keys[0].Root, keys[0].Quota)
	}
	keys, _ = ParseKeys([]byte("alice " + s + " exec user=alice memory=512M pids=256 cpu=1.5 nofile=1024 fsize=1G max=4\n"))
	if k := keys[0]; k.User != "alice" || k.Max != 4 ||
		k.Limits != (Limits{Memory: 512 << 20, Pids: 256, MilliCPU: 1500, NoFile: 1024, FSize: 1 << 30}) {
		t.Errorf("parsed %q, max %d, limits %+v", k.User, k.Max, k.Limits)
	}
	// Extra spaces and tabs between fields are one separator.
	keys, err := ParseKeys([]byte("  t \t" + s + "   exec\tcert=bob  \n"))
	if err != nil || keys[0].Cert != "bob" || !keys[0].ListsScope(ScopeExec) {
		t.Errorf("whitespace: %v %+v", err, keys)
	}
}

// TestListsScope: an explicit scope is listed; one implied by an empty list
// is allowed but not listed (issue 19's admin rule rests on this).
func TestListsScope(t *testing.T) {
	keys, err := ParseKeys([]byte("all " + vectorSecretB64 + "\nadm " + vectorSecretB64 + " exec,admin\n"))
	if err != nil {
		t.Fatal(err)
	}
	all, adm := keys[0], keys[1]
	if !all.Allows(ScopeAdmin) || all.ListsScope(ScopeAdmin) {
		t.Error("a key with no scopes allows admin but does not list it")
	}
	if !all.Allows(ScopeFiles) || !all.Allows(ScopeFilesWrite) || all.Allows(ScopeReplay) {
		t.Error("a key with no scopes allows the file scopes (it has exec), not replay")
	}
	if !adm.ListsScope(ScopeAdmin) || !adm.ListsScope(ScopeExec) || adm.ListsScope(ScopeEcho) {
		t.Error("a key lists exactly the scopes on its line")
	}
}

// TestLoadKeyFileDuplicateID is issue 15's case as a user makes it:
// `rexec keygen >> keys` twice appends two "default" lines.
func TestLoadKeyFileDuplicateID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	a, _ := GenerateKey("default")
	b, _ := GenerateKey("default")
	if err := os.WriteFile(path, []byte("# rexec keys\n"+a.Line()+"\n"+b.Line()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadKeyFile(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `lines 2 and 3 both have key id "default"`) {
		t.Fatalf("got %v, want an error naming the file and both lines", err)
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"0": 0, "1": 1, "4096": 4096, "1K": 1 << 10, "1k": 1 << 10, "512M": 512 << 20, "10G": 10 << 30,
		"2t": 2 << 40, "8388607T": 8388607 << 40,
	}
	for s, want := range good {
		if got, err := ParseSize(s); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "M", "-1", "+1", "1.5G", "1 G", "1GB", "1KiB", "0x10", "8388608T", "99999999999999999999"} {
		if got, err := ParseSize(s); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", s, got)
		}
	}
}

// TestFileMethodScopes: reading methods need files, changing ones
// files-write, and neither implies the other.
func TestFileMethodScopes(t *testing.T) {
	for m, want := range map[string]string{
		"Stat": ScopeFiles, "List": ScopeFiles, "Download": ScopeFiles, "Usage": ScopeFiles, "ListUploads": ScopeFiles,
		"Upload": ScopeFilesWrite, "StartUpload": ScopeFilesWrite, "QueryUpload": ScopeFilesWrite,
		"CancelUpload": ScopeFilesWrite, "Mkdir": ScopeFilesWrite, "Remove": ScopeFilesWrite,
		"Rename": ScopeFilesWrite, "Symlink": ScopeFilesWrite, "SetAttributes": ScopeFilesWrite,
		"Chmod": "",
	} {
		if got := MethodScope("/rexec.v1.FileService/" + m); got != want {
			t.Errorf("%s needs %q, want %q", m, got, want)
		}
	}
	keys, err := ParseKeys([]byte("r " + vectorSecretB64 + " files root=/srv\nw " + vectorSecretB64 + " files-write root=/srv\n"))
	if err != nil {
		t.Fatal(err)
	}
	if keys[0].Allows(ScopeFilesWrite) || keys[1].Allows(ScopeFiles) {
		t.Error("files and files-write are separate scopes")
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{0: "", 1: "1", 1024: "1K", 1536: "1536", 10 << 30: "10G", 3 << 40: "3T", 5<<20 + 1: "5242881"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
		if n > 0 {
			if back, err := ParseSize(formatSize(n)); err != nil || back != n {
				t.Errorf("ParseSize(formatSize(%d)) = %d, %v", n, back, err)
			}
		}
	}
}

// TestSetLimit: the CLI's --limit takes the key file's words.
func TestSetLimit(t *testing.T) {
	var l Limits
	for _, kv := range [][2]string{{"memory", "64M"}, {"pids", "10"}, {"cpu", ".5"}, {"nofile", "64"}, {"fsize", "1K"}} {
		if err := l.SetLimit(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if l != (Limits{Memory: 64 << 20, Pids: 10, MilliCPU: 500, NoFile: 64, FSize: 1024}) {
		t.Errorf("limits %+v", l)
	}
	if err := l.SetLimit("swap", "1G"); err == nil || !strings.Contains(err.Error(), `unknown limit "swap" (known: memory, pids, cpu, nofile, fsize)`) {
		t.Errorf("unknown limit: %v", err)
	}
	if err := l.SetLimit("cpu", "1."); err == nil || !strings.Contains(err.Error(), `cpu="1.": not a number of CPUs: want a number of CPUs above 0`) {
		t.Errorf("cpu=1.: %v", err)
	}
}
