package rawserver

import (
	"container/list"
	"net"
	"sync"
)

// handshakeTable holds the connections still in their handshake, oldest
// first. It is bounded, in all and per source host, and a new connection
// never waits for room: it evicts the oldest entry (of its own host, when
// that host is at its bound), whose connection is closed. A peer that opens
// idle connections only pushes out its own (or, from many hosts, the oldest
// ones), and a client that answers the challenge promptly is served however
// many idle connections are open.
type handshakeTable struct {
	max, perHost int

	mu      sync.Mutex
	order   list.List // of *pending, oldest at the front
	perAddr map[string]int
	evicted uint64
}

// pending is one connection in its handshake.
type pending struct {
	nc      net.Conn
	host    string
	el      *list.Element
	evicted bool // under the table's mu
}

func newHandshakeTable(max, perHost int) *handshakeTable {
	return &handshakeTable{max: max, perHost: perHost, perAddr: map[string]int{}}
}

// add enters nc, and returns the entry that had to make room for it, if
// any: the caller closes its connection.
func (t *handshakeTable) add(nc net.Conn) (p, victim *pending) {
	p = &pending{nc: nc, host: hostOf(nc.RemoteAddr())}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.perAddr[p.host] >= t.perHost:
		for el := t.order.Front(); el != nil; el = el.Next() {
			if q := el.Value.(*pending); q.host == p.host {
				victim = q
				break
			}
		}
	case t.order.Len() >= t.max:
		victim = t.order.Front().Value.(*pending)
	}
	if victim != nil {
		t.removeLocked(victim)
		victim.evicted = true
		t.evicted++
	}
	p.el = t.order.PushBack(p)
	t.perAddr[p.host]++
	return p, victim
}

// remove takes p out at the end of its handshake; it reports whether p had
// been evicted, and how many entries have been evicted in all.
func (t *handshakeTable) remove(p *pending) (evicted bool, total uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !p.evicted {
		t.removeLocked(p)
	}
	return p.evicted, t.evicted
}

func (t *handshakeTable) removeLocked(p *pending) {
	t.order.Remove(p.el)
	if t.perAddr[p.host]--; t.perAddr[p.host] == 0 {
		delete(t.perAddr, p.host)
	}
}

// hostOf is the source a connection is counted against: its IPv4 address,
// or the /64 of its IPv6 address (one host commonly holds a whole /64).
func hostOf(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if ip4 := ta.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return ta.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
