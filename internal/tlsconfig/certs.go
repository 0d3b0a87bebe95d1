package tlsconfig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Files are the paths of a throwaway CA, server and client certificate set
// as WriteDemo writes them.
type Files struct {
	CACert, CAKey         string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
}

// DemoValidity is how long WriteDemo's certificates are valid.
const DemoValidity = 30 * 24 * time.Hour

// WriteDemo makes a throwaway CA (ECDSA P-256) and, signed by it, a server
// certificate for 127.0.0.1, ::1 and localhost and a client certificate
// with common name clientName, and writes them as PEM files into dir
// (created with mode 0700; keys mode 0600). It refuses to overwrite files.
// The CA key is written too, so that more client certificates can be made
// with openssl; delete it when it is not needed.
func WriteDemo(dir, clientName string) (*Files, error) {
	f := &Files{
		CACert: filepath.Join(dir, "ca.crt"), CAKey: filepath.Join(dir, "ca.key"),
		ServerCert: filepath.Join(dir, "server.crt"), ServerKey: filepath.Join(dir, "server.key"),
		ClientCert: filepath.Join(dir, "client.crt"), ClientKey: filepath.Join(dir, "client.key"),
	}
	for _, p := range []string{f.CACert, f.CAKey, f.ServerCert, f.ServerKey, f.ClientCert, f.ClientKey} {
		if _, err := os.Stat(p); err == nil {
			return nil, fmt.Errorf("%s exists: not overwriting (use an empty --dir)", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	now := time.Now().Add(-time.Minute) // a little slack for clocks behind ours
	ca, caKey, err := issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "rexec throwaway CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		NotBefore:             now, NotAfter: now.Add(DemoValidity),
	}, nil, nil)
	if err != nil {
		return nil, err
	}
	srv, srvKey, err := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		NotBefore:   now, NotAfter: now.Add(DemoValidity),
	}, ca, caKey)
	if err != nil {
		return nil, err
	}
	cli, cliKey, err := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: clientName},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotBefore:   now, NotAfter: now.Add(DemoValidity),
	}, ca, caKey)
	if err != nil {
		return nil, err
	}
	for _, w := range []struct {
		path string
		typ  string
		der  []byte
		mode os.FileMode
	}{
		{f.CACert, "CERTIFICATE", ca.Raw, 0o644},
		{f.CAKey, "PRIVATE KEY", caKey, 0o600},
		{f.ServerCert, "CERTIFICATE", srv.Raw, 0o644},
		{f.ServerKey, "PRIVATE KEY", srvKey, 0o600},
		{f.ClientCert, "CERTIFICATE", cli.Raw, 0o644},
		{f.ClientKey, "PRIVATE KEY", cliKey, 0o600},
	} {
		data := pem.EncodeToMemory(&pem.Block{Type: w.typ, Bytes: w.der})
		if err := os.WriteFile(w.path, data, w.mode); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Identity is the subject of a certificate that Issue makes.
type Identity struct {
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	URIs       []*url.URL
	// Server makes a server certificate (TLS server auth); by default it is
	// a client certificate (TLS client auth).
	Server bool
}

// Issue makes a new key (ECDSA P-256) and a certificate for id, valid for
// DemoValidity and signed by the CA in caCertFile and caKeyFile (as
// WriteDemo writes them), and writes them as PEM to certFile and keyFile
// (mode 0600). Each file is replaced whole (a rename), so a server that
// reloads never reads half of one; reload after both are written. It
// returns the new certificate.
func Issue(caCertFile, caKeyFile, certFile, keyFile string, id Identity) (*x509.Certificate, error) {
	ca, err := readPEM(caCertFile, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(ca)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", caCertFile, err)
	}
	caKey, err := readPEM(caKeyFile, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	now := time.Now().Add(-time.Minute)
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: id.CommonName},
		DNSNames:    id.DNSNames,
		IPAddresses: id.IPs,
		URIs:        id.URIs,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotBefore:   now, NotAfter: now.Add(DemoValidity),
	}
	if id.Server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	cert, key, err := issue(tmpl, caCert, caKey)
	if err != nil {
		return nil, err
	}
	if err := replaceFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		return nil, err
	}
	if err := replaceFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		return nil, err
	}
	return cert, nil
}

// readPEM returns the first PEM block of type typ in file.
func readPEM(file, typ string) ([]byte, error) {
	rest, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, fmt.Errorf("%s holds no PEM %s", file, typ)
		}
		if b.Type == typ {
			return b.Bytes, nil
		}
	}
}

// replaceFile writes data to a temporary file beside path and renames it
// over path.
func replaceFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename, there is nothing there
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	return err
}

// issue makes a new P-256 key and a certificate for it from tmpl, signed by
// parent with parentKey (DER PKCS#8), or self-signed when parent is nil. It
// returns the certificate and the new key as DER PKCS#8.
func issue(tmpl, parent *x509.Certificate, parentKey []byte) (*x509.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	signer := any(key)
	if parent == nil {
		parent = tmpl
	} else {
		pk, err := x509.ParsePKCS8PrivateKey(parentKey)
		if err != nil {
			return nil, nil, err
		}
		signer = pk
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, nil, fmt.Errorf("creating %q certificate: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return cert, keyDER, nil
}
