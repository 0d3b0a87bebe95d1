package rawserver_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/rawsock"
	"github.com/rexec/rexec/rawsock/rawserver"
)

// TestReloadActsOnOpenConnections: a reload of the key ring (what rexecd's
// SIGHUP does; internal/integration's TestRawKeyReloadSIGHUP does it to the
// real binary) reaches connections authenticated before it. A removed key,
// or one given another secret, is Unauthenticated on its next frame and the
// connection closed; a key whose scopes shrank gets PermissionDenied for
// what it lost and keeps the rest. Before, the connection went on with the
// key it proved at its handshake.
func TestReloadActsOnOpenConnections(t *testing.T) {
	removed, _ := interceptors.GenerateKey("removed")
	rekeyed, _ := interceptors.GenerateKey("rekeyed")
	narrowed, _ := interceptors.GenerateKey("narrowed")
	bound, _ := interceptors.GenerateKey("bound")
	s := start(t, rawserver.Config{}, removed, rekeyed, narrowed, bound)
	ctx := context.Background()
	dial := func(k *interceptors.Key) *rawsock.Client {
		c, err := rawsock.Dial(ctx, s.addr, k)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Run(ctx, &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard); err != nil {
			t.Fatalf("key %s before the reload: %v", k.ID, err)
		}
		return c
	}
	cRemoved, cRekeyed, cNarrowed, cBound, cKept := dial(removed), dial(rekeyed), dial(narrowed), dial(bound), dial(s.key)

	newSecret, _ := interceptors.GenerateKey("rekeyed")
	s.ring.Replace([]*interceptors.Key{
		s.key,
		newSecret,
		{ID: "narrowed", Secret: narrowed.Secret, Scopes: []string{interceptors.ScopeEcho}},
		// cert= binds the key to a client certificate, which a raw
		// connection cannot carry: it no longer authenticates this one.
		{ID: "bound", Secret: bound.Secret, Scopes: []string{interceptors.ScopeExec}, Cert: "alice"},
	})

	run := func(c *rawsock.Client) error {
		_, err := c.Run(ctx, &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard)
		return err
	}
	code := func(err error) rawsock.Code {
		var re *rawsock.Error
		if errors.As(err, &re) {
			return re.Code
		}
		return 0
	}
	for name, c := range map[string]*rawsock.Client{"removed": cRemoved, "rekeyed": cRekeyed, "bound to a certificate": cBound} {
		if err := run(c); code(err) != rawsock.CodeUnauthenticated {
			t.Errorf("%s key, command after the reload: %v, want Unauthenticated", name, err)
		}
		if _, err := c.Echo(ctx, "x", false); err == nil {
			t.Errorf("%s key: the connection stayed open after Unauthenticated", name)
		}
	}
	if err := run(cNarrowed); code(err) != rawsock.CodePermissionDenied {
		t.Errorf("narrowed key, command after the reload: %v, want PermissionDenied", err)
	}
	if msg, err := cNarrowed.Echo(ctx, "still", false); err != nil || msg != "still" {
		t.Errorf("narrowed key, echo (its remaining scope): %q %v", msg, err)
	}
	var out bytes.Buffer
	if _, err := cKept.Run(ctx, &rexecv1.RunRequest{Argv: []string{"echo", "kept"}}, &out, io.Discard); err != nil || out.String() != "kept\n" {
		t.Errorf("kept key after the reload: %q %v", out.String(), err)
	}
	if _, err := rawsock.Dial(ctx, s.addr, removed); !errors.Is(err, rawsock.ErrRefused) {
		t.Errorf("a new handshake with the removed key: %v, want refused", err)
	}
}
