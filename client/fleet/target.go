package fleet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/rexec/rexec/client/config"
	"github.com/rexec/rexec/client/hostset"
)

// MaxTargets bounds one run's targets, checked as they are resolved.
const MaxTargets = 100_000

// Target is one server of a fleet run.
type Target struct {
	// Name is the target as the user wrote it (after range expansion): what
	// its output lines are prefixed with, its file names and its records.
	// A target from dns:/// is named by the address it resolved to.
	Name string
	// Addr is the HOST:PORT dialed.
	Addr string
	// ServerName, when set, is the name the server's TLS certificate must
	// have: the NAME of dns:///NAME:PORT, or a host's tls_server_name.
	ServerName string
	// Host is the config file's entry that named the target, or nil.
	Host *config.Host
}

// Resolver turns target specs into targets.
type Resolver struct {
	// Config gives named hosts, groups and the default port; nil is an
	// empty file.
	Config *config.File
	// DNS resolves dns:/// targets. By default net.DefaultResolver.
	DNS *net.Resolver
}

// Resolve expands specs — each a comma list of host[:port] patterns
// (node[01-20]:50051), config host names, @groups and dns:///NAME[:PORT] —
// and the lines of hostsFiles into targets, in order, each address once.
func (r *Resolver) Resolve(ctx context.Context, specs, hostsFiles []string) ([]Target, error) {
	for _, f := range hostsFiles {
		lines, err := ReadHostsFile(f)
		if err != nil {
			return nil, err
		}
		specs = append(slices.Clone(specs), lines...)
	}
	st := &resolveState{r: r, seen: map[string]bool{}}
	for _, spec := range specs {
		for _, item := range hostset.Split(spec) {
			if err := st.item(ctx, item, nil); err != nil {
				return nil, err
			}
		}
	}
	if len(st.out) == 0 {
		return nil, errors.New("no targets: give -H HOST[,HOST…] or --hosts-file FILE")
	}
	return st.out, nil
}

type resolveState struct {
	r    *Resolver
	seen map[string]bool // addresses
	out  []Target
}

func (st *resolveState) port() int {
	if st.r.Config != nil && st.r.Config.Port != 0 {
		return st.r.Config.Port
	}
	return config.DefaultPort
}

func (st *resolveState) add(t Target) error {
	if st.seen[t.Addr] {
		return nil
	}
	if len(st.out) >= MaxTargets {
		return fmt.Errorf("more than %d targets", MaxTargets)
	}
	st.seen[t.Addr] = true
	st.out = append(st.out, t)
	return nil
}

// item resolves one item of a comma list; groups are the @groups being
// expanded around it, to refuse a cycle.
func (st *resolveState) item(ctx context.Context, item string, groups []string) error {
	switch {
	case strings.HasPrefix(item, "@"):
		name := item[1:]
		if slices.Contains(groups, name) {
			return fmt.Errorf("group @%s contains itself (%s)", name, strings.Join(append(groups, name), " → @"))
		}
		var members []string
		if st.r.Config != nil {
			members = st.r.Config.Groups[name]
		}
		if members == nil {
			return fmt.Errorf("no group @%s in the config file (%s)", name, st.configPath())
		}
		for _, m := range members {
			for _, sub := range hostset.Split(m) {
				if err := st.item(ctx, sub, append(groups, name)); err != nil {
					return err
				}
			}
		}
		return nil
	case strings.HasPrefix(item, "dns:"):
		return st.dns(ctx, item)
	}
	names, err := hostset.Expand(item)
	if err != nil {
		return err
	}
	for _, n := range names {
		t, err := st.named(n)
		if err != nil {
			return err
		}
		if err := st.add(t); err != nil {
			return err
		}
	}
	return nil
}

func (st *resolveState) configPath() string {
	if st.r.Config == nil || st.r.Config.Path == "" {
		return "none read: ~/.config/rexec/config or $REXEC_CONFIG"
	}
	return st.r.Config.Path
}

// named is the target of one name: a config host, or HOST[:PORT].
func (st *resolveState) named(name string) (Target, error) {
	if h := st.r.Config.Host(name); h != nil {
		addr, err := WithPort(h.Address, st.port())
		if err != nil {
			return Target{}, fmt.Errorf("host %s of %s: %w", name, st.configPath(), err)
		}
		return Target{Name: name, Addr: addr, ServerName: h.TLSServerName, Host: h}, nil
	}
	addr, err := WithPort(name, st.port())
	if err != nil {
		return Target{}, err
	}
	return Target{Name: name, Addr: addr}, nil
}

// dns expands dns:///NAME[:PORT] to every A and AAAA record of NAME, as a
// headless Kubernetes Service names the pods behind it. (gRPC's own dns:///
// resolver balances calls over the records; a fleet run wants each.)
func (st *resolveState) dns(ctx context.Context, item string) error {
	rest, ok := strings.CutPrefix(item, "dns:///")
	if !ok {
		return fmt.Errorf("%q: write dns:///NAME:PORT (a DNS server of your own, dns://SERVER/NAME, is not supported)", item)
	}
	host, portText, err := net.SplitHostPort(rest)
	if err != nil {
		host, portText = rest, strconv.Itoa(st.port())
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 || host == "" {
		return fmt.Errorf("%q: write dns:///NAME:PORT", item)
	}
	res := st.r.DNS
	if res == nil {
		res = net.DefaultResolver
	}
	ips, err := res.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("%s: %w", item, err)
	}
	if len(ips) == 0 {
		return fmt.Errorf("%s: %s has no A or AAAA record", item, host)
	}
	// DNS servers rotate their answers; the same fleet should print in the
	// same order.
	slices.SortFunc(ips, func(a, b netip.Addr) int { return a.Unmap().Compare(b.Unmap()) })
	for _, ip := range slices.Compact(ips) {
		addr := netip.AddrPortFrom(ip.Unmap(), uint16(port)).String()
		if err := st.add(Target{Name: addr, Addr: addr, ServerName: host}); err != nil {
			return err
		}
	}
	return nil
}

// WithPort returns addr (HOST or HOST:PORT; an IPv6 address bare or in
// brackets) as HOST:PORT, with port when it has none.
func WithPort(addr string, port int) (string, error) {
	if host, p, err := net.SplitHostPort(addr); err == nil {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return "", fmt.Errorf("target %q: port %q is not a number from 1 to 65535", addr, p)
		}
		if host == "" {
			return "", fmt.Errorf("target %q has no host", addr)
		}
		return addr, nil
	}
	host := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	if host == "" || strings.ContainsAny(host, "[]/ @") {
		return "", fmt.Errorf("target %q is not HOST[:PORT]", addr)
	}
	if strings.Contains(host, ":") {
		if _, err := netip.ParseAddr(host); err != nil {
			return "", fmt.Errorf("target %q is not HOST[:PORT] (an IPv6 address goes in brackets: [::1]:50051)", addr)
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// MaxHostsFile bounds a hosts file.
const MaxHostsFile = 16 << 20

// ReadHostsFile returns the targets of a hosts file: one a line (a line may
// be any -H value: a pattern, a comma list, an @group, dns:///…); blank
// lines and what follows a # are ignored.
func ReadHostsFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--hosts-file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > MaxHostsFile {
		return nil, fmt.Errorf("--hosts-file %s is %d bytes, over %d", path, fi.Size(), MaxHostsFile)
	}
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--hosts-file %s: %w", path, err)
	}
	return out, nil
}
