package journal

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rexec/rexec/runner"
)

// recover reads the executions a previous server left. An ended one is
// taken as its meta file says. One that was running when its server died
// without ending it (SIGKILL, a crash: rexecd's guard then killed its
// process group) is read to its last whole record, its torn tail cut off,
// and recorded as ended with reason shutdown and the KILL the guard sent.
func (j *Journal) recover() error {
	entries, err := os.ReadDir(j.opts.Dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(j.opts.Dir, e.Name())
		if e.Name() == spareDir {
			continue // openSpares
		}
		x, err := j.recoverOne(dir)
		if err != nil {
			j.log.Warn("journal: removing an execution directory without a readable meta file", "dir", dir, "err", err)
			_ = os.RemoveAll(dir)
			j.stats.Discarded++
			continue
		}
		j.execs[x.id] = x
		j.ended = append(j.ended, x)
		j.total.Add(x.log.size)
	}
	slices.SortFunc(j.ended, func(a, b *Execution) int { return a.ended.Compare(b.ended) })
	if j.stats.Recovered > 0 {
		j.log.Info("journal: executions that were running when the server stopped without ending them are recorded as ended (reason shutdown)",
			"count", j.stats.Recovered)
	}
	return nil
}

func (j *Journal) recoverOne(dir string) (*Execution, error) {
	m, torn, err := readMeta(dir)
	if err != nil {
		return nil, err
	}
	if torn && m.Exit != nil && !m.Ended.IsZero() {
		// An ended execution whose last append was torn: written whole
		// again, so that the next append (an eviction) follows a whole line.
		if err := writeMeta(dir, m); err != nil {
			j.log.Warn("journal: cannot rewrite a torn meta file", "exec_id", m.ID, "err", err)
		}
	}
	x := &Execution{
		j: j, id: m.ID, dir: dir, owner: m.Owner, command: m.Command, workdir: m.Dir,
		lifetime: m.Lifetime, tty: m.TTY, started: m.Started, pid: m.Pid, startedEv: m.Pid != 0,
		done: make(chan struct{}), changed: make(chan struct{}), released: true,
		exit: m.Exit, ended: m.Ended, recovered: m.Recovered,
	}
	close(x.done)
	x.exitSet.Store(true)
	x.log = outputLog{dir: dir, segSize: j.opts.segSize(), liveWindow: j.opts.LiveWindow,
		evictedBytes: m.EvictedBytes, evictedRecords: m.EvictedRecords}
	_ = os.Remove(filepath.Join(dir, spareName))
	names, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	for _, name := range names {
		first, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(name), ".seg"), 10, 64)
		if err != nil || first == 0 {
			continue
		}
		fi, err := os.Stat(name)
		if err != nil {
			continue
		}
		x.log.segs = append(x.log.segs, &segment{firstSeq: first, size: fi.Size()})
		x.log.size += fi.Size()
	}
	if m.Exit != nil && !m.Ended.IsZero() {
		x.log.lastSeq, x.log.off = m.LastSeq, m.Off
		for i, s := range x.log.segs {
			s.lastSeq = x.log.lastSeq
			if i+1 < len(x.log.segs) {
				s.lastSeq = x.log.segs[i+1].firstSeq - 1
			}
		}
		return x, nil
	}
	// It was running: read what it wrote, and end it.
	x.recovered = true
	j.stats.Recovered++
	ended := m.Started
	x.log.size = 0
	for _, s := range x.log.segs {
		mtime := scanSegment(filepath.Join(dir, segName(s.firstSeq)), s, &x.log)
		if mtime.After(ended) {
			ended = mtime
		}
		x.log.size += s.size
	}
	x.log.segs = slices.DeleteFunc(x.log.segs, func(s *segment) bool { return s.records == 0 })
	if fi, err := os.Stat(filepath.Join(dir, metaFile)); err == nil && fi.ModTime().After(ended) {
		ended = fi.ModTime()
	}
	x.ended = ended
	x.exit = &runner.Result{
		ExecID: m.ID, Pid: m.Pid, ExitCode: -1, Reason: runner.ReasonShutdown,
		SentSignal: 9, SentSignalName: "KILL", Duration: ended.Sub(m.Started).Round(time.Millisecond),
	}
	if err := writeMeta(dir, x.metaLocked()); err != nil {
		j.log.Warn("journal: cannot record a recovered execution's end", "exec_id", m.ID, "err", err)
	}
	return x, nil
}

// scanSegment reads a segment's records into s and l, cuts off a torn or
// damaged tail (a crash mid-write), and returns the file's modification time.
func scanSegment(path string, s *segment, l *outputLog) time.Time {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return time.Time{}
	}
	defer f.Close()
	fi, _ := f.Stat()
	rr := recordReader{r: bufio.NewReaderSize(f, 64<<10)}
	var good int64
	first := true
	for {
		hd, _, err := rr.next()
		// A record out of sequence is what a recycled file held before:
		// the segment ends before it.
		if err == nil && ((first && hd.seq != s.firstSeq) || (!first && hd.seq != s.lastSeq+1)) {
			err = errCorrupt
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				_ = f.Truncate(good)
			}
			break
		}
		if first {
			s.firstOff, first = hd.off, false
		}
		s.lastSeq = hd.seq
		s.records++
		s.payload += int64(hd.n)
		good += int64(headerSize + hd.n)
		if hd.seq > l.lastSeq {
			l.lastSeq, l.off = hd.seq, hd.off+int64(hd.n)
		}
	}
	s.size = good
	if fi == nil {
		return time.Time{}
	}
	return fi.ModTime()
}
