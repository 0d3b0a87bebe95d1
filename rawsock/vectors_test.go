package rawsock

import (
	"bytes"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/runner"
)

type vector struct {
	name string
	got  []byte
}

// vectors are docs/PROTOCOL.md's test vectors: each is built here with the
// package's own encoders, compared with the hex, and looked up in the doc.
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
	exit7 := appendExit(nil, &runner.Result{ExitCode: 7, Reason: runner.ReasonExited, Duration: 4500 * time.Microsecond, StdoutBytes: 3, StderrBytes: 4})
	exitTerm := appendExit(nil, &runner.Result{ExitCode: -1, Signal: 15, Reason: runner.ReasonTimeout, Duration: 2 * time.Second, SentSignal: 15})
	exitTrapped := appendExit(nil, &runner.Result{ExitCode: 0, Reason: runner.ReasonTimeout, Duration: 1 * time.Second, SentSignal: 15})
	exitOOM := appendExit(nil, &runner.Result{ExitCode: -1, Signal: 9, Reason: runner.ReasonOOM, Duration: 300 * time.Millisecond, SentSignal: 9,
		Usage:  runner.Usage{UserCPU: 120 * time.Millisecond, SystemCPU: 80 * time.Millisecond, PeakMemory: 64 << 20, PeakProcesses: 3, Cgroup: true},
		Limits: runner.Limits{Memory: 64 << 20}})
	return []vector{
		{"server hello", append([]byte{Version}, challenge[:]...)},
		{"client answer", appendAnswer(nil, "ops", proof)},
		{"status ok", []byte{StatusOK}},
		{"command", frame(TypeCommand, []byte(`{"shell":"echo hi"}`))},
		{"command with stdin", frame(TypeCommand, []byte(`{"argv":["tr","a-z","A-Z"],"timeout_ms":5000,"stdin":true}`))},
		{"stdin", frame(TypeStdin, []byte("hi\n"))},
		{"stdin-close", frame(TypeStdinClose)},
		{"signal", frame(TypeSignal, []byte("INT"))},
		{"echo", frame(TypeEcho, []byte{echoUpper}, []byte("hello"))},
		{"echo-reply", frame(TypeEchoReply, []byte("HELLO"))},
		{"started", frame(TypeStarted, []byte{0, 0, 0x10, 0x92}, []byte("1c6f3353a63b5101"))},
		{"stdout", frame(TypeStdout, []byte{0, 0, 0, 0, 0, 0, 0, 1}, []byte("hi\n"))},
		{"stderr", frame(TypeStderr, []byte{0, 0, 0, 0, 0, 0, 0, 2}, []byte("err\n"))},
		{"exit 7", frame(TypeExit, exit7)},
		{"exit by signal", frame(TypeExit, exitTerm)},
		{"exit after TERM", frame(TypeExit, exitTrapped)},
		{"exit by OOM", frame(TypeExit, exitOOM)},
		{"error", frame(TypeError, (&Error{CodeFailedPrecondition, `dir: "/nope": no such directory on the server`}).payload())},
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

func spaced(b []byte) string {
	h := hex.EncodeToString(b)
	var s strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			s.WriteByte(' ')
		}
		s.WriteString(h[i : i+2])
	}
	return s.String()
}

// TestVectors checks that every vector, as the Go encoders make it, is in
// docs/PROTOCOL.md on the line of its name, and that the frames decode back.
func TestVectors(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "PROTOCOL.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(string(doc), "\n") {
		if name, hexs, ok := strings.Cut(l, "  "); ok && !strings.HasPrefix(name, " ") && !strings.HasPrefix(name, "|") {
			lines[name] = strings.TrimSpace(hexs)
		}
	}
	for _, v := range vectors() {
		if got := spaced(v.got); lines[v.name] != got {
			t.Errorf("PROTOCOL.md vector %q:\n doc  %s\n code %s", v.name, lines[v.name], got)
		}
		if len(v.got) < 5 || v.got[0] != 0 {
			continue // a handshake vector
		}
		f, err := NewReader(bytes.NewReader(v.got), 0).Next()
		if err != nil || !bytes.Equal(AppendFrame(nil, f.Type, f.Payload), v.got) {
			t.Errorf("%s: decode: %v %v", v.name, f, err)
		}
	}
}

// TestVectorHandshake runs the server's side over the vector's bytes.
func TestVectorHandshake(t *testing.T) {
	v := vectors()
	secret, challenge := vectorSecret()
	ring := interceptors.NewKeyRing([]*interceptors.Key{{ID: "ops", Secret: secret}})
	rw := &scripted{in: bytes.NewReader(v[1].got)}
	key, err := serverHandshake(rw, ring, challenge)
	if err != nil || key.ID != "ops" {
		t.Fatalf("vector answer refused: %v", err)
	}
	if want := append(append([]byte{}, v[0].got...), v[2].got...); !bytes.Equal(rw.out.Bytes(), want) {
		t.Errorf("server wrote % x, want % x", rw.out.Bytes(), want)
	}
}

func TestVectorExitDecodes(t *testing.T) {
	for _, v := range vectors() {
		if !strings.HasPrefix(v.name, "exit") {
			continue
		}
		e, err := decodeExit(v.got[5:])
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"exit 7": 7, "exit by signal": 143, "exit after TERM": 143, "exit by OOM": 137}[v.name]; shellStatus(e) != want {
			t.Errorf("%s: status %d, want %d", v.name, shellStatus(e), want)
		}
		if v.name == "exit by OOM" {
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

// TestExitRecordVersions: a reader takes the first version's 39-byte record
// (no sent signal), the second's 40 bytes (no usage) and a longer one from a
// newer server (bytes past the fields it knows are ignored); a shorter one
// is an error.
func TestExitRecordVersions(t *testing.T) {
	rec := appendExit(nil, &runner.Result{ExitCode: 0, Reason: runner.ReasonTimeout, SentSignal: 9, StderrBytes: 5,
		Usage: runner.Usage{UserCPU: time.Second, PeakProcesses: 2}})
	if len(rec) != ExitLen || ExitLen != 80 {
		t.Fatalf("record of %d bytes, ExitLen %d, want 80", len(rec), ExitLen)
	}
	for _, tc := range []struct {
		name   string
		p      []byte
		sent   int32
		status int
		usage  bool
	}{
		{"v1, 39 bytes", rec[:39], 0, 0, false},
		{"v2, 40 bytes", rec[:40], 9, 137, false},
		{"this version", rec, 9, 137, true},
		{"a newer one", append(append([]byte{}, rec...), 1, 2, 3), 9, 137, true},
	} {
		e, err := decodeExit(tc.p)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if e.GetSentSignalNumber() != tc.sent || shellStatus(e) != tc.status || e.GetStderrBytes() != 5 {
			t.Errorf("%s: %v, want sent signal %d, status %d", tc.name, e, tc.sent, tc.status)
		}
		if got := e.GetUsage().GetUserCpu().AsDuration() == time.Second && e.GetUsage().GetPeakProcesses() == 2; got != tc.usage {
			t.Errorf("%s: usage %v, want it decoded: %v", tc.name, e.GetUsage(), tc.usage)
		}
	}
	if _, err := decodeExit(rec[:38]); err == nil {
		t.Error("a 38-byte exit record decoded")
	}
}

// scripted is a connection whose peer's bytes are given in advance.
type scripted struct {
	in  io.Reader
	out bytes.Buffer
}

func (s *scripted) Read(p []byte) (int, error)  { return s.in.Read(p) }
func (s *scripted) Write(p []byte) (int, error) { return s.out.Write(p) }
