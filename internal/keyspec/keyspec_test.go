package keyspec

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"

	rexecv1 "github.com/rexec/rexec/gen/rexec/v1"
	"github.com/rexec/rexec/interceptors"
	"github.com/rexec/rexec/runner"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestApply(t *testing.T) {
	key := &interceptors.Key{ID: "ci", User: "alice", Max: 3,
		Limits: interceptors.Limits{Memory: 512 << 20, Pids: 100, MilliCPU: 1500}}
	cases := []struct {
		name  string
		key   *interceptors.Key
		req   *rexecv1.Limits
		want  runner.Limits
		field string // the error's, when it must fail
		says  string
	}{
		{"key's limits when the request has none", key, nil, runner.Limits{Memory: 512 << 20, Pids: 100, MilliCPU: 1500}, "", ""},
		{"lower is fine", key, &rexecv1.Limits{MemoryBytes: 64 << 20, Pids: 10, Nofile: 64}, runner.Limits{Memory: 64 << 20, Pids: 10, MilliCPU: 1500, NoFile: 64}, "", ""},
		{"equal is fine", key, &rexecv1.Limits{MilliCpu: 1500}, runner.Limits{Memory: 512 << 20, Pids: 100, MilliCPU: 1500}, "", ""},
		{"over the key's memory", key, &rexecv1.Limits{MemoryBytes: 1 << 30}, runner.Limits{}, "limits.memory_bytes", "over the key's limit, memory=512M"},
		{"over the key's cpu", key, &rexecv1.Limits{MilliCpu: 2000}, runner.Limits{}, "limits.milli_cpu", "cpu=1.5"},
		{"too large", key, &rexecv1.Limits{FsizeBytes: 1 << 63}, runner.Limits{}, "limits.fsize_bytes", "too large"},
		{"no key: the request's own", nil, &rexecv1.Limits{Pids: 7}, runner.Limits{Pids: 7}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var spec runner.Spec
			err := Apply(&spec, c.key, c.req)
			if c.field != "" {
				var fe *runner.FieldError
				if !errors.As(err, &fe) || fe.Field != c.field || fe.Precondition || !strings.Contains(fe.Problem, c.says) {
					t.Fatalf("err %v, want an InvalidArgument on %s saying %q", err, c.field, c.says)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if spec.Limits != c.want {
				t.Errorf("limits %+v, want %+v", spec.Limits, c.want)
			}
			if c.key != nil && (spec.User != "alice" || spec.Owner != "ci" || spec.OwnerMax != 3) {
				t.Errorf("user %q owner %q max %d", spec.User, spec.Owner, spec.OwnerMax)
			}
		})
	}
}
