package bench

import (
	"context"
	"testing"

	"github.com/rexec/rexec/client"
)

// BenchmarkEcho measures one unary Echo over loopback, with and without
// HMAC auth, and with auth and metrics, on in-process servers.
func BenchmarkEcho(b *testing.B) {
	for _, bc := range []struct {
		name            string
		noAuth, metrics bool
	}{{"no-auth", true, false}, {"hmac-auth", false, false}, {"hmac-auth-metrics", false, true}} {
		noAuth := bc.noAuth
		b.Run(bc.name, func(b *testing.B) {
			addr, key, stop, err := echoServer(noAuth, bc.metrics)
			if err != nil {
				b.Fatal(err)
			}
			defer stop()
			var opts []client.Option
			if !noAuth {
				opts = append(opts, client.WithKey(key))
			}
			c, err := client.New(addr, opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Echo(context.Background(), "hello", false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
