package rawserver_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/rawsock"
	"github.com/rexec/rexec/rawsock/rawserver"
)

// TestCommandParsedStrictly sends command payloads by hand that
// encoding/json would have run (case-folded names, a duplicate, junk after
// the object, text that is not UTF-8, raw or as an escape) or misread (a
// timeout out of range): each is InvalidArgument naming what is wrong,
// nothing runs, and the connection runs the next good command.
func TestCommandParsedStrictly(t *testing.T) {
	s := start(t, rawserver.Config{})
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	touch := `touch ` + marker
	cases := []struct {
		name, payload string
		want          []string // in the error message
	}{
		{"field name in another case", `{"SHELL":"` + touch + `"}`, []string{"command", `unknown field "SHELL"`}},
		{"field name, first letter upper", `{"Shell":"` + touch + `"}`, []string{`unknown field "Shell"`}},
		{"duplicate field", `{"shell":"true","shell":"` + touch + `"}`, []string{"command", `field "shell" given twice`}},
		{"duplicate field, other names between", `{"argv":["true"],"dir":"/","argv":["touch","` + marker + `"]}`, []string{`field "argv" given twice`}},
		{"junk after the object", `{"shell":"` + touch + `"} junk`, []string{"command", "bytes after the JSON object"}},
		{"a second object", `{"shell":"` + touch + `"}{}`, []string{"bytes after the JSON object"}},
		{"not an object", `null`, []string{"command", "not a JSON object"}},
		{"an array", `["touch","` + marker + `"]`, []string{"not a JSON object"}},
		{"invalid UTF-8 in shell", "{\"shell\":\"" + touch + "\xff\"}", []string{"shell:", "not valid UTF-8"}},
		{"invalid UTF-8 in argv[2]", "{\"argv\":[\"touch\",\"" + marker + "\",\"a\xffb\"]}", []string{"argv[2]:", "not valid UTF-8"}},
		{"lone surrogate escape in shell", `{"shell":"` + touch + `\ud800"}`, []string{"shell:", "not valid UTF-8"}},
		{"lone low surrogate in argv[1]", `{"argv":["touch","` + marker + `\udcff"]}`, []string{"argv[1]:", "not valid UTF-8"}},
		{"reversed surrogate pair", `{"argv":["touch","` + marker + `\ude00\ud83d"]}`, []string{"argv[1]:", "not valid UTF-8"}},
		{"invalid UTF-8 in env", "{\"shell\":\"" + touch + "\",\"env\":[\"A=\xc3\"]}", []string{"env[0]:", "not valid UTF-8"}},
		{"invalid UTF-8 in dir", "{\"shell\":\"" + touch + "\",\"dir\":\"/\xff\"}", []string{"dir:", "not valid UTF-8"}},
		{"negative timeout_ms", `{"shell":"` + touch + `","timeout_ms":-1}`, []string{"timeout_ms:", "negative"}},
		{"hugely negative timeout_ms (wrapped to a few ns)", `{"shell":"` + touch + `","timeout_ms":-9223372036854775807}`, []string{"timeout_ms:", "negative"}},
		{"timeout_ms past a Duration", `{"shell":"` + touch + `","timeout_ms":9223372036854775807}`, []string{"timeout_ms:", "too large"}},
		{"timeout_ms past int64", `{"shell":"` + touch + `","timeout_ms":99999999999999999999}`, []string{"timeout_ms:", "out of range"}},
		{"fractional timeout_ms", `{"shell":"` + touch + `","timeout_ms":0.5}`, []string{"timeout_ms:", "integer"}},
		{"argv not an array", `{"argv":"touch ` + marker + `"}`, []string{"argv:", "array of strings"}},
		{"stdin not a bool", `{"shell":"` + touch + `","stdin":"yes"}`, []string{"stdin:", "bool"}},
	}
	nc := s.handshaken(t)
	rd := rawsock.NewReader(nc, 0)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc.Write(rawsock.AppendFrame(nil, rawsock.TypeCommand, []byte(tc.payload)))
			f, err := rd.Next()
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if f.Type != rawsock.TypeError {
				t.Fatalf("got a %v frame, want an error frame (the command was accepted)", f.Type)
			}
			code, msg := rawsock.Code(f.Payload[0]), string(f.Payload[1:])
			if code != rawsock.CodeInvalidArgument {
				t.Errorf("code %v, want InvalidArgument (%s)", code, msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not say %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("message is not one line: %q", msg)
			}
		})
	}
	// The connection is still usable, and nothing ran.
	nc.Write(rawsock.AppendFrame(nil, rawsock.TypeCommand, []byte(`{"argv":["echo","ok \u00e9 \ud83d\ude00"]}`)))
	out := ""
	for out == "" || !strings.HasSuffix(out, "\n") {
		f, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		switch f.Type {
		case rawsock.TypeStdout:
			out += string(f.Payload[8:])
		case rawsock.TypeError:
			t.Fatalf("the good command after the bad ones: %s", f.Payload[1:])
		}
	}
	if out != "ok é 😀\n" {
		t.Errorf("good command's output %q (escapes of valid text, a surrogate pair included, are text)", out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a refused command ran: the marker file exists")
	}
}

// TestClientTimeoutRange: the raw protocol counts whole milliseconds. A
// timeout under one (other than none) used to become 0, "the server's
// maximum", and run `sleep 2` to its end; now it is refused before sending,
// as a negative one is; a fraction is rounded up, never down to 0.
func TestClientTimeoutRange(t *testing.T) {
	s := start(t, rawserver.Config{})
	c := s.dial(t)
	for _, d := range []time.Duration{500 * time.Microsecond, time.Nanosecond, -time.Second, -time.Nanosecond} {
		ex, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: "sleep 2; echo slept", Timeout: durationpb.New(d)}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "timeout") {
			t.Errorf("timeout %v: %v, %v; want refused, naming the timeout", d, ex, err)
		}
	}
	ex, err := c.Run(context.Background(), &rexecv1.RunRequest{Shell: "sleep 2; echo slept", Timeout: durationpb.New(1500 * time.Microsecond)}, io.Discard, io.Discard)
	if err != nil || !ex.GetTimedOut() {
		t.Errorf("timeout 1.5ms: %v, %v; want the command timed out", ex, err)
	}
}
