package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
)

// ResumeOptions say how a resumable call comes back after its stream broke.
// Zero fields take the defaults below.
type ResumeOptions struct {
	// OnStarted is called with the Started event, once the command runs.
	OnStarted func(*rexecv1.Started)
	// OnResume is called after each resume (the CLI prints one line).
	OnResume func(Resumed)
	// OnGap is called when the journal no longer held output the client
	// asked for (an attach from an old seq, or a detached command's output
	// evicted before it was read). A resumed stream of a RESUMABLE command
	// never has one: the server keeps what the client has not acknowledged.
	OnGap func(*rexecv1.Gap)
	// MinBackoff and MaxBackoff bound the wait between attempts, which
	// grows by 1.6 with 20% jitter; the first attempt is at once. By default
	// 100ms and 2s.
	MinBackoff, MaxBackoff time.Duration
	// GiveUp is how long to keep trying after a break. By default the
	// server's reconnect grace (from Started) plus 30s, since the server
	// notices a dead connection only by its keepalive and then starts the
	// grace.
	GiveUp time.Duration
	// AttemptTimeout bounds one attempt's dial and attach. By default 5s.
	AttemptTimeout time.Duration
	// RefusedGiveUp is how long to keep trying while every attempt finds
	// nothing listening (connection refused): a server that was killed and
	// is restarted (systemd, a container) is back within it, and the
	// command's end is in its journal; a server that stays down is taken
	// for gone. By default 10s.
	RefusedGiveUp time.Duration
}

func (o *ResumeOptions) setDefaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MinBackoff, 100*time.Millisecond)
	def(&o.MaxBackoff, 2*time.Second)
	def(&o.AttemptTimeout, 5*time.Second)
	def(&o.RefusedGiveUp, 10*time.Second)
}

// Resumed describes one resume.
type Resumed struct {
	ExecutionID string
	// FromSeq is the first output seq of the new stream.
	FromSeq uint64
	// Attempts made; Took is the time from the break to the new stream.
	Attempts int
	Took     time.Duration
	// Cause is how the old stream broke.
	Cause error
}

// ResumeError is a resumable call that lost its stream and could not
// attach again in time: the command may still run, until the server's
// reconnect grace passes. It wraps ErrLostMidCommand and the last error.
type ResumeError struct {
	ExecutionID string
	Tried       time.Duration
	Err         error
	// Refused: nothing listened at the server's address the whole time
	// (the server is down, rather than the path to it).
	Refused bool
}

func (e *ResumeError) Error() string {
	return fmt.Sprintf("rexec: lost the connection to rexecd and could not resume execution %s for %v: %v",
		e.ExecutionID, e.Tried.Round(time.Second), e.Err)
}

func (e *ResumeError) Unwrap() []error { return []error{ErrLostMidCommand, e.Err} }

// canResume says whether err broke a stream that a resume may take up.
func (s *Session) canResume(err error) bool {
	if s.resume == nil || s.ctx.Err() != nil {
		return false
	}
	s.mu.Lock()
	ok := s.durable && s.execID != "" && !s.cancelled
	s.mu.Unlock()
	if !ok {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Canceled, codes.Internal, codes.Unknown, codes.DeadlineExceeded:
		return true
	}
	return false
}

// permanent says that a resume attempt's error will not go away by trying
// again.
func permanent(err error) bool {
	switch status.Code(err) {
	case codes.NotFound, codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument, codes.FailedPrecondition, codes.Aborted, codes.Unimplemented:
		return true
	}
	return false
}

// resumeStream attaches again, from the output after the last written,
// with backoff, and installs the new stream for Wait and the sender.
func (s *Session) resumeStream(cause error) error {
	s.mu.Lock()
	id, grace := s.execID, s.grace
	s.mu.Unlock()
	giveUp := s.resume.GiveUp
	if giveUp <= 0 {
		giveUp = grace + 30*time.Second
	}
	began := time.Now()
	backoff := s.resume.MinBackoff
	lastErr := cause
	var refusedSince time.Time // since when every attempt was refused
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			wait := time.Duration(float64(backoff) * (0.8 + 0.4*rand.Float64()))
			refused := !refusedSince.IsZero() && time.Since(refusedSince)+wait > s.resume.RefusedGiveUp
			if time.Since(began)+wait > giveUp || refused {
				return &ResumeError{ExecutionID: id, Tried: time.Since(began), Err: lastErr, Refused: refused}
			}
			select {
			case <-time.After(wait):
			case <-s.ctx.Done():
				return context.Cause(s.ctx)
			}
			backoff = min(time.Duration(float64(backoff)*1.6), s.resume.MaxBackoff)
		}
		s.c.conn.ResetConnectBackoff()
		from := s.LastSeq() + 1
		attached, err := s.attachStream(id, from)
		if err == nil {
			if s.resume.OnResume != nil {
				s.resume.OnResume(Resumed{ExecutionID: id, FromSeq: from, Attempts: attempt, Took: time.Since(began), Cause: cause})
			}
			_ = attached
			return nil
		}
		if permanent(err) || s.ctx.Err() != nil {
			return fmt.Errorf("rexec: resuming execution %s: %w", id, err)
		}
		lastErr = err
		switch {
		case !connRefused(err):
			refusedSince = time.Time{}
		case refusedSince.IsZero():
			refusedSince = time.Now()
		}
	}
}

// connRefused says whether a call failed because nothing listens at the
// address. gRPC keeps the dial error only as text in its status.
func connRefused(err error) bool {
	return status.Code(err) == codes.Unavailable && strings.Contains(status.Convert(err).Message(), "connection refused")
}

// attachStream opens an Attach stream for execution id from seq from and,
// once the server has answered Attached, makes it the session's stream.
func (s *Session) attachStream(id string, from uint64) (*rexecv1.Attached, error) {
	ctx, cancel := context.WithCancel(s.ctx)
	setup := time.AfterFunc(s.resume.AttemptTimeout, cancel)
	stream, err := s.c.execs.Attach(ctx)
	if err == nil {
		err = stream.Send(&rexecv1.AttachRequest{Msg: &rexecv1.AttachRequest_Start{Start: &rexecv1.AttachStart{ExecutionId: id, FromSeq: from}}})
	}
	var first *rexecv1.AttachResponse
	if err == nil {
		first, err = stream.Recv()
	}
	if !setup.Stop() && err == nil {
		err = status.Error(codes.DeadlineExceeded, "rexec: attach timed out")
	}
	if err == nil && first.GetAttached() == nil {
		err = errors.New("rexec: the server's first attach message is not attached (a newer server?)")
	}
	if err != nil {
		cancel()
		return nil, err
	}
	a := first.GetAttached()
	s.mu.Lock()
	if s.endStream != nil {
		s.endStream() // the broken stream's
	}
	s.st, s.endStream = attachCall{stream, new(rexecv1.AttachResponse)}, cancel
	s.gen++
	s.attached = a
	s.execID, s.seen = id, true
	ex := a.GetExecution()
	s.durable = ex.GetLifetime() == rexecv1.Lifetime_LIFETIME_RESUMABLE || ex.GetLifetime() == rexecv1.Lifetime_LIFETIME_DETACHED
	if g := a.GetReconnectGrace(); g != nil {
		s.grace = g.AsDuration()
	}
	if w := a.GetAckWindow(); w > 0 {
		s.ackWindow = w
	}
	if st := a.GetStdin(); st != nil {
		s.in.takenTo(st.GetTaken())
		s.in.next = s.in.taken // send again what the server had not taken
		s.in.closeSent = false
		s.in.closed = st.GetClosed()
		if w := st.GetWindow(); w > 0 {
			s.in.window = w
		}
	} else {
		// The command has no stdin (a Run's, or detached): send none.
		s.in.buf, s.in.next, s.in.closed = nil, s.in.taken, true
	}
	s.mu.Unlock()
	s.poke()
	return a, nil
}

// Attached is the server's first answer to the last Attach (nil for a
// session that has not attached).
func (s *Session) Attached() *rexecv1.Attached {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attached
}
