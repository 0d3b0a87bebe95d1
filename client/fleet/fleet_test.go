package fleet_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/credentials"

	"github.com/rexec/rexec/client"
	"github.com/rexec/rexec/client/config"
	"github.com/rexec/rexec/client/fleet"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/internal/tlsconfig"
	"github.com/rexec/rexec/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fleetOf starts n in-process servers, each on its own port, sharing one
// key, and returns them with a Dialer that signs with that key.
func fleetOf(t *testing.T, n int, o testenv.Options) ([]*testenv.Server, *fleet.Dialer) {
	t.Helper()
	key, err := interceptors.GenerateKey("fleet")
	if err != nil {
		t.Fatal(err)
	}
	o.Keys = []*interceptors.Key{key}
	srvs := make([]*testenv.Server, n)
	for i := range srvs {
		srvs[i] = testenv.StartServer(t, o)
	}
	return srvs, &fleet.Dialer{Defaults: fleet.Credentials{KeyFile: srvs[0].KeyFile}}
}

func targetsOf(srvs []*testenv.Server) []fleet.Target {
	ts := make([]fleet.Target, len(srvs))
	for i, s := range srvs {
		ts[i] = fleet.Target{Name: s.Addr, Addr: s.Addr}
	}
	return ts
}

// recorder is an Output that keeps every target's output and result.
type recorder struct {
	mu                    sync.Mutex
	out, err              map[string]*bytes.Buffer
	results               map[string]*fleet.Result
	ended                 []string // targets in the order they ended
	started               map[string]bool
	inFlight, maxInFlight int
}

func newRecorder() *recorder {
	return &recorder{out: map[string]*bytes.Buffer{}, err: map[string]*bytes.Buffer{},
		results: map[string]*fleet.Result{}, started: map[string]bool{}}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (r *recorder) Start(t *fleet.Target) (io.Writer, io.Writer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o, e := &bytes.Buffer{}, &bytes.Buffer{}
	r.out[t.Name], r.err[t.Name] = o, e
	r.started[t.Name] = true
	r.inFlight++
	r.maxInFlight = max(r.maxInFlight, r.inFlight)
	return lockedWriter{&r.mu, o}, lockedWriter{&r.mu, e}, nil
}

func (r *recorder) Done(res *fleet.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = append(r.ended, res.Target.Name)
	r.results[res.Target.Name] = res
	if r.started[res.Target.Name] {
		r.inFlight--
	}
}

// roles is the command of most tests: what it does depends on the
// server's FLEET_ROLE (testenv.Options.Env).
const roles = `case "$FLEET_ROLE" in
ok) echo same ;;
other) echo other ;;
fail3) echo same; echo bad >&2; exit 3 ;;
sig) echo same; kill -KILL $$ ;;
slow) sleep 5 ;;
esac`

// withRole starts one server of the shared key with FLEET_ROLE=role.
func withRole(t *testing.T, key *interceptors.Key, role string) *testenv.Server {
	return testenv.StartServer(t, testenv.Options{Keys: []*interceptors.Key{key}, Env: []string{"FLEET_ROLE=" + role}})
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "config"), []byte(`
port = 50061
[hosts.db]
address = "10.9.9.9"
tls_server_name = "db.internal"
[hosts.web2]
address = "10.0.0.22:4000"
[groups]
web = ["web[1-3]"]
all = ["@web", "db", "dns:///svc.test"]
loop = ["@loop2"]
loop2 = ["a", "@loop"]
`))
	if err != nil {
		t.Fatal(err)
	}
	dns := testenv.StartDNS(t, map[string][]netip.Addr{
		"svc.test": {netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("::1")},
	})
	hosts := filepath.Join(dir, "hosts")
	os.WriteFile(hosts, []byte("# the rest\nn[08-10]:7000   # three\n\n10.0.0.[1-2],web1\n"), 0o644)
	r := &fleet.Resolver{Config: cfg, DNS: dns.Resolver()}
	ctx := context.Background()

	got, err := r.Resolve(ctx, []string{"@all", "x:1,[::1]", "::2"}, []string{hosts})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, tg := range got {
		lines = append(lines, fmt.Sprintf("%s=%s/%s/%v", tg.Name, tg.Addr, tg.ServerName, tg.Host != nil))
	}
	want := []string{
		"web1=web1:50061//false", "web2=10.0.0.22:4000//true", "web3=web3:50061//false",
		"db=10.9.9.9:50061/db.internal/true",
		"127.0.0.2:50061=127.0.0.2:50061/svc.test/false", "127.0.0.3:50061=127.0.0.3:50061/svc.test/false", "[::1]:50061=[::1]:50061/svc.test/false",
		"x:1=x:1//false", "::2=[::2]:50061//false",
		"n08:7000=n08:7000//false", "n09:7000=n09:7000//false", "n10:7000=n10:7000//false",
		"10.0.0.1=10.0.0.1:50061//false", "10.0.0.2=10.0.0.2:50061//false",
	}
	// [::1] is the same address as dns's [::1]:50061: kept once; so is the
	// hosts file's web1.
	if !slices.Equal(lines, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if dns.Queries.Load() == 0 {
		t.Error("the DNS server was never asked")
	}

	for spec, msg := range map[string]string{
		"@nope":               "no group @nope",
		"@loop":               "contains itself",
		"node[1-":             "without ']'",
		"dns:///missing.test": "missing.test",
		"dns://8.8.8.8/x":     "not supported",
		"h:0":                 "port",
		"h:x":                 "port",
		"a b":                 "not HOST[:PORT]",
	} {
		if _, err := r.Resolve(ctx, []string{spec}, nil); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Resolve(%q): %v, want an error saying %q", spec, err, msg)
		}
	}
	if _, err := r.Resolve(ctx, nil, nil); err == nil {
		t.Error("no targets accepted")
	}
	if _, err := (&fleet.Resolver{}).Resolve(ctx, []string{"@web"}, nil); err == nil || !strings.Contains(err.Error(), "no group @web") {
		t.Errorf("a group without a config file: %v", err)
	}
}

// TestExitStatusRule: over mixes of targets that exit 0, exit nonzero, are
// killed by a signal, refuse connections, answer nothing (black-holed) and
// refuse the key, each target gets its class and status, and the run
// exits 0 when all exited 0, 255 when any could not run the command, else
// the highest status.
func TestExitStatusRule(t *testing.T) {
	key, _ := interceptors.GenerateKey("fleet")
	srv := map[string]*testenv.Server{}
	for _, role := range []string{"ok", "fail3", "sig"} {
		srv[role] = withRole(t, key, role)
	}
	stranger := testenv.StartServer(t, testenv.Options{}) // its own key
	dial := &fleet.Dialer{Defaults: fleet.Credentials{KeyFile: srv["ok"].KeyFile}}
	addr := map[string]string{
		"ok": srv["ok"].Addr, "fail3": srv["fail3"].Addr, "sig": srv["sig"].Addr,
		"closed": testenv.ClosedPort(t), "blackhole": testenv.BlackHole(t), "stranger": stranger.Addr,
	}
	want := map[string]struct {
		class  fleet.Class
		status int
	}{
		"ok": {fleet.OK, 0}, "fail3": {fleet.Failed, 3}, "sig": {fleet.Failed, 137},
		"closed": {fleet.Unreachable, 255}, "blackhole": {fleet.Timeout, 255}, "stranger": {fleet.Auth, 255},
	}
	cases := []struct {
		targets []string
		exit    int
	}{
		{[]string{"ok"}, 0},
		{[]string{"ok", "fail3"}, 3},
		{[]string{"fail3", "sig", "ok"}, 137},
		{[]string{"ok", "fail3", "closed"}, 255},
		{[]string{"ok", "blackhole"}, 255},
		{[]string{"ok", "sig", "stranger"}, 255},
		{[]string{"closed", "blackhole", "stranger", "ok", "fail3", "sig"}, 255},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.targets, "+"), func(t *testing.T) {
			var ts []fleet.Target
			for _, name := range c.targets {
				ts = append(ts, fleet.Target{Name: name, Addr: addr[name]})
			}
			rec := newRecorder()
			ctx := context.Background()
			results := fleet.Run(ctx, ts, &rexecv1.RunRequest{Shell: roles}, rec,
				fleet.Options{ConnectTimeout: time.Second, Dial: dial.Dial})
			for i, r := range results {
				w := want[c.targets[i]]
				if r.Class != w.class || r.Status != w.status {
					t.Errorf("%s: class %s status %d (%v), want %s %d", c.targets[i], r.Class, r.Status, r.Err, w.class, w.status)
				}
			}
			if got := fleet.ExitStatus(ctx, results); got != c.exit {
				t.Errorf("exit status %d, want %d", got, c.exit)
			}
			if out := rec.out["fail3"]; out != nil && out.String() != "same\n" || rec.err["fail3"] != nil && rec.err["fail3"].String() != "bad\n" {
				t.Errorf("fail3's output: %q %q", rec.out["fail3"], rec.err["fail3"])
			}
		})
	}
}

// TestSlidingWindow: with a window of 2 and a black-holed target first,
// the other targets all run, one after another, in the second slot while
// the black hole holds the first until its connect timeout: a window,
// never a batch that waits for its slowest member.
func TestSlidingWindow(t *testing.T) {
	srvs, dial := fleetOf(t, 4, testenv.Options{})
	ts := append([]fleet.Target{{Name: "blackhole", Addr: testenv.BlackHole(t)}}, targetsOf(srvs)...)
	rec := newRecorder()
	results := fleet.Run(context.Background(), ts, &rexecv1.RunRequest{Shell: "true"}, rec,
		fleet.Options{Window: 2, ConnectTimeout: 3 * time.Second, Dial: dial.Dial})
	if rec.ended[len(rec.ended)-1] != "blackhole" {
		t.Errorf("targets ended in the order %v: the black hole held the others back", rec.ended)
	}
	if rec.maxInFlight != 2 {
		t.Errorf("%d targets in flight at most, want the window, 2", rec.maxInFlight)
	}
	if results[0].Class != fleet.Timeout {
		t.Errorf("black hole: %s %v", results[0].Class, results[0].Err)
	}
	for _, r := range results[1:] {
		if r.Class != fleet.OK {
			t.Errorf("%s: %s %v", r.Target.Name, r.Class, r.Err)
		}
	}
}

// TestManyTargets: 100 in-process servers, each on its own port, run
// `echo $$` 64 at a time; each target's output is its own command's pid,
// attributed to it.
func TestManyTargets(t *testing.T) {
	srvs, dial := fleetOf(t, 100, testenv.Options{})
	rec := newRecorder()
	ctx := context.Background()
	results := fleet.Run(ctx, targetsOf(srvs), &rexecv1.RunRequest{Shell: "echo $$"}, rec, fleet.Options{Dial: dial.Dial})
	for _, r := range results {
		if r.Class != fleet.OK || r.PID == 0 {
			t.Fatalf("%s: %s %v", r.Target.Name, r.Class, r.Err)
		}
		if got := rec.out[r.Target.Name].String(); got != fmt.Sprintf("%d\n", r.PID) {
			t.Errorf("%s printed %q; its command was pid %d", r.Target.Name, got, r.PID)
		}
	}
	if rec.maxInFlight > 64 {
		t.Errorf("%d in flight, over the default window 64", rec.maxInFlight)
	}
	if fleet.ExitStatus(ctx, results) != 0 {
		t.Error("exit status not 0")
	}
}

// lineMaker prints, on stdout and on stderr, lines of pseudo-random
// lengths up to 1 MiB that check themselves — "PID LEN " and then LEN
// times one letter — the last without a newline.
const lineMaker = `p=$$; n=$((p % 5 + 4)); i=0
while [ $i -lt $n ]; do
  len=$(( (p * 7919 + i * 104729) % 1048577 )); [ $((i % 2)) = 0 ] && len=$((len % 300))
  printf '%s %s ' $p $len; head -c $len /dev/zero | tr '\0' o
  printf '%s %s ' $p $len >&2; head -c $len /dev/zero | tr '\0' e >&2
  i=$((i+1)); if [ $i -lt $n ]; then echo; echo >&2; fi
done`

// TestLinesNeverMix: 12 targets write long and short lines at once
// through Lines; every output line carries its target's prefix, is one
// whole line of that target's own command (its pid, its length), and each
// target's last line, which had no newline, is ended and marked.
func TestLinesNeverMix(t *testing.T) {
	srvs, dial := fleetOf(t, 12, testenv.Options{})
	var stdout, stderr bytes.Buffer
	out := &fleet.Lines{Stdout: &stdout, Stderr: &stderr}
	results := fleet.Run(context.Background(), targetsOf(srvs), &rexecv1.RunRequest{Shell: lineMaker}, out,
		fleet.Options{Window: 12, Dial: dial.Dial})
	pids := map[string]int{}
	for _, r := range results {
		if r.Class != fleet.OK {
			t.Fatalf("%s: %s %v", r.Target.Name, r.Class, r.Err)
		}
		pids[r.Target.Name] = r.PID
	}
	for stream, buf := range map[string]*bytes.Buffer{"o": &stdout, "e": &stderr} {
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		perTarget := map[string][]string{}
		for _, line := range lines {
			name, rest, ok := strings.Cut(line, ": ")
			if _, known := pids[name]; !ok || !known {
				t.Fatalf("stream %s: a line without a target's prefix: %.80q", stream, line)
			}
			perTarget[name] = append(perTarget[name], rest)
		}
		for name, pid := range pids {
			got := perTarget[name]
			n := pid%5 + 4
			if len(got) != n+1 || got[n] != fleet.NoNewline {
				t.Fatalf("stream %s, %s: %d lines, the last %.40q; want %d and the no-newline mark", stream, name, len(got), got[len(got)-1], n)
			}
			for i, l := range got[:n] {
				var p, length int
				if _, err := fmt.Sscanf(l, "%d %d ", &p, &length); err != nil || p != pid {
					t.Fatalf("stream %s, %s line %d: %.60q is not from pid %d", stream, name, i, l, pid)
				}
				body := l[len(fmt.Sprintf("%d %d ", p, length)):]
				if len(body) != length || strings.Trim(body, stream) != "" {
					t.Fatalf("stream %s, %s line %d: %d bytes of body, want %d of %q: mixed", stream, name, i, len(body), length, stream)
				}
			}
		}
	}
}

// TestGather: targets with equal results share one block, headed by their
// names folded; the blocks of commands that exited 0 come first.
func TestGather(t *testing.T) {
	key, _ := interceptors.GenerateKey("fleet")
	roleOf := []string{"ok", "ok", "other", "ok", "fail3", "ok", "fail3"}
	var ts []fleet.Target
	var first *testenv.Server
	for i, role := range roleOf {
		s := withRole(t, key, role)
		if first == nil {
			first = s
		}
		ts = append(ts, fleet.Target{Name: fmt.Sprintf("node%02d", i+1), Addr: s.Addr})
	}
	ts = append(ts, fleet.Target{Name: "node08", Addr: testenv.ClosedPort(t)})
	dial := &fleet.Dialer{Defaults: fleet.Credentials{KeyFile: first.KeyFile}}
	var stdout, stderr bytes.Buffer
	g := &fleet.Gather{Stdout: &stdout, Stderr: &stderr, Messages: func(r *fleet.Result) []string {
		if r.Err != nil {
			return []string{"rexec: cannot reach " + r.Target.Name}
		}
		return nil
	}}
	fleet.Run(context.Background(), ts, &rexecv1.RunRequest{Shell: roles}, g, fleet.Options{Dial: dial.Dial})
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	block := func(head, body string) string {
		rule := strings.Repeat("-", len(head))
		return rule + "\n" + head + "\n" + rule + "\n" + body
	}
	wantOut := block("node[01-02,04,06] (4)", "same\n") + block("node03 (1)", "other\n") +
		block("node[05,07] (2): exit 3", "same\n") + block("node08 (1): unreachable", "")
	if stdout.String() != wantOut {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout.String(), wantOut)
	}
	wantErr := block("node[05,07] (2): exit 3: stderr", "bad\n") + block("node08 (1): unreachable: stderr", "rexec: cannot reach node08\n")
	if stderr.String() != wantErr {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), wantErr)
	}
}

// TestOutputDir: NAME.out, NAME.err and NAME.status hold what a single run
// of the same request on that target gives: its stdout, its stderr and the
// lines rexec adds about the end, and its exit status.
func TestOutputDir(t *testing.T) {
	key, _ := interceptors.GenerateKey("fleet")
	var ts []fleet.Target
	var srvs []*testenv.Server
	for i, role := range []string{"ok", "fail3", "sig"} {
		s := withRole(t, key, role)
		srvs = append(srvs, s)
		ts = append(ts, fleet.Target{Name: fmt.Sprintf("n%d:%s", i, role), Addr: s.Addr})
	}
	closed := fleet.Target{Name: "closed", Addr: testenv.ClosedPort(t)}
	ts = append(ts, closed)
	dial := &fleet.Dialer{Defaults: fleet.Credentials{KeyFile: srvs[0].KeyFile}}
	dir := filepath.Join(t.TempDir(), "out")
	d, err := fleet.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	msgs := func(r *fleet.Result) []string { return fleet.Messages(r, "fleet", false, time.Second) }
	d.Messages = msgs
	req := &rexecv1.RunRequest{Shell: "seq 1 20000 >&2; printf 'no newline '; " + roles}
	results := fleet.Run(context.Background(), ts, req, d, fleet.Options{Dial: dial.Dial})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for i, s := range srvs {
		// The same request, alone, as rexec run -n does it.
		c := s.Client(t, key)
		var out, errb bytes.Buffer
		exited, err := c.Run(context.Background(), req, &out, &errb)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range client.ExitNotes(exited) {
			errb.WriteString(n + "\n")
		}
		status := fmt.Sprintf("%d\n", client.ExitStatus(exited))
		name := ts[i].Name
		for ext, want := range map[string][]byte{".out": out.Bytes(), ".err": errb.Bytes(), ".status": []byte(status)} {
			got, err := os.ReadFile(filepath.Join(dir, name+ext))
			if err != nil {
				t.Fatal(err)
			}
			if sha256.Sum256(got) != sha256.Sum256(want) {
				t.Errorf("%s%s: %d bytes %.60q, a single run gave %d bytes %.60q", name, ext, len(got), got, len(want), want)
			}
		}
		if results[i].Status != client.ExitStatus(exited) {
			t.Errorf("%s: status %d, a single run's %d", name, results[i].Status, client.ExitStatus(exited))
		}
	}
	got, _ := os.ReadFile(filepath.Join(dir, "closed.err"))
	if want := strings.Join(msgs(results[3]), "\n") + "\n"; string(got) != want || !strings.Contains(want, "cannot reach rexecd at "+closed.Addr) {
		t.Errorf("closed.err = %q, want %q", got, want)
	}
	if st, _ := os.ReadFile(filepath.Join(dir, "closed.status")); string(st) != "255\n" {
		t.Errorf("closed.status = %q", st)
	}
}

// TestJSON: one record per target, then the summary.
func TestJSON(t *testing.T) {
	key, _ := interceptors.GenerateKey("fleet")
	ok, fail := withRole(t, key, "ok"), withRole(t, key, "fail3")
	ts := []fleet.Target{{Name: "a1", Addr: ok.Addr}, {Name: "a2", Addr: fail.Addr}, {Name: "a3", Addr: testenv.ClosedPort(t)}}
	dial := &fleet.Dialer{Defaults: fleet.Credentials{KeyFile: ok.KeyFile}}
	var buf bytes.Buffer
	j := &fleet.JSON{W: &buf, Messages: func(r *fleet.Result) []string { return fleet.Messages(r, "fleet", false, time.Second) }}
	ctx := context.Background()
	start := time.Now()
	results := fleet.Run(ctx, ts, &rexecv1.RunRequest{Shell: roles}, j, fleet.Options{Dial: dial.Dial})
	status := fleet.ExitStatus(ctx, results)
	if err := j.Summary(fleet.Summarize(results, status, time.Since(start), false)); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&buf)
	recs := map[string]fleet.Record{}
	for range 3 {
		var r fleet.Record
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		recs[r.Target] = r
	}
	if r := recs["a1"]; r.Class != "ok" || r.ExitStatus != 0 || *r.ExitCode != 0 || r.StdoutBytes != 5 || r.PID == 0 {
		t.Errorf("a1: %+v", r)
	}
	if r := recs["a2"]; r.Class != "failed" || r.ExitStatus != 3 || r.StderrBytes != 4 {
		t.Errorf("a2: %+v", r)
	}
	if r := recs["a3"]; r.Class != "unreachable" || r.ExitStatus != 255 || r.ExitCode != nil || !strings.Contains(r.Error, "cannot reach") {
		t.Errorf("a3: %+v", r)
	}
	var sum fleet.SummaryRecord
	if err := dec.Decode(&sum); err != nil {
		t.Fatal(err)
	}
	if !sum.Summary || sum.Targets != 3 || sum.OK != 1 || sum.Failed != 1 || sum.NotRun != 1 || sum.ExitStatus != 255 ||
		sum.FailedTargets != "a[2-3]" || sum.Classes["unreachable"] != 1 {
		t.Errorf("summary %+v", sum)
	}
}

// TestSummaryAndFailedFile: the summary folds the failing targets by
// class; the failed file lists them one a line, and reads back as a
// hosts file.
func TestSummaryAndFailedFile(t *testing.T) {
	mk := func(name string, c fleet.Class) *fleet.Result {
		return &fleet.Result{Target: fleet.Target{Name: name, Addr: name + ":1"}, Class: c}
	}
	results := []*fleet.Result{mk("node01", fleet.OK), mk("node02", fleet.Failed), mk("node03", fleet.Failed),
		mk("node04", fleet.Timeout), mk("node05", fleet.Unreachable), mk("node06", fleet.OK), mk("node07", fleet.Auth)}
	s := fleet.Summarize(results, 255, 1500*time.Millisecond, false)
	want := []string{
		"rexec: 2 ok, 2 failed, 3 unreachable (of 7 targets, 1.5s)",
		"rexec: failed: node[02-03]",
		"rexec: unreachable: node05",
		"rexec: unreachable (timeout): node04",
		"rexec: unreachable (auth): node07",
	}
	if got := s.Lines(); !slices.Equal(got, want) {
		t.Errorf("summary\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	path := filepath.Join(t.TempDir(), "failed")
	if err := fleet.WriteFailedFile(path, results); err != nil {
		t.Fatal(err)
	}
	back, err := fleet.ReadHostsFile(path)
	if err != nil || !slices.Equal(back, []string{"node02", "node03", "node04", "node05", "node07"}) {
		t.Errorf("failed file reads back as %v %v", back, err)
	}
	s = fleet.Summarize([]*fleet.Result{mk("a1", fleet.OK), mk("a2", fleet.Cancelled), mk("a3", fleet.Cancelled)}, 130, time.Second, true)
	want = []string{"rexec: interrupted: 1 ok, 0 failed, 0 unreachable, 2 not finished (of 3 targets, 1s)", "rexec: not finished: a[2-3]"}
	if got := s.Lines(); !slices.Equal(got, want) {
		t.Errorf("interrupted summary\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCancel: cancelling the run (Ctrl-C) ends every call in flight; each
// server kills its command's whole process group; the targets are
// cancelled with 128+SIGINT, the run exits 130, and targets not yet
// started never start.
func TestCancel(t *testing.T) {
	srvs, dial := fleetOf(t, 10, testenv.Options{})
	ts := targetsOf(srvs)
	ts = append(ts, fleet.Target{Name: "late", Addr: testenv.ClosedPort(t)}) // beyond the window
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	marker := fmt.Sprintf("fleet-cancel-%d", time.Now().UnixNano())
	go func() {
		// Cancel once every server's command has started.
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			n := 0
			for _, s := range srvs {
				if strings.Contains(s.Log.String(), "command started") {
					n++
				}
			}
			if n == len(srvs) {
				break
			}
		}
		cancel(fleet.Interrupted{Signal: syscall.SIGINT})
	}()
	rec := newRecorder()
	results := fleet.Run(ctx, ts, &rexecv1.RunRequest{Shell: "sleep 300 & sleep 300; : " + marker}, rec,
		fleet.Options{Window: 10, Dial: dial.Dial})
	for _, r := range results {
		if r.Class != fleet.Cancelled || r.Status != 130 {
			t.Errorf("%s: %s %d %v, want cancelled 130", r.Target.Name, r.Class, r.Status, r.Err)
		}
	}
	if got := fleet.ExitStatus(ctx, results); got != 130 {
		t.Errorf("exit status %d, want 130", got)
	}
	if rec.started["late"] {
		t.Error("a target beyond the window started after the cancel")
	}
	for _, s := range srvs {
		m := regexp.MustCompile(`command started.* pid=(\d+)`).FindStringSubmatch(s.Log.String())
		if m == nil {
			t.Fatalf("%s: no command started", s.Addr)
		}
		pid, _ := strconv.Atoi(m[1])
		testenv.WaitGroupGone(t, pid, 10*time.Second)
	}
}

// TestDNSFleetTLS: dns:///NAME:PORT expands to all of NAME's A and AAAA
// records (a headless Service's pods); each target is dialed at its own
// address with mTLS, its certificate checked for NAME, its token bound to
// that address — and each server accepts it. A wrong --tls-server-name is
// an auth failure on every target.
func TestDNSFleetTLS(t *testing.T) {
	const name = "rexecd.test.svc.cluster.local"
	demo, err := tlsconfig.WriteDemo(filepath.Join(t.TempDir(), "certs"), "ops")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(demo.ServerCert)
	svcCert, svcKey := filepath.Join(dir, "svc.crt"), filepath.Join(dir, "svc.key")
	if _, err := tlsconfig.Issue(demo.CACert, demo.CAKey, svcCert, svcKey, tlsconfig.Identity{CommonName: name, DNSNames: []string{name}, Server: true}); err != nil {
		t.Fatal(err)
	}
	srvTLS, err := tlsconfig.Server(svcCert, svcKey, demo.CACert)
	if err != nil {
		t.Fatal(err)
	}
	hosts := []string{"127.0.0.1", "127.0.0.2", "::1"}
	port := commonPort(t, hosts)
	key, _ := interceptors.GenerateKey("fleet")
	var srvs []*testenv.Server
	var ips []netip.Addr
	for _, h := range hosts {
		srvs = append(srvs, testenv.StartServer(t, testenv.Options{Keys: []*interceptors.Key{key},
			Listen: net.JoinHostPort(h, port), Server: server.Config{Creds: credentials.NewTLS(srvTLS)}}))
		ips = append(ips, netip.MustParseAddr(h))
	}
	dns := testenv.StartDNS(t, map[string][]netip.Addr{name: ips})
	r := &fleet.Resolver{DNS: dns.Resolver()}
	ts, err := r.Resolve(context.Background(), []string{"dns:///" + name + ":" + port}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 {
		t.Fatalf("resolved %v, want 3 targets", ts)
	}
	creds := fleet.Credentials{KeyFile: srvs[0].KeyFile, TLSCA: demo.CACert, TLSCert: demo.ClientCert, TLSKey: demo.ClientKey}
	dial := &fleet.Dialer{Defaults: creds}
	rec := newRecorder()
	results := fleet.Run(context.Background(), ts, &rexecv1.RunRequest{Shell: "echo hi"}, rec, fleet.Options{Dial: dial.Dial})
	for _, res := range results {
		if res.Class != fleet.OK || rec.out[res.Target.Name].String() != "hi\n" {
			t.Errorf("%s: %s %v", res.Target.Name, res.Class, res.Err)
		}
	}
	for _, s := range srvs {
		if !strings.Contains(s.Log.String(), "command started") {
			t.Errorf("server %s ran nothing", s.Addr)
		}
	}
	wrong := &fleet.Dialer{Defaults: creds, Flags: fleet.Credentials{TLSServerName: "other.name"}}
	for _, res := range fleet.Run(context.Background(), ts, &rexecv1.RunRequest{Shell: "true"}, newRecorder(), fleet.Options{Dial: wrong.Dial}) {
		if res.Class != fleet.Auth {
			t.Errorf("%s with a wrong server name: %s %v, want auth", res.Target.Name, res.Class, res.Err)
		}
	}
}

// commonPort finds a port free on every one of hosts.
func commonPort(t *testing.T, hosts []string) string {
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(hosts[0], "0"))
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(l.Addr().String())
		ls := []net.Listener{l}
		ok := true
		for _, h := range hosts[1:] {
			l2, err := net.Listen("tcp", net.JoinHostPort(h, port))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l2)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no port free on all of", hosts)
	return ""
}

// TestEcho: Echo fans out like Run; the reply is the target's stdout.
func TestEcho(t *testing.T) {
	srvs, dial := fleetOf(t, 3, testenv.Options{})
	ts := append(targetsOf(srvs), fleet.Target{Name: "closed", Addr: testenv.ClosedPort(t)})
	rec := newRecorder()
	ctx := context.Background()
	results := fleet.Echo(ctx, ts, "hello", true, rec, fleet.Options{Dial: dial.Dial})
	for _, r := range results[:3] {
		if r.Class != fleet.OK || rec.out[r.Target.Name].String() != "HELLO\n" {
			t.Errorf("%s: %s %v %q", r.Target.Name, r.Class, r.Err, rec.out[r.Target.Name])
		}
	}
	if results[3].Class != fleet.Unreachable || fleet.ExitStatus(ctx, results) != 255 {
		t.Errorf("closed: %s; exit %d", results[3].Class, fleet.ExitStatus(ctx, results))
	}
}
