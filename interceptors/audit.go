package interceptors

import (
	"context"
	"log/slog"

	"google.golang.org/grpc/peer"
)

// AuditAttrs are a gRPC call's facts for the audit log: transport, peer,
// key, and with mTLS the client certificate's identity and serial (the name
// its key's cert= option matched, else its common name; see CertIdentity).
// Every service that writes audit lines (commands, file calls) starts its
// lines with them, so that all lines name a caller alike.
func AuditAttrs(ctx context.Context) []slog.Attr {
	attrs := []slog.Attr{slog.String("transport", "grpc")}
	if p, ok := peer.FromContext(ctx); ok {
		attrs = append(attrs, slog.String("peer", p.Addr.String()))
	}
	k := KeyFromContext(ctx)
	if k != nil {
		attrs = append(attrs, slog.String("key_id", k.ID))
	}
	if c := ClientCert(ConnFromContext(ctx)); c != nil {
		var bound string
		if k != nil {
			bound = k.Cert
		}
		attrs = append(attrs, slog.String("client_cert", CertIdentity(c, bound)),
			slog.String("client_cert_serial", c.SerialNumber.Text(16)))
	}
	return attrs
}
