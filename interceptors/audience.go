package interceptors

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// audience decides which :authority values name this server: the rules of
// Call.Authority. Tokens sign the authority, so a server that accepts only
// its own refuses the tokens another server received.
type audience struct {
	// names without a port match any port; with one, only that port.
	anyPort  map[string]bool
	withPort map[string]bool
	hostname string
}

func newAudience(names []string, hostname string) audience {
	a := audience{anyPort: map[string]bool{}, withPort: map[string]bool{}}
	for _, n := range names {
		if host, port, err := net.SplitHostPort(n); err == nil {
			a.withPort[strings.ToLower(host)+":"+port] = true
		} else {
			a.anyPort[strings.ToLower(strings.Trim(n, "[]"))] = true
		}
	}
	if hostname != "-" {
		a.hostname = strings.ToLower(strings.TrimSuffix(hostname, "."))
	}
	return a
}

// CheckName says whether name can be a VerifierOptions.Names entry: a host
// name or IP, with or without a port.
func CheckName(name string) error {
	host, port, err := net.SplitHostPort(name)
	if err != nil {
		host, port = strings.Trim(name, "[]"), ""
	}
	if port != "" {
		if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
			return fmt.Errorf("name %q: port %q is not a number from 1 to 65535", name, port)
		}
	}
	if host == "" || strings.ContainsAny(host, " /@,;") {
		return fmt.Errorf("name %q is not HOST or HOST:PORT", name)
	}
	return nil
}

func (a *audience) check(authority string, local net.Addr) error {
	if authority == "" {
		return fmt.Errorf("the call has no :authority")
	}
	host, port, err := net.SplitHostPort(authority)
	if err != nil {
		host, port = strings.Trim(authority, "[]"), ""
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if a.anyPort[host] || (port != "" && len(a.withPort) > 0 && a.withPort[host+":"+port]) {
		return nil
	}
	tcp, ok := local.(*net.TCPAddr)
	if !ok {
		return fmt.Errorf(":authority %q is none of the --name values, and the connection's local address (%v) is not TCP", authority, local)
	}
	self := tcp.AddrPort()
	if port != strconv.Itoa(int(self.Port())) {
		return fmt.Errorf(":authority %q does not give this server's port %d (a port mapping needs --name)", authority, self.Port())
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.WithZone("").Unmap() == self.Addr().WithZone("").Unmap() {
			return nil
		}
		return fmt.Errorf(":authority %q is not the address %s the client reached", authority, self.Addr().Unmap())
	}
	switch {
	case host == "localhost" && self.Addr().Unmap().IsLoopback():
		return nil
	case host == "localhost":
		return fmt.Errorf(":authority %q names localhost, and the call came to %s", authority, self.Addr().Unmap())
	case a.hostname != "" && host == a.hostname:
		return nil
	}
	return fmt.Errorf(":authority %q is not this server's address (%s), its host name %q or a --name", authority, self.Addr().Unmap(), a.hostname)
}
