package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/rexec/rexec/client"
	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/internal/bench"
	"github.com/rexec/rexec/internal/testenv"
	"github.com/rexec/rexec/rawsock"
)

// scrape is one scrape of a metrics listener, parsed by Prometheus's own
// text parser.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, addr string) scrape {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	return fams
}

// value is the counter's, gauge's or histogram's (sample count) value of
// the series of name with exactly labels ("k=v,k=v"), or -1 when there is
// no such series.
func (s scrape) value(name, labels string) float64 {
	f := s[name]
	if f == nil {
		return -1
	}
	for _, m := range f.GetMetric() {
		var got []string
		for _, l := range m.GetLabel() {
			got = append(got, l.GetName()+"="+l.GetValue())
		}
		sort.Strings(got)
		want := strings.Split(labels, ",")
		if labels == "" {
			want = nil
		}
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// series lists name's series with their values, for failure messages.
func (s scrape) series(name string) string {
	var b strings.Builder
	for _, m := range s[name].GetMetric() {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		v := m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		fmt.Fprintf(&b, "\n  {%s} %v", strings.Join(ls, ","), v)
	}
	return b.String()
}

func (s scrape) expect(t *testing.T, name, labels string, want float64) {
	t.Helper()
	if got := s.value(name, labels); got != want {
		t.Errorf("%s{%s} = %v, want %v; the scrape has:%s", name, labels, got, want, s.series(name))
	}
}

// TestMetricsScrape runs the real rexecd with --metrics-listen, makes known
// calls over gRPC and the raw transport — commands that succeed, fail, are
// not found, time out and are cancelled, auth failures of both transports, a
// refusal at --max-concurrent on each — and checks every count in the
// scrape, parsed by Prometheus's own parser.
func TestMetricsScrape(t *testing.T) {
	t.Parallel()
	bin := binaries(t)
	addrFile := filepath.Join(t.TempDir(), "metrics-addr")
	d, err := bench.StartDaemon(context.Background(), bin, "--max-concurrent", "1",
		"--metrics-listen", "127.0.0.1:0", "--metrics-addr-file", addrFile)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	b, err := os.ReadFile(addrFile)
	if err != nil {
		t.Fatal(err)
	}
	maddr := string(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	before := scrapeMetrics(t, maddr)
	before.expect(t, "rexec_commands_started_total", "transport=grpc", 0)
	before.expect(t, "rexec_commands_limit", "", 1)
	if ms := before["rexec_build_info"].GetMetric(); len(ms) != 1 || ms[0].GetGauge().GetValue() != 1 {
		t.Errorf("rexec_build_info: want one series at 1:%s", before.series("rexec_build_info"))
	}

	c, err := d.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	run := func(req *rexecv1.RunRequest) *rexecv1.Exited {
		t.Helper()
		e, err := c.Run(ctx, req, io.Discard, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", req, err)
		}
		return e
	}
	if e := run(&rexecv1.RunRequest{Shell: "printf abc; printf de >&2; exit 3"}); e.GetExitCode() != 3 {
		t.Fatalf("exit %d, want 3", e.GetExitCode())
	}
	if e := run(&rexecv1.RunRequest{Argv: []string{"/no/such/program"}}); e.GetExitCode() != 127 {
		t.Fatalf("exit %d, want 127", e.GetExitCode())
	}
	if e := run(&rexecv1.RunRequest{Shell: "sleep 30", Timeout: durationpb.New(300 * time.Millisecond)}); !e.GetTimedOut() {
		t.Fatalf("sleep 30 with a 300ms timeout: %v", e)
	}

	raw, err := rawsock.Dial(ctx, d.RawAddr, d.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if e, err := raw.Run(ctx, &rexecv1.RunRequest{Shell: "echo raw"}, io.Discard, io.Discard); err != nil || e.GetExitCode() != 0 {
		t.Fatalf("raw echo raw: %v %v", e, err)
	}

	// Auth failures: a key id the server does not have, and its key id with
	// another secret; over gRPC and in the raw handshake.
	unknown, _ := interceptors.GenerateKey("nobody")
	forged, _ := interceptors.GenerateKey(d.Key.ID)
	for _, k := range []*interceptors.Key{unknown, forged} {
		bad, err := client.New(d.Addr, client.WithKey(k))
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.Run(ctx, &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard)
		bad.Close()
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("Run with key %s: %v, want Unauthenticated", k.ID, err)
		}
		if rc, err := rawsock.Dial(ctx, d.RawAddr, k); err == nil {
			rc.Close()
			t.Fatalf("raw handshake with key %s succeeded", k.ID)
		}
	}

	// The one slot taken: the next command is refused on both transports.
	hold, hcancel := context.WithCancel(ctx)
	defer hcancel()
	testenv.StartRun(t, hold, c.Exec(), &rexecv1.RunRequest{Shell: "sleep 300"})
	if _, err := c.Run(ctx, &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a second command at --max-concurrent 1: %v, want ResourceExhausted", err)
	}
	var rerr *rawsock.Error
	if _, err := raw.Run(ctx, &rexecv1.RunRequest{Shell: "true"}, io.Discard, io.Discard); !errors.As(err, &rerr) || rerr.Code != rawsock.CodeResourceExhausted {
		t.Fatalf("a raw command at --max-concurrent 1: %v, want ResourceExhausted", err)
	}
	during := scrapeMetrics(t, maddr)
	during.expect(t, "rexec_commands_running", "transport=grpc", 1)
	during.expect(t, "rexec_commands_running", "transport=raw", 0)
	hcancel()
	var s scrape
	waitFor(t, "the cancelled call's end in the metrics", func() bool {
		s = scrapeMetrics(t, maddr)
		return s.value("grpc_server_handled_total", "grpc_code=Canceled,grpc_method=Run,grpc_service=rexec.v1.ExecService,grpc_type=server_stream") == 1
	})

	s.expect(t, "rexec_commands_started_total", "transport=grpc", 4)
	s.expect(t, "rexec_commands_started_total", "transport=raw", 1)
	s.expect(t, "rexec_commands_running", "transport=grpc", 0)
	s.expect(t, "rexec_commands_ended_total", "transport=grpc,reason=exited,exit_class=failure", 1)
	s.expect(t, "rexec_commands_ended_total", "transport=grpc,reason=exited,exit_class=not_found", 1)
	s.expect(t, "rexec_commands_ended_total", "transport=grpc,reason=timeout,exit_class=signal", 1)
	s.expect(t, "rexec_commands_ended_total", "transport=grpc,reason=cancelled,exit_class=signal", 1)
	s.expect(t, "rexec_commands_ended_total", "transport=raw,reason=exited,exit_class=success", 1)
	if n := len(s["rexec_commands_ended_total"].GetMetric()); n != 5 {
		t.Errorf("rexec_commands_ended_total has %d series, want the 5 above:%s", n, s.series("rexec_commands_ended_total"))
	}
	s.expect(t, "rexec_command_duration_seconds", "transport=grpc", 4)
	s.expect(t, "rexec_command_duration_seconds", "transport=raw", 1)
	s.expect(t, "rexec_output_bytes_total", "transport=grpc,stream=stdout", 3)
	// stderr: "de", and the shell's line for the program it could not find.
	if v := s.value("rexec_output_bytes_total", "transport=grpc,stream=stderr"); v <= 2 {
		t.Errorf("grpc stderr bytes %v, want 2 plus the not-found message", v)
	}
	s.expect(t, "rexec_output_bytes_total", "transport=raw,stream=stdout", 4)
	s.expect(t, "rexec_output_bytes_total", "transport=raw,stream=stderr", 0)
	s.expect(t, "rexec_commands_refused_total", "transport=grpc,reason=concurrency_limit", 1)
	s.expect(t, "rexec_commands_refused_total", "transport=raw,reason=concurrency_limit", 1)
	s.expect(t, "rexec_auth_failures_total", "transport=grpc,reason=unknown_key", 1)
	s.expect(t, "rexec_auth_failures_total", "transport=grpc,reason=bad_signature", 1)
	s.expect(t, "rexec_auth_failures_total", "transport=raw,reason=unknown_key", 1)
	s.expect(t, "rexec_auth_failures_total", "transport=raw,reason=bad_signature", 1)
	s.expect(t, "rexec_raw_handshakes_total", "result=ok,reason=", 1)
	s.expect(t, "rexec_raw_handshakes_total", "result=refused,reason=unknown_key", 1)
	s.expect(t, "rexec_raw_handshakes_total", "result=refused,reason=bad_signature", 1)

	run4 := "grpc_method=Run,grpc_service=rexec.v1.ExecService,grpc_type=server_stream"
	s.expect(t, "grpc_server_started_total", run4, 7)
	s.expect(t, "grpc_server_handled_total", "grpc_code=OK,"+run4, 3)
	s.expect(t, "grpc_server_handled_total", "grpc_code=Unauthenticated,"+run4, 2)
	s.expect(t, "grpc_server_handled_total", "grpc_code=ResourceExhausted,"+run4, 1)
	s.expect(t, "grpc_server_handling_seconds", run4, 7)
}

// TestPprofOptIn runs the real rexecd with and without --pprof: the
// runtime's profiles are on the metrics listener only when asked for.
func TestPprofOptIn(t *testing.T) {
	t.Parallel()
	bin := binaries(t)
	get := func(addr, path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	for _, on := range []bool{false, true} {
		addrFile := filepath.Join(t.TempDir(), "metrics-addr")
		flags := []string{"--metrics-listen", "127.0.0.1:0", "--metrics-addr-file", addrFile}
		if on {
			flags = append(flags, "--pprof")
		}
		d, err := bench.StartDaemon(context.Background(), bin, flags...)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(addrFile)
		if err != nil {
			d.Stop()
			t.Fatal(err)
		}
		addr := string(b)
		code, body := get(addr, "/debug/pprof/heap?debug=1")
		switch {
		case on && (code != http.StatusOK || !strings.HasPrefix(body, "heap profile:") || !strings.Contains(body, "# HeapInuse = ")):
			t.Errorf("--pprof: GET /debug/pprof/heap?debug=1: %d %.200q, want 200 and a heap profile", code, body)
		case !on && code != http.StatusNotFound:
			t.Errorf("no --pprof: GET /debug/pprof/heap?debug=1: %d, want 404", code)
		}
		if code, body := get(addr, "/debug/pprof/goroutine?debug=1"); on && (code != http.StatusOK || !strings.Contains(body, "goroutine profile:")) {
			t.Errorf("--pprof: GET /debug/pprof/goroutine?debug=1: %d %.200q", code, body)
		}
		if code, _ := get(addr, "/metrics"); code != http.StatusOK {
			t.Errorf("--pprof=%v: GET /metrics: %d", on, code)
		}
		d.Stop()
	}
}
