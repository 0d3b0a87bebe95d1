package integration

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/internal/tlsconfig"
	"github.com/rexec/rexec/server"
)

const runMethod = "/rexec.v1.ExecService/Run"

// mtlsEnv is a real server that requires mTLS, with two certificate sets:
// good (the server's CA) and evil (a CA the server does not know).
type mtlsEnv struct {
	srv       *testenv.Server
	good, bad *tlsconfig.Files
	echoOnly  *interceptors.Key // a valid key without the exec scope
}

func startMTLS(t *testing.T) *mtlsEnv {
	t.Helper()
	good, err := tlsconfig.WriteDemo(filepath.Join(t.TempDir(), "good"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := tlsconfig.WriteDemo(filepath.Join(t.TempDir(), "evil"), "mallory")
	if err != nil {
		t.Fatal(err)
	}
	srvTLS, err := tlsconfig.Server(good.ServerCert, good.ServerKey, good.CACert)
	if err != nil {
		t.Fatal(err)
	}
	echoOnly, err := interceptors.GenerateKey("echo-only", interceptors.ScopeEcho)
	if err != nil {
		t.Fatal(err)
	}
	srv := testenv.StartServer(t, testenv.Options{
		Server:    server.Config{Creds: credentials.NewTLS(srvTLS)},
		ExtraKeys: []*interceptors.Key{echoOnly},
	})
	return &mtlsEnv{srv: srv, good: good, bad: bad, echoOnly: echoOnly}
}

// attackTransport is how a row dials the server.
type attackTransport int

const (
	mtlsGood      attackTransport = iota // a client certificate from the server's CA
	mtlsEvil                             // a client certificate from an unknown CA
	mtlsNoCert                           // TLS, no client certificate
	plaintextDial                        // no TLS at all
)

// dial returns a bare gRPC connection: no signing interceptor, so each row
// sets the authorization metadata itself, as an attacker would.
func (e *mtlsEnv) dial(t *testing.T, tr attackTransport) *grpc.ClientConn {
	t.Helper()
	creds := insecure.NewCredentials()
	if tr != plaintextDial {
		cert, key := e.good.ClientCert, e.good.ClientKey
		switch tr {
		case mtlsEvil:
			cert, key = e.bad.ClientCert, e.bad.ClientKey
		case mtlsNoCert:
			cert, key = "", ""
		}
		cfg, err := tlsconfig.Client(e.good.CACert, cert, key)
		if err != nil {
			t.Fatal(err)
		}
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient("passthrough:///"+e.srv.Addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// run calls Run with the given authorization values and reads the stream to
// its end; it returns the call's status.
func run1(t *testing.T, conn *grpc.ClientConn, shell string, auth ...string) *status.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, a := range auth {
		ctx = metadata.AppendToOutgoingContext(ctx, interceptors.MetadataKey, a)
	}
	stream, err := rexecv1.NewExecServiceClient(conn).Run(ctx, &rexecv1.RunRequest{Shell: shell})
	for i := 0; err == nil && i < 10_000; i++ {
		_, err = stream.Recv()
	}
	if errors.Is(err, io.EOF) {
		return status.New(codes.OK, "")
	}
	return status.Convert(err)
}

// commandStarted reports whether the server's audit log has a start of a
// command that mentions marker.
// mintV1 mints a token of format v1 (README before v2: no authority), as a
// client older than the server does.
func mintV1(k *interceptors.Key, method string, at time.Time) string {
	var nonce [16]byte
	rand.Read(nonce[:])
	b64 := base64.RawURLEncoding
	ts := strconv.FormatInt(at.Unix(), 10)
	m := hmac.New(sha256.New, k.Secret)
	m.Write([]byte("rexec-v1\n" + k.ID + "\n" + ts + "\n" + b64.EncodeToString(nonce[:]) + "\n" + method))
	return interceptors.Scheme + " v1;kid=" + k.ID + ";ts=" + ts + ";nonce=" + b64.EncodeToString(nonce[:]) + ";sig=" + b64.EncodeToString(m.Sum(nil))
}

func commandStarted(log, marker string) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "command started") && strings.Contains(line, marker) {
			return true
		}
	}
	return false
}

// TestAttackMatrix sends each attack to a real mTLS server over loopback. In
// every row the command would create a marker file; the row asserts the
// status code (and the one fixed message), that the file is not there, and
// that the audit log has no start of it. The first row is the control: a
// good call does run, so the checks can see a run.
func TestAttackMatrix(t *testing.T) {
	e := startMTLS(t)
	srv := e.srv
	wrongSecret, _ := interceptors.GenerateKey(srv.Key.ID) // same id, other secret
	ghost, _ := interceptors.GenerateKey("ghost")
	now := time.Now()
	mint := func(k *interceptors.Key, method string, at time.Time) string {
		return interceptors.Mint(k, method, srv.Addr, at)
	}

	_, port, _ := net.SplitHostPort(srv.Addr)

	// The replay row's token was first used, for real, by an innocent call.
	replayed := mint(srv.Key, runMethod, now)
	if st := run1(t, e.dial(t, mtlsGood), "true", replayed); st.Code() != codes.OK {
		t.Fatalf("the original of the replayed token: %v", st)
	}
	tampered := []byte(mint(srv.Key, runMethod, now))
	i := strings.Index(string(tampered), "sig=") + len("sig=")
	tampered[i] = map[bool]byte{true: 'B', false: 'A'}[tampered[i] == 'A']

	rows := []struct {
		name   string
		tr     attackTransport
		auth   []string
		code   codes.Code
		reason string // what the server log must say (auth rows)
	}{
		{"control: valid token", mtlsGood, []string{mint(srv.Key, runMethod, now)}, codes.OK, ""},
		{"no token", mtlsGood, nil, codes.Unauthenticated, "no authorization metadata"},
		{"wrong scheme", mtlsGood, []string{"Bearer " + strings.TrimPrefix(mint(srv.Key, runMethod, now), interceptors.Scheme+" ")}, codes.Unauthenticated, "malformed token"},
		{"malformed", mtlsGood, []string{interceptors.Scheme + " v2;kid=test;ts=now;nonce=x;sig=y"}, codes.Unauthenticated, "malformed token"},
		{"unknown key id", mtlsGood, []string{mint(ghost, runMethod, now)}, codes.Unauthenticated, "unknown key id"},
		{"wrong secret", mtlsGood, []string{mint(wrongSecret, runMethod, now)}, codes.Unauthenticated, "bad signature"},
		{"tampered signature", mtlsGood, []string{string(tampered)}, codes.Unauthenticated, "bad signature"},
		{"minted for another method", mtlsGood, []string{mint(srv.Key, "/rexec.v1.EchoService/Echo", now)}, codes.Unauthenticated, "bad signature"},
		{"minted for another server", mtlsGood, []string{interceptors.Mint(srv.Key, runMethod, "127.0.0.2:"+port, now)}, codes.Unauthenticated, "bad signature"},
		{"v1 token (an older client)", mtlsGood, []string{mintV1(srv.Key, runMethod, now)}, codes.Unauthenticated, "token v1: client older than server"},
		{"expired", mtlsGood, []string{mint(srv.Key, runMethod, now.Add(-2*time.Minute))}, codes.Unauthenticated, "off the server's clock"},
		{"from the future", mtlsGood, []string{mint(srv.Key, runMethod, now.Add(2*time.Minute))}, codes.Unauthenticated, "off the server's clock"},
		{"replayed nonce", mtlsGood, []string{replayed}, codes.Unauthenticated, "nonce replayed"},
		{"two tokens", mtlsGood, []string{mint(srv.Key, runMethod, now), mint(srv.Key, runMethod, now)}, codes.Unauthenticated, "2 authorization values"},
		{"valid key without scope", mtlsGood, []string{mint(e.echoOnly, runMethod, now)}, codes.PermissionDenied, `key lacks scope \"exec\"`},
		{"oversize token", mtlsGood, []string{mint(srv.Key, runMethod, now) + strings.Repeat("A", interceptors.MaxTokenLen)}, codes.Unauthenticated, "over 512"},
		// Over the server's 8 KiB header list: grpc-go's client has the
		// server's SETTINGS and refuses to send it (Internal); the bytes
		// never reach the server.
		{"oversize header", mtlsGood, []string{strings.Repeat("A", 16<<10)}, codes.Internal, ""},
		{"TLS required but plaintext dialed", plaintextDial, []string{mint(srv.Key, runMethod, now)}, codes.Unavailable, ""},
		{"client cert from an unknown CA", mtlsEvil, []string{mint(srv.Key, runMethod, now)}, codes.Unavailable, ""},
		{"no client cert", mtlsNoCert, []string{mint(srv.Key, runMethod, now)}, codes.Unavailable, ""},
	}
	dir := t.TempDir()
	for i, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			marker := filepath.Join(dir, "marker-"+strings.ReplaceAll(r.name, " ", "-"))
			logBefore := len(srv.Log.String())
			st := run1(t, e.dial(t, r.tr), "touch "+marker, r.auth...)
			t.Logf("row %2d %-34s -> %s", i, r.name, st.Code())
			if st.Code() != r.code {
				t.Fatalf("code %s (%q), want %s", st.Code(), st.Message(), r.code)
			}
			_, statErr := os.Stat(marker)
			started := commandStarted(srv.Log.String(), marker)
			if r.code == codes.OK {
				if statErr != nil || !started {
					t.Fatalf("control row: marker %v, audit start %v: the checks cannot see a run", statErr, started)
				}
				return
			}
			if statErr == nil || started {
				t.Fatalf("the command ran: marker stat %v, audit start %v", statErr, started)
			}
			switch r.code {
			case codes.Unauthenticated:
				if st.Message() != interceptors.UnauthenticatedMessage {
					t.Errorf("message %q: every auth failure must say the same", st.Message())
				}
			case codes.PermissionDenied:
				if st.Message() != interceptors.PermissionDeniedMessage {
					t.Errorf("message %q", st.Message())
				}
			}
			if rowLog := srv.Log.String()[logBefore:]; r.reason != "" && !strings.Contains(rowLog, r.reason) {
				t.Errorf("server log does not say %q:\n%s", r.reason, rowLog)
			}
		})
	}
	// The log says why, never the secret or a signature.
	log := srv.Log.String()
	for _, k := range []*interceptors.Key{srv.Key, wrongSecret, e.echoOnly} {
		if secret := strings.Fields(k.Line())[1]; strings.Contains(log, secret) {
			t.Errorf("server log holds the secret of key %q", k.ID)
		}
	}
	if sig := replayed[strings.Index(replayed, "sig=")+4:]; strings.Contains(log, sig) {
		t.Error("server log holds a signature")
	}
}
