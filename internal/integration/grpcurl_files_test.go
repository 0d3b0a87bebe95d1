package integration

import (
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
)

// TestGrpcurlFiles: the file service through reflection, as README shows
// it: stat, list and a small download with a key confined to a root.
func TestGrpcurlFiles(t *testing.T) {
	grpcurl := testenv.Tool(t, "grpcurl")
	root := t.TempDir()
	k, err := interceptors.GenerateKey("drop", interceptors.ScopeFiles)
	if err != nil {
		t.Fatal(err)
	}
	k.Root = root
	srv := testenv.StartServer(t, testenv.Options{ExtraKeys: []*interceptors.Key{k}})
	content := []byte("hello from the root\n")
	os.WriteFile(filepath.Join(root, "hello.txt"), content, 0o644)
	os.Mkdir(filepath.Join(root, "sub"), 0o755)

	call := func(method, body string) string {
		t.Helper()
		tok := interceptors.Mint(k, "/rexec.v1.FileService/"+method, srv.Addr, time.Now())
		out, stderr, err := run(t, grpcurl, "-plaintext", "-H", "authorization: "+tok, "-d", body, srv.Addr, "rexec.v1.FileService/"+method)
		if err != nil {
			t.Fatalf("%s: %v %s", method, err, stderr)
		}
		return out
	}
	if out := call("Stat", `{"path":"hello.txt"}`); !strings.Contains(out, `"type": "FILE_TYPE_REGULAR"`) || !strings.Contains(out, `"size": "20"`) {
		t.Errorf("stat:\n%s", out)
	}
	if out := call("List", `{"path":""}`); !strings.Contains(out, `"name": "hello.txt"`) || !strings.Contains(out, `"name": "sub"`) {
		t.Errorf("list:\n%s", out)
	}
	msgs := decodeJSONStream(t, call("Download", `{"path":"hello.txt"}`))
	if len(msgs) != 3 || msgs[0]["info"] == nil || msgs[1]["chunk"] == nil || msgs[2]["done"] == nil {
		t.Fatalf("download: %v", msgs)
	}
	data, _ := base64.StdEncoding.DecodeString(msgs[1]["chunk"]["data"].(string))
	sum, _ := base64.StdEncoding.DecodeString(msgs[2]["done"]["sha256"].(string))
	want := sha256.Sum256(content)
	if string(data) != string(content) || string(sum) != string(want[:]) {
		t.Errorf("download gave %q and sha256 %x", data, sum)
	}
	// files does not allow writing.
	tok := interceptors.Mint(k, "/rexec.v1.FileService/Mkdir", srv.Addr, time.Now())
	_, stderr, err := run(t, grpcurl, "-plaintext", "-H", "authorization: "+tok, "-d", `{"path":"x"}`, srv.Addr, "rexec.v1.FileService/Mkdir")
	if err == nil || !strings.Contains(stderr, "Code: PermissionDenied") {
		t.Errorf("mkdir with a files-only key: %v %s", err, stderr)
	}
}
