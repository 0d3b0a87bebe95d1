package transfer

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rexec/rexec/client"
)

// TestBarsDraw: --progress bar draws each file's name and bytes, also when
// its output is not a terminal (the user asked for it), and a failed file's
// bar stops where it was.
func TestBarsDraw(t *testing.T) {
	var b bytes.Buffer
	p := Bars(&b)
	ok := p.File("ok.bin", 3<<20)
	bad := p.File("bad.bin", 4<<20)
	for i := int64(0); i <= 3<<20; i += 1 << 20 {
		ok.Update(client.Progress{Size: 3 << 20, Done: i})
		bad.Update(client.Progress{Size: 4 << 20, Done: i / 2})
	}
	ok.Done(nil)
	bad.Done(errBoom)
	p.Wait()
	out := b.String()
	for _, want := range []string{"ok.bin", "3.0 MiB / 3.0 MiB", "bad.bin", "/ 4.0 MiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("the bars lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "4.0 MiB / 4.0 MiB") {
		t.Errorf("the failed file's bar went to the end:\n%s", out)
	}
}

var errBoom = bytes.ErrTooLarge
