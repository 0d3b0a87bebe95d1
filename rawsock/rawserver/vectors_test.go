package rawserver

import (
	"bytes"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/rawsock"
	"github.com/rexec/rexec/runner"
)

type vector struct {
	name string
	got  []byte
}

// vectors are docs/PROTOCOL.md's test vectors that a server sends, each
// built here with the server's encoders; a client's are built in rawsock's
// vectors_test.go.
func vectors() []vector {
	_, challenge := vectorSecret()
	frame := func(t rawsock.Type, parts ...[]byte) []byte {
		var b bytes.Buffer
		if err := rawsock.WriteFrame(&b, t, parts...); err != nil {
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
		{"server hello", append([]byte{rawsock.Version}, challenge[:]...)},
		{"status ok", []byte{rawsock.StatusOK}},
		{"echo-reply", frame(rawsock.TypeEchoReply, []byte("HELLO"))},
		{"started", frame(rawsock.TypeStarted, []byte{0, 0, 0x10, 0x92}, []byte("1c6f3353a63b5101"))},
		{"stdout", frame(rawsock.TypeStdout, []byte{0, 0, 0, 0, 0, 0, 0, 1}, []byte("hi\n"))},
		{"stderr", frame(rawsock.TypeStderr, []byte{0, 0, 0, 0, 0, 0, 0, 2}, []byte("err\n"))},
		{"exit 7", frame(rawsock.TypeExit, exit7)},
		{"exit by signal", frame(rawsock.TypeExit, exitTerm)},
		{"exit after TERM", frame(rawsock.TypeExit, exitTrapped)},
		{"exit by OOM", frame(rawsock.TypeExit, exitOOM)},
		{"error", frame(rawsock.TypeError, (&rawsock.Error{Code: rawsock.CodeFailedPrecondition, Message: `dir: "/nope": no such directory on the server`}).Payload())},
	}
}

// vectorSecret is the vectors' key secret (00 01 … 1f) and challenge (a0 … bf).
func vectorSecret() ([]byte, [rawsock.ChallengeLen]byte) {
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = byte(i)
	}
	var challenge [rawsock.ChallengeLen]byte
	for i := range challenge {
		challenge[i] = 0xa0 + byte(i)
	}
	return secret, challenge
}

// docVector is PROTOCOL.md's vector of that name: a line "name  hex bytes".
func docVector(t testing.TB, name string) []byte {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "PROTOCOL.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(doc), "\n") {
		if n, hexs, ok := strings.Cut(l, "  "); ok && n == name {
			b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(hexs), " ", ""))
			if err != nil {
				t.Fatalf("PROTOCOL.md vector %q: %v", name, err)
			}
			return b
		}
	}
	t.Fatalf("PROTOCOL.md has no vector %q", name)
	return nil
}

// TestVectors checks that every vector a server sends, as the Go encoders
// make it, is in docs/PROTOCOL.md on the line of its name.
func TestVectors(t *testing.T) {
	for _, v := range vectors() {
		if doc := docVector(t, v.name); !bytes.Equal(doc, v.got) {
			t.Errorf("PROTOCOL.md vector %q:\n doc  % x\n code % x", v.name, doc, v.got)
		}
	}
}

// TestVectorHandshake runs the server's side over the doc's client answer.
func TestVectorHandshake(t *testing.T) {
	secret, challenge := vectorSecret()
	ring := interceptors.NewKeyRing([]*interceptors.Key{{ID: "ops", Secret: secret}})
	rw := &scripted{in: bytes.NewReader(docVector(t, "client answer"))}
	key, err := serverHandshake(rw, ring, challenge)
	if err != nil || key.ID != "ops" {
		t.Fatalf("vector answer refused: %v", err)
	}
	if want := append(docVector(t, "server hello"), docVector(t, "status ok")...); !bytes.Equal(rw.out.Bytes(), want) {
		t.Errorf("server wrote % x, want % x", rw.out.Bytes(), want)
	}
}

// TestExitRecordVersions: a reader takes the first version's 39-byte record
// (no sent signal), the second's 40 bytes (no usage) and a longer one from a
// newer server (bytes past the fields it knows are ignored); a shorter one
// is an error.
func TestExitRecordVersions(t *testing.T) {
	rec := appendExit(nil, &runner.Result{ExitCode: 0, Reason: runner.ReasonTimeout, SentSignal: 9, StderrBytes: 5,
		Usage: runner.Usage{UserCPU: time.Second, PeakProcesses: 2}})
	if len(rec) != rawsock.ExitLen || rawsock.ExitLen != 80 {
		t.Fatalf("record of %d bytes, ExitLen %d, want 80", len(rec), rawsock.ExitLen)
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
		e, err := rawsock.DecodeExit(tc.p)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		status := int(e.GetExitCode())
		if e.GetSentSignalNumber() > 0 {
			status = 128 + int(e.GetSentSignalNumber())
		}
		if e.GetSentSignalNumber() != tc.sent || status != tc.status || e.GetStderrBytes() != 5 {
			t.Errorf("%s: %v, want sent signal %d, status %d", tc.name, e, tc.sent, tc.status)
		}
		if got := e.GetUsage().GetUserCpu().AsDuration() == time.Second && e.GetUsage().GetPeakProcesses() == 2; got != tc.usage {
			t.Errorf("%s: usage %v, want it decoded: %v", tc.name, e.GetUsage(), tc.usage)
		}
	}
	if _, err := rawsock.DecodeExit(rec[:38]); err == nil {
		t.Error("a 38-byte exit record decoded")
	}
}

// TestOOMMessageAsTheServerSaysIt: the raw client words an OOM end as the
// gRPC server does (rawsock cannot import the runner, so it has its own).
func TestOOMMessageAsTheServerSaysIt(t *testing.T) {
	for _, limit := range []int64{0, 1 << 20, 16 << 20, 1536 << 20, 1 << 30, 3<<40 + 5, 100 << 20} {
		if got, want := rawsock.OOMMessage(limit), runner.OOMMessage(limit); got != want {
			t.Errorf("limit %d: raw %q, gRPC %q", limit, got, want)
		}
	}
}

// scripted is a connection whose peer's bytes are given in advance.
type scripted struct {
	in  io.Reader
	out bytes.Buffer
}

func (s *scripted) Read(p []byte) (int, error)  { return s.in.Read(p) }
func (s *scripted) Write(p []byte) (int, error) { return s.out.Write(p) }
