package framelab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/rexec/rexec/internal/framelab"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLab runs the lab for real and checks the facts it is there to show.
func TestLab(t *testing.T) {
	rep, err := framelab.Run(context.Background(), framelab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}

	// Unframed TCP: the three lines and the start of the big message come
	// back in one read; the receiver cannot tell the messages apart.
	u := rep.Unframed
	if u.Intact || len(u.Reads) == 0 || !strings.HasPrefix(u.Reads[0].Holds, "#1 + #2 + #3 + #4") {
		t.Errorf("unframed TCP: reads %+v, want the first one to merge messages 1-4", u.Reads)
	}
	// Framed TCP: the boundaries come back.
	if f := rep.Framed; !f.Intact || len(f.Received) != len(rep.Messages) {
		t.Errorf("framed TCP: received %v, want %v intact", f.Received, rep.Messages)
	}
	// UDP: lines whole, one datagram truncated to the buffer, one refused.
	var whole, truncated, refused int
	for _, d := range rep.UDP.Datagrams {
		switch {
		case d.Error != "":
			refused++
			if !strings.Contains(d.Error, syscall.EMSGSIZE.Error()) || d.Sent <= rep.UDP.MaxPayload {
				t.Errorf("refused datagram: %+v", d)
			}
		case d.Truncated:
			truncated++
			if d.Received != rep.UDP.Buffer {
				t.Errorf("truncated datagram: %+v, want %d bytes read", d, rep.UDP.Buffer)
			}
		case d.Received == d.Sent:
			whole++
		}
	}
	if whole != 3 || truncated != 1 || refused != 1 {
		t.Errorf("UDP: %d whole, %d truncated, %d refused; want 3, 1, 1: %+v", whole, truncated, refused, rep.UDP.Datagrams)
	}
	// gRPC: real HTTP/2 frames, and the 5-byte prefix in each call's DATA.
	g := rep.GRPC
	seen := map[string]bool{}
	for _, f := range g.Frames {
		seen[f.Type] = true
	}
	for _, typ := range []string{"SETTINGS", "HEADERS", "DATA"} {
		if !seen[typ] {
			t.Errorf("gRPC capture has no %s frame: %v", typ, seen)
		}
	}
	if !g.Intact || len(g.Prefixes) != len(rep.Messages) || g.Prefixes[0] != "0000000008" {
		t.Errorf("gRPC prefixes %v (message sizes %v): want 00 00000008 for the 6-byte line", g.Prefixes, g.MessageBytes)
	}
	for i, n := range g.Wire {
		if n <= g.MessageBytes[i]+5 {
			t.Errorf("call %d: %d wire bytes for a %d-byte message", i+1, n, g.MessageBytes[i])
		}
	}
}
