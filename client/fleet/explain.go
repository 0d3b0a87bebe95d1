package fleet

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rexec/rexec/client"
)

// Messages are the lines rexec prints on stderr about one target's run,
// as a single-target run prints them: the notes of its exit, or the one
// line about why rexec failed there, which says what to do. None for a
// plain exit or an interrupted target.
func Messages(r *Result, keyID string, usesTLS bool, connectTimeout time.Duration) []string {
	switch {
	case r.Err == nil:
		return client.ExitNotes(r.Exited)
	case r.Class == Cancelled:
		return nil
	case r.Class == Timeout && errors.Is(r.Err, errConnectTimeout):
		return []string{fmt.Sprintf("rexec: rexecd at %s did not start the command within the connect timeout (%v): is the host up and the port open? (--connect-timeout)",
			r.Target.Addr, connectTimeout)}
	}
	return []string{Explain(r.Err, r.Target.Addr, keyID, usesTLS)}
}

// Explain turns rexec's own failure to run a command at addr into one line
// that says what failed and what to do.
func Explain(err error, addr, keyID string, usesTLS bool) string {
	var wrongPort *client.WrongPortError
	if errors.As(err, &wrongPort) {
		return fmt.Sprintf("rexec: %s: that port speaks rexec's raw protocol, not gRPC (use --raw with --raw-addr %[1]s, or the gRPC port)", wrongPort.Addr)
	}
	var resume *client.ResumeError
	if errors.As(err, &resume) && resume.Refused {
		return fmt.Sprintf("rexec: lost the connection to rexecd at %s, which refused every connection for %v (is it down?): execution %s ended with it unless it is back within its reconnect grace; `rexec logs %[3]s` once it is up",
			addr, resume.Tried.Round(time.Second), resume.ExecutionID)
	}
	if errors.As(err, &resume) {
		why := resume.Err.Error()
		if st, ok := status.FromError(resume.Err); ok {
			why = st.Message()
		}
		return fmt.Sprintf("rexec: lost the connection to rexecd at %s and could not resume execution %s for %v (%s): it runs on until the server's reconnect grace passes; then `rexec logs %[2]s` has its output",
			addr, resume.ExecutionID, resume.Tried.Round(time.Second), why)
	}
	if errors.Is(err, client.ErrLostMidCommand) {
		why := err.Error()
		var se interface{ GRPCStatus() *status.Status }
		if errors.As(err, &se) {
			why = se.GRPCStatus().Message()
		}
		return fmt.Sprintf("rexec: lost the connection to rexecd at %s while the command ran (%s): the command is killed on the server side; check that rexecd is still up",
			addr, why)
	}
	st, ok := status.FromError(err)
	if !ok {
		msg := err.Error()
		if strings.HasPrefix(msg, "rexec:") {
			return msg
		}
		return "rexec: " + msg
	}
	if keyID == "" {
		keyID = "?"
	}
	switch st.Code() {
	case codes.Unavailable:
		if hint := TLSHint(st.Message(), usesTLS); hint != "" {
			return fmt.Sprintf("rexec: cannot connect to rexecd at %s: %s (%s)", addr, hint, st.Message())
		}
		return fmt.Sprintf("rexec: cannot reach rexecd at %s (%s): is it running? (--addr, $REXEC_ADDR)", addr, st.Message())
	case codes.Unauthenticated:
		return fmt.Sprintf("rexec: auth failed for key %q (server said Unauthenticated): check that the key file matches the server's, and the clocks", keyID)
	case codes.PermissionDenied:
		return fmt.Sprintf("rexec: key %q may not do this (server said PermissionDenied): give the key the scope in the server's key file", keyID)
	case codes.Canceled:
		return "rexec: cancelled"
	}
	msg := strings.TrimPrefix(st.Message(), "rexec: ")
	return fmt.Sprintf("rexec: %s (server said %s)", msg, st.Code())
}

// TLSHint is what to check when a connection failed in a way that points
// at TLS: a handshake error, or a server that hung up during it (a TLS 1.3
// server's alert about a missing client certificate races with the
// client's first write, so it may show as a reset or broken pipe), or a
// plaintext dial to a TLS server (which sees garbage and hangs up: EOF).
// Empty when nothing does.
func TLSHint(msg string, usesTLS bool) string {
	hungUp := strings.Contains(msg, "EOF") || strings.Contains(msg, "broken pipe") || strings.Contains(msg, "connection reset")
	switch {
	case strings.Contains(msg, "tls:") || strings.Contains(msg, "x509:"):
		return "the TLS handshake failed: check --tls-ca (the CA that signed the server's certificate) and --tls-cert/--tls-key (a client certificate the server's CA signed)"
	case usesTLS && hungUp:
		return "the server hung up during TLS: if it requires client certificates (mTLS), give --tls-cert and --tls-key signed by its CA"
	case !usesTLS && hungUp:
		return "the server hung up: if rexecd serves TLS, give --tls-ca (and --tls-cert/--tls-key for mTLS)"
	}
	return ""
}
