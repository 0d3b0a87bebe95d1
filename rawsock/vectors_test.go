package rawsock

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

type vector struct {
	name string
	got  []byte
}

// vectors are docs/PROTOCOL.md's test vectors that a client sends, each
// built here with the package's own encoders; the server's are built in
// rawserver's vectors_test.go.
func vectors() []vector {
	secret, challenge := vectorSecret()
	proof := Proof(secret, challenge[:], "ops")
	frame := func(t Type, parts ...[]byte) []byte {
		var b bytes.Buffer
		if err := WriteFrame(&b, t, parts...); err != nil {
			panic(err)
		}
		return b.Bytes()
	}
	return []vector{
		{"client answer", appendAnswer(nil, "ops", proof)},
		{"command", frame(TypeCommand, []byte(`{"shell":"echo hi"}`))},
		{"command with stdin", frame(TypeCommand, []byte(`{"argv":["tr","a-z","A-Z"],"timeout_ms":5000,"stdin":true}`))},
		{"stdin", frame(TypeStdin, []byte("hi\n"))},
		{"stdin-close", frame(TypeStdinClose)},
		{"signal", frame(TypeSignal, []byte("INT"))},
		{"echo", frame(TypeEcho, []byte{EchoUpper}, []byte("hello"))},
	}
}

// vectorSecret is the vectors' key secret (00 01 … 1f) and challenge (a0 … bf).
func vectorSecret() ([]byte, [ChallengeLen]byte) {
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = byte(i)
	}
	var challenge [ChallengeLen]byte
	for i := range challenge {
		challenge[i] = 0xa0 + byte(i)
	}
	return secret, challenge
}

// docVectors are PROTOCOL.md's vectors: a line "name  hex bytes" each.
func docVectors(t testing.TB) map[string][]byte {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "PROTOCOL.md"))
	if err != nil {
		t.Fatal(err)
	}
	vs := map[string][]byte{}
	for _, l := range strings.Split(string(doc), "\n") {
		name, hexs, ok := strings.Cut(l, "  ")
		if !ok || strings.HasPrefix(name, " ") || strings.HasPrefix(name, "|") {
			continue
		}
		if b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(hexs), " ", "")); err == nil && len(b) > 0 {
			vs[name] = b
		}
	}
	return vs
}

// TestVectors checks that every vector a client sends, as the Go encoders
// make it, is in docs/PROTOCOL.md on the line of its name, and that every
// frame of the doc, either side's, decodes and encodes back to itself.
func TestVectors(t *testing.T) {
	doc := docVectors(t)
	for _, v := range vectors() {
		if !bytes.Equal(doc[v.name], v.got) {
			t.Errorf("PROTOCOL.md vector %q:\n doc  % x\n code % x", v.name, doc[v.name], v.got)
		}
	}
	frames := 0
	for name, b := range doc {
		if len(b) < 5 || b[0] != 0 {
			continue // a handshake vector
		}
		frames++
		f, err := NewReader(bytes.NewReader(b), 0).Next()
		if err != nil || !bytes.Equal(AppendFrame(nil, f.Type, f.Payload), b) {
			t.Errorf("%s: decode: %v %v", name, f, err)
		}
	}
	if frames < 15 {
		t.Errorf("PROTOCOL.md has %d frame vectors, want the 15 or more it has", frames)
	}
}

// TestVectorExitDecodes decodes the doc's exit frames as a client does.
func TestVectorExitDecodes(t *testing.T) {
	doc := docVectors(t)
	for name, want := range map[string]struct {
		status     int
		sentSignal string
	}{"exit 7": {7, ""}, "exit by signal": {143, "TERM"}, "exit after TERM": {143, "TERM"}, "exit by OOM": {137, "KILL"}} {
		e, err := decodeExit(doc[name][5:])
		if err != nil {
			t.Fatal(err)
		}
		if shellStatus(e) != want.status || e.GetSentSignal() != want.sentSignal {
			t.Errorf("%s: status %d, sent signal %q; want %d %q", name, shellStatus(e), e.GetSentSignal(), want.status, want.sentSignal)
		}
		if name == "exit by OOM" {
			u := e.GetUsage()
			if e.GetReason() != rexecv1.EndReason_END_REASON_OOM || u.GetUserCpu().AsDuration() != 120*time.Millisecond ||
				u.GetSystemCpu().AsDuration() != 80*time.Millisecond || u.GetPeakMemoryBytes() != 64<<20 || u.GetPeakProcesses() != 3 || !u.GetCgroup() ||
				!strings.Contains(e.GetMessage(), "memory limit of 64.0 MiB (memory=64M)") {
				t.Errorf("exit by OOM decoded as %v", e)
			}
		}
	}
}

// shellStatus is PROTOCOL.md's rule for the status a shell reports.
func shellStatus(e *rexecv1.Exited) int {
	switch {
	case e.GetSentSignalNumber() > 0:
		return 128 + int(e.GetSentSignalNumber())
	case e.GetSignalNumber() > 0:
		return 128 + int(e.GetSignalNumber())
	}
	return int(e.GetExitCode())
}
