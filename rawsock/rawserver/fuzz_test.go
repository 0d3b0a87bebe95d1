package rawserver

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"google.golang.org/protobuf/proto"

	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/rawsock"
	"github.com/rexec/rexec/runner"
)

// FuzzHandshake: whatever a client answers, the server's side neither panics
// nor accepts anything but the one right proof.
func FuzzHandshake(f *testing.F) {
	good := docVector(f, "client answer")
	f.Add(good)
	f.Add(good[:10])
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{255})
	f.Add(append([]byte{3, 'o', 'p', 'x'}, good[4:]...))
	secret, challenge := vectorSecret()
	ring := interceptors.NewKeyRing([]*interceptors.Key{{ID: "ops", Secret: secret}})
	f.Fuzz(func(t *testing.T, answer []byte) {
		rw := &scripted{in: bytes.NewReader(answer)}
		key, err := serverHandshake(rw, ring, challenge)
		accepted := err == nil
		if accepted != bytes.HasPrefix(answer, good) || (accepted && key.ID != "ops") {
			t.Fatalf("answer % x: accepted=%v", answer, accepted)
		}
		out := rw.out.Bytes()
		if len(out) > 1+rawsock.ChallengeLen+1 {
			t.Fatalf("server wrote %d bytes", len(out))
		}
		if len(out) == 1+rawsock.ChallengeLen+1 && (out[len(out)-1] == rawsock.StatusOK) != accepted {
			t.Fatalf("status byte %d, accepted=%v", out[len(out)-1], accepted)
		}
	})
}

// FuzzCommand: no command payload panics the decoder; one it accepts has
// text in every string and a timeout in range, and encoding it again gives
// the same spec (decode(encode(decode(x))) == decode(x)); one it refuses is
// refused with a one-line *runner.FieldError.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{
		`{"shell":"echo hi"}`, `{"argv":["tr","a-z","A-Z"],"timeout_ms":5000,"stdin":true}`,
		`{"SHELL":"x"}`, `{"shell":"a","shell":"b"}`, `{"shell":"x"} junk`, `{"shell":"\ud800"}`,
		"{\"argv\":[\"\xff\"]}", `{"timeout_ms":-1}`, `{"env":["A=1"],"dir":"/","max_output":7}`, `null`, ``,
		`{"shell":"x","limits":{"memory_bytes":67108864,"pids":10,"milli_cpu":500,"nofile":64,"fsize_bytes":1024}}`,
		`{"shell":"x","limits":{"MEMORY_BYTES":1}}`, `{"shell":"x","limits":{"pids":-1}}`, `{"shell":"x","limits":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		spec, limits, err := decodeCommand(payload)
		if err != nil {
			var fe *runner.FieldError
			if !errors.As(err, &fe) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("refusal %q is not a one-line FieldError", err)
			}
			return
		}
		words := append(append([]string{spec.Shell, spec.Dir}, spec.Argv...), spec.Env...)
		for _, w := range words {
			if !utf8.ValidString(w) {
				t.Fatalf("accepted a string that is not UTF-8: %q", w)
			}
		}
		if spec.Timeout < 0 {
			t.Fatalf("accepted a negative timeout %v", spec.Timeout)
		}
		again, err := json.Marshal(rawsock.Command{Shell: spec.Shell, Argv: spec.Argv, Env: spec.Env, Dir: spec.Dir,
			TimeoutMS: spec.Timeout.Milliseconds(), MaxOutput: spec.MaxOutput, Stdin: spec.OpenStdin, Limits: rawsock.LimitsOf(limits)})
		if err != nil {
			t.Fatalf("encode an accepted command: %v", err)
		}
		spec2, limits2, err := decodeCommand(again)
		if err != nil {
			t.Fatalf("decode(encode(%q)) = %v", payload, err)
		}
		if !sameSpec(spec, spec2) || !proto.Equal(limits, limits2) {
			t.Fatalf("decode(encode(x)) != x:\n%+v\n%+v", spec, spec2)
		}
	})
}

// sameSpec compares the fields a command payload sets; an empty list and
// none are the same.
func sameSpec(a, b runner.Spec) bool {
	return a.Shell == b.Shell && slices.Equal(a.Argv, b.Argv) && slices.Equal(a.Env, b.Env) && a.Dir == b.Dir &&
		a.Timeout == b.Timeout && a.MaxOutput == b.MaxOutput && a.OpenStdin == b.OpenStdin
}
