package runner

// An execution's events flow one way: its lifetime loop (which owns the
// process: exit, timers, signals, the drain) appends them to a bounded
// per-execution queue, and the delivery — Wait, in the caller's goroutine —
// takes them from the queue and hands them to the sink. The loop never
// calls the sink, so a sink that blocks (a client that does not read) holds
// up only the delivery; the loop takes output from the pipes only while the
// queue has room, so that flow control still reaches the command's pipe.
//
// The queue is a channel without buffer plus the one event the loop holds
// while the delivery is busy: at most one chunk waits between the pipes and
// the sink. A journal of the execution (reconnect, attach, resume by seq)
// would take the channel's place: the loop appends to it, and readers
// deliver from it, each from its own seq.

// BufferSink is a Sink that keeps output chunks instead of copying them (a
// journal keeps the newest in memory for its readers): OutputBuffer's data
// is (*buf)[:n], and buf is the sink's until it hands it back with release,
// from any goroutine, once nothing reads it; a buffer never handed back is
// left to the garbage collector. Wait calls OutputBuffer instead of Output.
type BufferSink interface {
	Sink
	OutputBuffer(s Stream, seq uint64, buf *[]byte, n int, release func(*[]byte)) error
}

// releaseBuf takes back an output buffer a BufferSink is done with.
func (r *Runner) releaseBuf(b *[]byte) { r.bufs.Put(b) }

// eventKind says which Sink method an event is for.
type eventKind uint8

const (
	evStarted eventKind = iota + 1
	evOutput
	evExited
)

// event is one Sink call to make.
type event struct {
	kind   eventKind
	stream Stream
	seq    uint64
	buf    *[]byte // output: the data is (*buf)[:n]; the buffer goes back to the pool once delivered
	n      int
	res    *Result // exited
}

// deliver hands events to sink in order until the loop closes the queue.
// After the sink's first error it stops calling the sink, cancels the
// command, and drains the queue, so that the loop is never held up by a
// sink that is gone. It returns the sink's first error.
func (p *Process) deliver(events <-chan event, sink Sink) error {
	var err error
	for ev := range events {
		if err == nil {
			switch ev.kind {
			case evStarted:
				err = sink.Started(p.id, p.Pid())
			case evOutput:
				if bs, ok := sink.(BufferSink); ok {
					err = bs.OutputBuffer(ev.stream, ev.seq, ev.buf, ev.n, p.r.releaseBuf)
					ev.buf = nil // the sink's now
				} else {
					err = sink.Output(ev.stream, ev.seq, (*ev.buf)[:ev.n])
				}
			case evExited:
				err = sink.Exited(ev.res)
			}
			if err != nil {
				p.sinkFailed(err)
			}
		}
		if ev.buf != nil {
			p.r.bufs.Put(ev.buf)
		}
		p.delivered.Add(1)
	}
	return err
}
