package transfer

import (
	"encoding/json"
	"io"
	"sync"

	"github.com/rexec/rexec/client"
)

// Progress is told of every file a Copy moves. File is called as a file
// begins; its FileProgress then gets the file's updates and its end.
// Wait is called once at the end of the Copy.
type Progress interface {
	File(name string, size int64) FileProgress
	Wait()
}

// FileProgress follows one file. Update may be called from any goroutine.
type FileProgress interface {
	Update(client.Progress)
	Done(err error)
}

// None reports nothing.
func None() Progress { return none{} }

type none struct{}

func (none) File(string, int64) FileProgress { return none{} }
func (none) Wait()                           {}
func (none) Update(client.Progress)          {}
func (none) Done(error)                      {}

// JSONEvent is one line of --progress json.
type JSONEvent struct {
	// Event is "start", "progress", "done" or "error".
	Event string `json:"event"`
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	// Done is what the destination holds: for an upload, what the server
	// acknowledged; for a download, what was written here.
	Done int64 `json:"done"`
	// Sent is what was sent (uploads: Sent-Done is in flight).
	Sent int64 `json:"sent"`
	// Resumed is where a resumed transfer began.
	Resumed int64  `json:"resumed,omitempty"`
	Error   string `json:"error,omitempty"`
}

// JSON writes one JSONEvent a line to w: a start, a progress line per
// acknowledged (or written) chunk, and a done or an error, per file.
func JSON(w io.Writer) Progress { return &jsonProgress{w: w} }

type jsonProgress struct {
	mu  sync.Mutex
	w   io.Writer
	enc *json.Encoder
}

func (j *jsonProgress) emit(ev JSONEvent) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.enc == nil {
		j.enc = json.NewEncoder(j.w)
	}
	_ = j.enc.Encode(ev) // one Write per line
}

func (j *jsonProgress) File(name string, size int64) FileProgress {
	j.emit(JSONEvent{Event: "start", Path: name, Size: size})
	return &jsonFile{j: j, path: name, size: size}
}

func (j *jsonProgress) Wait() {}

type jsonFile struct {
	j    *jsonProgress
	path string
	size int64
	mu   sync.Mutex
	last client.Progress
}

func (f *jsonFile) Update(p client.Progress) {
	f.mu.Lock()
	f.last = p
	f.mu.Unlock()
	f.j.emit(JSONEvent{Event: "progress", Path: f.path, Size: f.size, Done: p.Done, Sent: p.Sent, Resumed: p.Resumed})
}

func (f *jsonFile) Done(err error) {
	f.mu.Lock()
	p := f.last
	f.mu.Unlock()
	ev := JSONEvent{Event: "done", Path: f.path, Size: f.size, Done: p.Done, Sent: p.Sent, Resumed: p.Resumed}
	if err != nil {
		ev.Event, ev.Error = "error", Why(err)
	} else {
		ev.Done, ev.Sent = f.size, f.size
	}
	f.j.emit(ev)
}
