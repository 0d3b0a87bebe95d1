// Package tlsconfig builds the TLS configurations of rexecd and rexec from
// PEM files, and makes a throwaway certificate authority for trying TLS and
// mTLS out.
//
//	srv, _ := tlsconfig.NewReloadable("server.crt", "server.key", "ca.crt") // mTLS: client certs from ca.crt
//	creds := credentials.NewTLS(srv.Config())
//	srv.Reload() // on SIGHUP: new handshakes use the files as they are now
//	cli, _ := tlsconfig.Client("ca.crt", "client.crt", "client.key")
//
// Both sides speak TLS 1.3 only: every rexec client is Go (or grpcurl, also
// Go), so there is no older peer to serve, and 1.3 leaves no cipher choice
// to get wrong. WriteDemo makes a CA with a server and a client
// certificate; Issue makes more certificates from it.
package tlsconfig
