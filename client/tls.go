package client

import (
	"context"
	"crypto/tls"
	"net"

	"google.golang.org/grpc/credentials"
)

// tlsCreds returns TLS credentials for cfg. grpc-go makes a configured
// ServerName the connection's :authority; rexec's tokens sign the address
// dialed instead (the server checks that it is its own), so a ServerName
// is kept out of grpc's sight and used only to verify the certificate.
func tlsCreds(cfg *tls.Config) credentials.TransportCredentials {
	if cfg.ServerName == "" {
		return credentials.NewTLS(cfg)
	}
	plain := cfg.Clone()
	plain.ServerName = ""
	return &serverNameCreds{TransportCredentials: credentials.NewTLS(plain), name: cfg.ServerName}
}

// serverNameCreds verifies the server's certificate against name, whatever
// the authority.
type serverNameCreds struct {
	credentials.TransportCredentials
	name string
}

func (c *serverNameCreds) ClientHandshake(ctx context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.TransportCredentials.ClientHandshake(ctx, c.name, conn)
}

func (c *serverNameCreds) Clone() credentials.TransportCredentials {
	return &serverNameCreds{TransportCredentials: c.TransportCredentials.Clone(), name: c.name}
}
