package rawserver

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

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/rawsock"
	"github.com/rexec/rexec/runner"
)

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
	var c rawsock.Command
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
	}, c.Limits.Proto(), nil
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
		flags |= rawsock.ExitOutputIncomplete
	}
	if r.Usage.Cgroup {
		flags |= rawsock.ExitUsageCgroup
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
