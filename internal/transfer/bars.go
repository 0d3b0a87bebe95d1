package transfer

import (
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/rexec/rexec/client"
)

// Bars draws a progress bar per file in flight on w (a terminal): name,
// bytes done of the size, rate and time left. A resumed file's bar starts
// where the partial transfer was, in another fill, and its rate counts only
// what moves now.
func Bars(w io.Writer) Progress {
	return &bars{p: mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithWidth(32), mpb.WithRefreshRate(150*time.Millisecond))}
}

type bars struct{ p *mpb.Progress }

func (b *bars) File(name string, size int64) FileProgress {
	total := max(size, 1) // a bar of 0 would be complete before it began
	bar := b.p.AddBar(total,
		mpb.PrependDecorators(
			decor.Name(name, decor.WCSyncSpaceR),
			decor.Counters(decor.SizeB1024(0), "% .1f / % .1f", decor.WCSyncSpace),
		),
		mpb.AppendDecorators(
			decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 30, decor.WCSyncSpace),
			decor.OnComplete(decor.EwmaETA(decor.ET_STYLE_GO, 30, decor.WCSyncSpace), "done"),
		),
	)
	return &barFile{bar: bar, size: size, last: time.Now()}
}

func (b *bars) Wait() { b.p.Wait() }

type barFile struct {
	bar  *mpb.Bar
	size int64
	mu   sync.Mutex
	seen bool
	last time.Time
}

func (f *barFile) Update(p client.Progress) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if !f.seen {
		f.seen = true
		if p.Resumed > 0 {
			f.bar.SetCurrent(p.Resumed)
			f.bar.SetRefill(p.Resumed)
		}
	}
	f.bar.EwmaSetCurrent(min(p.Done, max(f.size, 1)), now.Sub(f.last))
	f.last = now
}

func (f *barFile) Done(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.bar.Abort(false)
		return
	}
	f.bar.SetTotal(max(f.size, 1), true)
	f.bar.SetCurrent(max(f.size, 1))
}
