// Package netfault is a loopback TCP proxy that breaks the connections it
// carries on demand — a black hole, a reset — and restores them, for tests
// and benchmarks of what rexec does when the network fails mid-stream.
//
//	p, err := netfault.Start("127.0.0.1:50051")
//	defer p.Close()
//	c, _ := client.New(p.Addr(), ...) // the client talks through the proxy
//	p.Blackhole()                      // bytes stop; the peers find out by keepalive
//	p.Reset()                          // every connection gets a TCP RST; new ones too
//	p.Restore()                        // bytes flow again
package netfault

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Mode is what the proxy does with the bytes it carries.
type Mode uint8

// The modes.
const (
	// Pass forwards bytes both ways.
	Pass Mode = iota
	// Blackhole forwards nothing: each direction holds what it has read
	// (so TCP flow control soon stops the sender) until Restore. A new
	// connection is accepted and held the same way, as a path that drops
	// every packet would hold a handshake's retries.
	Blackhole
	// Refuse resets every connection: those open get a TCP RST, new ones
	// one at once, until Restore.
	Refuse
)

// Proxy forwards connections from its own loopback port to a target.
type Proxy struct {
	lis    net.Listener
	target string

	mu      sync.Mutex
	mode    Mode
	changed chan struct{} // closed and replaced on every mode change
	conns   map[*pair]struct{}
	closed  bool
	wg      sync.WaitGroup

	accepted atomic.Int64
	bytes    atomic.Int64
}

type pair struct{ a, b *net.TCPConn }

// Start listens on 127.0.0.1:0 and forwards to target.
func Start(target string) (*Proxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{lis: lis, target: target, changed: make(chan struct{}), conns: map[*pair]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's address: dial this instead of the target.
func (p *Proxy) Addr() string { return p.lis.Addr().String() }

// Accepted counts the connections accepted so far.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Bytes counts the bytes forwarded so far, both ways.
func (p *Proxy) Bytes() int64 { return p.bytes.Load() }

// Blackhole stops all forwarding until Restore.
func (p *Proxy) Blackhole() { p.set(Blackhole) }

// Reset resets every open connection, and new ones, until Restore.
func (p *Proxy) Reset() { p.set(Refuse) }

// Restore forwards again.
func (p *Proxy) Restore() { p.set(Pass) }

func (p *Proxy) set(m Mode) {
	p.mu.Lock()
	p.mode = m
	close(p.changed)
	p.changed = make(chan struct{})
	var reset []*pair
	if m == Refuse {
		for c := range p.conns {
			reset = append(reset, c)
		}
	}
	p.mu.Unlock()
	for _, c := range reset {
		c.reset()
	}
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	var all []*pair
	for c := range p.conns {
		all = append(all, c)
	}
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	err := p.lis.Close()
	for _, c := range all {
		c.reset()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		conn, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		a := conn.(*net.TCPConn)
		p.mu.Lock()
		mode, closed := p.mode, p.closed
		p.mu.Unlock()
		if mode == Refuse || closed {
			rst(a)
			continue
		}
		p.wg.Add(1)
		go p.serve(a)
	}
}

func (p *Proxy) serve(a *net.TCPConn) {
	defer p.wg.Done()
	conn, err := net.Dial("tcp", p.target)
	if err != nil {
		rst(a)
		return
	}
	c := &pair{a: a, b: conn.(*net.TCPConn)}
	p.mu.Lock()
	if p.closed || p.mode == Refuse {
		p.mu.Unlock()
		c.reset()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	var done sync.WaitGroup
	done.Add(2)
	go func() { defer done.Done(); p.pipe(c.b, c.a, c) }()
	go func() { defer done.Done(); p.pipe(c.a, c.b, c) }()
	done.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// pipe copies from src to dst, holding each buffer while the proxy black-
// holes; an end of either side ends both.
func (p *Proxy) pipe(dst, src *net.TCPConn, c *pair) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitPass() {
				c.reset()
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				c.reset()
				return
			}
			p.bytes.Add(int64(n))
		}
		if err != nil {
			if errors.Is(err, io.EOF) && p.waitPass() {
				_ = dst.CloseWrite() // pass the half-close on, once the path passes
				return
			}
			c.reset()
			return
		}
	}
}

// waitPass waits while the proxy black-holes; false when it resets or closes.
func (p *Proxy) waitPass() bool {
	for {
		p.mu.Lock()
		mode, closed, ch := p.mode, p.closed, p.changed
		p.mu.Unlock()
		switch {
		case closed || mode == Refuse:
			return false
		case mode == Pass:
			return true
		}
		<-ch
	}
}

func (c *pair) reset() {
	rst(c.a)
	rst(c.b)
}

// rst closes conn with a TCP RST instead of a FIN.
func rst(conn *net.TCPConn) {
	_ = conn.SetLinger(0)
	_ = conn.Close()
}
