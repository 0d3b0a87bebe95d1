package rawsock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
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

// Proto is l as the gRPC API carries it, nil for none.
func (l *CommandLimits) Proto() *rexecv1.Limits {
	if l == nil {
		return nil
	}
	return &rexecv1.Limits{MemoryBytes: l.MemoryBytes, Pids: l.Pids, MilliCpu: l.MilliCPU, Nofile: l.NoFile, FsizeBytes: l.FSizeBytes}
}

// LimitsOf is the command frame's limits for the API's, nil for none.
func LimitsOf(l *rexecv1.Limits) *CommandLimits {
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
		Limits:    LimitsOf(req.GetLimits()),
	}
	if t := req.GetTimeout(); t != nil {
		if err := t.CheckValid(); err != nil {
			return Command{}, fmt.Errorf("timeout: %w", err)
		}
		d := t.AsDuration()
		switch {
		case d < 0:
			return Command{}, fmt.Errorf("timeout: negative (%v)", d)
		case d > 0 && d < time.Millisecond:
			return Command{}, fmt.Errorf("timeout: %v is under the raw protocol's resolution of 1ms (0 means none)", d)
		}
		c.TimeoutMS = int64((d + time.Millisecond - 1) / time.Millisecond)
	}
	return c, nil
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

// The exit record's flag bits: ExitOutputIncomplete says a descendant held
// the output open past the drain grace; ExitUsageCgroup that the usage is
// the command's cgroup's.
const (
	ExitOutputIncomplete = 1
	ExitUsageCgroup      = 2
)

// linuxSignals are the names of the signal numbers a Linux server sends,
// whatever the client's OS numbers them (darwin's USR1 is 30, say).
var linuxSignals = [...]string{1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 5: "TRAP", 6: "ABRT", 7: "BUS",
	8: "FPE", 9: "KILL", 10: "USR1", 11: "SEGV", 12: "USR2", 13: "PIPE", 14: "ALRM", 15: "TERM",
	16: "STKFLT", 17: "CHLD", 18: "CONT", 19: "STOP", 20: "TSTP", 21: "TTIN", 22: "TTOU", 23: "URG",
	24: "XCPU", 25: "XFSZ", 26: "VTALRM", 27: "PROF", 28: "WINCH", 29: "IO", 30: "PWR", 31: "SYS"}

// signalName names signal n as the gRPC API does (TERM, KILL): "" for none.
func signalName(n int) string {
	switch {
	case n == 0:
		return ""
	case n < len(linuxSignals):
		return linuxSignals[n]
	}
	return fmt.Sprintf("SIG%d", n)
}

// decodeExit is appendExit's inverse, into the message the gRPC client
// returns, so that the CLI reports both transports' ends with one function.
func decodeExit(p []byte) (*rexecv1.Exited, error) {
	if len(p) < exitLenV1 {
		return nil, fmt.Errorf("exit frame of %d bytes, want at least %d", len(p), exitLenV1)
	}
	be := binary.BigEndian
	sig := int(p[4])
	// The reason byte has EndReason's numbers (PROTOCOL.md): 1 exited, 2
	// timeout, 3 cancelled, 4 shutdown, 5 OOM.
	reason := rexecv1.EndReason(p[5])
	e := &rexecv1.Exited{}
	e.ExitCode = int32(be.Uint32(p[0:4]))
	e.SignalNumber = int32(sig)
	e.Signal = signalName(sig)
	e.Reason = reason
	e.TimedOut = reason == rexecv1.EndReason_END_REASON_TIMEOUT
	e.OutputIncomplete = p[6]&ExitOutputIncomplete != 0
	e.Duration = durationpb.New(time.Duration(be.Uint64(p[7:15])))
	e.DroppedBytes = be.Uint64(p[15:23])
	e.StdoutBytes = be.Uint64(p[23:31])
	e.StderrBytes = be.Uint64(p[31:39])
	if len(p) >= exitLenV2 {
		e.SentSignalNumber = int32(p[39])
		e.SentSignal = signalName(int(p[39]))
	}
	if len(p) >= ExitLen {
		e.Usage = &rexecv1.Usage{
			UserCpu:         durationpb.New(time.Duration(be.Uint64(p[40:48]))),
			SystemCpu:       durationpb.New(time.Duration(be.Uint64(p[48:56]))),
			PeakMemoryBytes: be.Uint64(p[56:64]),
			PeakProcesses:   be.Uint64(p[64:72]),
			Cgroup:          p[6]&ExitUsageCgroup != 0,
		}
		if reason == rexecv1.EndReason_END_REASON_OOM {
			e.Message = OOMMessage(int64(min(be.Uint64(p[72:80]), math.MaxInt64)))
		}
	}
	return e, nil
}

// OOMMessage is Exited's message for a command the OOM killer ended at a
// memory limit of limit bytes (0: not known), as the gRPC server words it
// (runner.OOMMessage; rawserver's tests keep the two equal).
func OOMMessage(limit int64) string {
	if limit <= 0 {
		return "out of memory: the command reached its memory limit and the kernel's OOM killer ended it"
	}
	human := strconv.FormatInt(limit, 10) + " B"
	if limit >= 1024 {
		units := []string{"KiB", "MiB", "GiB", "TiB"}
		v, i := float64(limit)/1024, 0
		for v >= 1024 && i < len(units)-1 {
			v /= 1024
			i++
		}
		human = strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
	}
	size := strconv.FormatInt(limit, 10)
	for _, u := range []struct {
		shift  uint
		suffix string
	}{{40, "T"}, {30, "G"}, {20, "M"}, {10, "K"}} {
		if limit >= 1<<u.shift && limit%(1<<u.shift) == 0 {
			size = strconv.FormatInt(limit>>u.shift, 10) + u.suffix
			break
		}
	}
	return fmt.Sprintf("out of memory: the command reached its memory limit of %s (memory=%s) and the kernel's OOM killer ended it", human, size)
}

// EchoUpper is the echo frame's flag bit that asks for upper case.
const EchoUpper = 1

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
