package rawsock

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"google.golang.org/protobuf/types/known/durationpb"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/runner"
)

// Command is the payload of a command frame, as JSON: the one payload that is
// not fixed binary, because it is the one a client in another language builds
// by hand, and its fields are optional. It is parsed strictly (see
// decodeCommand), so that a typo is an error and not a silent default.
type Command struct {
	// Shell runs as /bin/sh -c Shell; exactly one of Shell and Argv is set.
	Shell string   `json:"shell,omitempty"`
	Argv  []string `json:"argv,omitempty"`
	Env   []string `json:"env,omitempty"`
	Dir   string   `json:"dir,omitempty"`
	// TimeoutMS kills the command after this many milliseconds; 0 means the
	// server's maximum. Negative is refused.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// MaxOutput is the output budget in bytes; 0 means the server's maximum.
	MaxOutput int64 `json:"max_output,omitempty"`
	// Stdin says stdin frames follow (ended by stdin-close); by default the
	// command's stdin is /dev/null.
	Stdin bool `json:"stdin,omitempty"`
	// Limits are the command's resource limits, each at most its key's.
	Limits *CommandLimits `json:"limits,omitempty"`
}

// CommandLimits are a command's resource limits, as RunRequest.limits: zero
// or absent means the key's.
type CommandLimits struct {
	MemoryBytes uint64 `json:"memory_bytes,omitempty"`
	Pids        uint64 `json:"pids,omitempty"`
	MilliCPU    uint64 `json:"milli_cpu,omitempty"`
	NoFile      uint64 `json:"nofile,omitempty"`
	FSizeBytes  uint64 `json:"fsize_bytes,omitempty"`
}

// proto is l as the gRPC API carries it, nil for none.
func (l *CommandLimits) proto() *rexecv1.Limits {
	if l == nil {
		return nil
	}
	return &rexecv1.Limits{MemoryBytes: l.MemoryBytes, Pids: l.Pids, MilliCpu: l.MilliCPU, Nofile: l.NoFile, FsizeBytes: l.FSizeBytes}
}

func limitsOf(l *rexecv1.Limits) *CommandLimits {
	if l == nil {
		return nil
	}
	return &CommandLimits{MemoryBytes: l.GetMemoryBytes(), Pids: l.GetPids(), MilliCPU: l.GetMilliCpu(), NoFile: l.GetNofile(), FSizeBytes: l.GetFsizeBytes()}
}

// commandFromRequest is the command frame for req. The protocol counts the
// timeout in whole milliseconds: a timeout is rounded up to the next one, so
// that it never fires early, and one under a millisecond (other than none)
// or negative is refused here, as the server would refuse it, instead of
// becoming 0, which means "the server's maximum".
func commandFromRequest(req *rexecv1.RunRequest) (Command, error) {
	c := Command{
		Shell: req.GetShell(), Argv: req.GetArgv(), Env: req.GetEnv(), Dir: req.GetDir(),
		MaxOutput: int64(min(req.GetMaxOutputBytes(), math.MaxInt64)),
		Stdin:     len(req.GetStdin()) > 0,
		Limits:    limitsOf(req.GetLimits()),
	}
	if t := req.GetTimeout(); t != nil {
		if err := t.CheckValid(); err != nil {
			return Command{}, &runner.FieldError{Field: "timeout", Problem: err.Error()}
		}
		d := t.AsDuration()
		switch {
		case d < 0:
			return Command{}, &runner.FieldError{Field: "timeout", Problem: fmt.Sprintf("negative (%v)", d)}
		case d > 0 && d < time.Millisecond:
			return Command{}, &runner.FieldError{Field: "timeout", Problem: fmt.Sprintf("%v is under the raw protocol's resolution of 1ms (0 means none)", d)}
		}
		c.TimeoutMS = int64((d + time.Millisecond - 1) / time.Millisecond)
	}
	return c, nil
}

// commandFields are the command object's field names, for error messages.
const commandFields = "shell, argv, env, dir, timeout_ms, max_output, stdin, limits (memory_bytes, pids, milli_cpu, nofile, fsize_bytes)"

// maxTimeoutMS is the largest timeout_ms a time.Duration holds.
const maxTimeoutMS = math.MaxInt64 / int64(time.Millisecond)

// decodeCommand parses a command payload into a runner spec, and the
// limits it asks for (nil for none), which the server checks against its
// key's; the runner checks the spec against its own limits.
//
// The parse is strict, where encoding/json is lenient in four ways that
// each let a client believe a command was understood when it was not:
// field names match exactly (encoding/json also takes "SHELL" for shell),
// a field given twice is refused (encoding/json keeps the last), nothing
// may follow the object (encoding/json's Decoder stops after it), and every
// string must be valid UTF-8, with no lone surrogate escape such as \ud800
// (encoding/json silently turns both into U+FFFD, so a command would act on
// another file name than the one sent). go-json-experiment/json, the
// package encoding/json/v2 comes from, does all four by default.
func decodeCommand(payload []byte) (runner.Spec, *rexecv1.Limits, error) {
	var c Command
	if b := bytes.TrimLeft(payload, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return runner.Spec{}, nil, &runner.FieldError{Field: "command", Problem: "not a JSON object: send {\"shell\": ...} or {\"argv\": [...]}"}
	}
	if err := json.Unmarshal(payload, &c, json.RejectUnknownMembers(true)); err != nil {
		return runner.Spec{}, nil, commandError(err)
	}
	switch {
	case c.TimeoutMS < 0:
		return runner.Spec{}, nil, &runner.FieldError{Field: "timeout_ms", Problem: fmt.Sprintf("negative (%d): give a number of milliseconds, or 0 for the server's maximum", c.TimeoutMS)}
	case c.TimeoutMS > maxTimeoutMS:
		return runner.Spec{}, nil, &runner.FieldError{Field: "timeout_ms", Problem: fmt.Sprintf("%d is too large (at most %d)", c.TimeoutMS, maxTimeoutMS)}
	}
	return runner.Spec{
		Shell: c.Shell, Argv: c.Argv, Env: c.Env, Dir: c.Dir,
		Timeout:   time.Duration(c.TimeoutMS) * time.Millisecond,
		MaxOutput: c.MaxOutput,
		OpenStdin: c.Stdin,
	}, c.Limits.proto(), nil
}

// commandError turns a JSON decoding error into one naming the field that is
// wrong and what is wrong with it.
func commandError(err error) *runner.FieldError {
	var (
		sem *json.SemanticError
		syn *jsontext.SyntacticError
	)
	switch {
	case errors.As(err, &sem) && errors.Is(sem.Err, json.ErrUnknownName):
		return &runner.FieldError{Field: "command", Problem: fmt.Sprintf("unknown field %q (field names are exact: %s)", sem.JSONPointer.LastToken(), commandFields)}
	case errors.As(err, &sem):
		want := "a " + sem.GoType.String()
		switch sem.GoType.String() {
		case "int64":
			want = "an integer"
		case "uint64":
			want = "an integer of at least 0"
		case "*rawsock.CommandLimits":
			want = "an object"
		case "[]string":
			want = "an array of strings"
		}
		got := ""
		if sem.JSONKind != 0 {
			got = " (got " + sem.JSONKind.String() + ")"
		}
		if sem.Err != nil {
			got += ": " + sem.Err.Error()
		}
		return &runner.FieldError{Field: fieldOf(sem.JSONPointer), Problem: "want " + want + got}
	case errors.As(err, &syn) && errors.Is(syn.Err, jsontext.ErrDuplicateName):
		return &runner.FieldError{Field: "command", Problem: fmt.Sprintf("field %q given twice", syn.JSONPointer.LastToken())}
	case errors.As(err, &syn) && notText(syn.Err):
		return &runner.FieldError{Field: fieldOf(syn.JSONPointer), Problem: "not valid UTF-8 (a raw byte, or an escape of a lone surrogate such as \\ud800); rexec passes text arguments"}
	case errors.As(err, &syn) && strings.Contains(syn.Err.Error(), "after top-level value"):
		return &runner.FieldError{Field: "command", Problem: fmt.Sprintf("bytes after the JSON object, at offset %d: send one object per command frame", syn.ByteOffset)}
	case errors.As(err, &syn):
		return &runner.FieldError{Field: "command", Problem: fmt.Sprintf("not valid JSON at offset %d: %v", syn.ByteOffset, syn.Err)}
	}
	return &runner.FieldError{Field: "command", Problem: "not a JSON command object: " + err.Error()}
}

// notText reports whether a syntax error is a string that is not UTF-8 text.
// jsontext does not export these errors: its messages are the contract
// (TestCommandParsedStrictly fails if they change).
func notText(err error) bool {
	s := err.Error()
	return strings.Contains(s, "invalid UTF-8") || strings.Contains(s, "surrogate")
}

// fieldOf names the field a JSON pointer points into: "/argv/2" is argv[2].
func fieldOf(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if b.Len() == 0 {
			b.WriteString(tok)
		} else {
			b.WriteString("[" + tok + "]")
		}
	}
	if b.Len() == 0 {
		return "command"
	}
	return b.String()
}

// ExitLen is the length of an exit frame's payload that this version writes.
// A reader takes any record of at least exitLenV1 bytes and ignores bytes past
// the fields it knows, so that fields can be appended.
const ExitLen = 80

// exitLenV1 is the first version's record, without the sent signal;
// exitLenV2 the second's, without the usage.
const (
	exitLenV1 = 39
	exitLenV2 = 40
)

// exit flag bits
const (
	flagOutputIncomplete = 1
	flagUsageCgroup      = 2 // the usage is the command's cgroup's
)

// appendExit encodes how a command ended:
//
//	int32 exit code (-1 when a signal killed it) | uint8 signal | uint8 reason |
//	uint8 flags | uint64 duration ns | uint64 dropped | uint64 stdout bytes | uint64 stderr bytes |
//	uint8 signal rexec sent to end it |
//	uint64 user CPU ns | uint64 system CPU ns | uint64 peak memory bytes | uint64 peak processes |
//	uint64 memory limit bytes
func appendExit(dst []byte, r *runner.Result) []byte {
	var flags byte
	if r.OutputIncomplete {
		flags |= flagOutputIncomplete
	}
	if r.Usage.Cgroup {
		flags |= flagUsageCgroup
	}
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(int32(r.ExitCode)))
	dst = append(dst, byte(r.Signal), byte(r.Reason), flags)
	dst = be.AppendUint64(dst, uint64(r.Duration))
	dst = be.AppendUint64(dst, uint64(r.Dropped))
	dst = be.AppendUint64(dst, uint64(r.StdoutBytes))
	dst = be.AppendUint64(dst, uint64(r.StderrBytes))
	dst = append(dst, byte(r.SentSignal))
	dst = be.AppendUint64(dst, uint64(r.Usage.UserCPU))
	dst = be.AppendUint64(dst, uint64(r.Usage.SystemCPU))
	dst = be.AppendUint64(dst, uint64(max(r.Usage.PeakMemory, 0)))
	dst = be.AppendUint64(dst, uint64(max(r.Usage.PeakProcesses, 0)))
	return be.AppendUint64(dst, uint64(max(r.Limits.Memory, 0)))
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
	if len(p) >= exitLenV2 {
		e.SentSignalNumber = int32(p[39])
		e.SentSignal = runner.SignalName(int(p[39]))
	}
	if len(p) >= ExitLen {
		e.Usage = &rexecv1.Usage{
			UserCpu:         durationpb.New(time.Duration(be.Uint64(p[40:48]))),
			SystemCpu:       durationpb.New(time.Duration(be.Uint64(p[48:56]))),
			PeakMemoryBytes: be.Uint64(p[56:64]),
			PeakProcesses:   be.Uint64(p[64:72]),
			Cgroup:          p[6]&flagUsageCgroup != 0,
		}
		if reason == runner.ReasonOOM {
			e.Message = runner.OOMMessage(int64(min(be.Uint64(p[72:80]), math.MaxInt64)))
		}
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
