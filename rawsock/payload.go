package rawsock

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/runner"
)

// Command is the payload of a command frame, as JSON: the one payload that is
// not fixed binary, because it is the one a client in another language builds
// by hand, and its fields are optional. Unknown fields are refused, so that a
// typo is an error and not a silent default.
type Command struct {
	// Shell runs as /bin/sh -c Shell; exactly one of Shell and Argv is set.
	Shell string   `json:"shell,omitempty"`
	Argv  []string `json:"argv,omitempty"`
	Env   []string `json:"env,omitempty"`
	Dir   string   `json:"dir,omitempty"`
	// TimeoutMS kills the command after this many milliseconds; 0 means the
	// server's maximum.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// MaxOutput is the output budget in bytes; 0 means the server's maximum.
	MaxOutput int64 `json:"max_output,omitempty"`
	// Stdin says stdin frames follow (ended by stdin-close); by default the
	// command's stdin is /dev/null.
	Stdin bool `json:"stdin,omitempty"`
}

func commandFromRequest(req *rexecv1.RunRequest) Command {
	c := Command{
		Shell: req.GetShell(), Argv: req.GetArgv(), Env: req.GetEnv(), Dir: req.GetDir(),
		MaxOutput: int64(min(req.GetMaxOutputBytes(), math.MaxInt64)),
		Stdin:     len(req.GetStdin()) > 0,
	}
	if t := req.GetTimeout(); t != nil {
		c.TimeoutMS = t.AsDuration().Milliseconds()
	}
	return c
}

// decodeCommand parses a command payload into a runner spec; the runner
// checks the spec against its limits.
func decodeCommand(payload []byte) (runner.Spec, bool, error) {
	var c Command
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return runner.Spec{}, false, &runner.FieldError{Field: "command", Problem: "not a JSON command object: " + err.Error()}
	}
	if c.TimeoutMS > math.MaxInt64/int64(time.Millisecond) {
		return runner.Spec{}, false, &runner.FieldError{Field: "timeout", Problem: "too large"}
	}
	return runner.Spec{
		Shell: c.Shell, Argv: c.Argv, Env: c.Env, Dir: c.Dir,
		Timeout:   time.Duration(c.TimeoutMS) * time.Millisecond,
		MaxOutput: c.MaxOutput,
		OpenStdin: c.Stdin,
	}, c.Stdin, nil
}

// ExitLen is the length of an exit frame's payload that this version writes.
// A reader takes any record of at least exitLenV1 bytes and ignores bytes past
// the fields it knows, so that fields can be appended.
const ExitLen = 40

// exitLenV1 is the first version's record, without the sent signal.
const exitLenV1 = 39

// exit flag bits
const flagOutputIncomplete = 1

// appendExit encodes how a command ended:
//
//	int32 exit code (-1 when a signal killed it) | uint8 signal | uint8 reason |
//	uint8 flags | uint64 duration ns | uint64 dropped | uint64 stdout bytes | uint64 stderr bytes |
//	uint8 signal rexec sent to end it
func appendExit(dst []byte, r *runner.Result) []byte {
	var flags byte
	if r.OutputIncomplete {
		flags |= flagOutputIncomplete
	}
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(int32(r.ExitCode)))
	dst = append(dst, byte(r.Signal), byte(r.Reason), flags)
	dst = be.AppendUint64(dst, uint64(r.Duration))
	dst = be.AppendUint64(dst, uint64(r.Dropped))
	dst = be.AppendUint64(dst, uint64(r.StdoutBytes))
	dst = be.AppendUint64(dst, uint64(r.StderrBytes))
	return append(dst, byte(r.SentSignal))
}

// decodeExit is appendExit's inverse, into the message the gRPC client
// returns, so that the CLI reports both transports' ends with one function.
func decodeExit(p []byte) (*rexecv1.Exited, error) {
	if len(p) < exitLenV1 {
		return nil, fmt.Errorf("exit frame of %d bytes, want at least %d", len(p), exitLenV1)
	}
	be := binary.BigEndian
	sig := int(p[4])
	reason := runner.Reason(p[5])
	e := &rexecv1.Exited{}
	e.ExitCode = int32(be.Uint32(p[0:4]))
	e.SignalNumber = int32(sig)
	e.Signal = runner.SignalName(sig)
	e.Reason = rexecv1.EndReason(reason)
	e.TimedOut = reason == runner.ReasonTimeout
	e.OutputIncomplete = p[6]&flagOutputIncomplete != 0
	e.Duration = durationpb.New(time.Duration(be.Uint64(p[7:15])))
	e.DroppedBytes = be.Uint64(p[15:23])
	e.StdoutBytes = be.Uint64(p[23:31])
	e.StderrBytes = be.Uint64(p[31:39])
	if len(p) > 39 {
		e.SentSignalNumber = int32(p[39])
		e.SentSignal = runner.SignalName(int(p[39]))
	}
	return e, nil
}

// echo flag bits
const echoUpper = 1

var errShortPayload = errors.New("payload too short")

// splitSeq splits an output payload into its sequence number and data.
func splitSeq(p []byte) (uint64, []byte, error) {
	if len(p) < 8 {
		return 0, nil, errShortPayload
	}
	return binary.BigEndian.Uint64(p), p[8:], nil
}

// DecodeExit decodes an exit frame's payload (the exit record) into the
// message the gRPC client returns, for clients that read frames by hand.
func DecodeExit(p []byte) (*rexecv1.Exited, error) { return decodeExit(p) }
