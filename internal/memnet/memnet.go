// Package memnet is an in-memory network for tests that run in a
// testing/synctest bubble. A bubble cannot use real sockets (their I/O
// happens outside it, and time would not wait for it), so a server listens
// on a Listener and its clients dial that Listener: each connection is a
// net.Pipe, whose reads, writes and deadlines follow the bubble's clock.
// It is test support: only tests import it.
package memnet

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// Listener is an in-memory net.Listener: each dial hands the server end of a
// net.Pipe to Accept. Create it inside the bubble that uses it.
type Listener struct {
	addr   Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

var _ net.Listener = (*Listener)(nil)

// Listen returns a Listener whose Addr is addr (a host:port or a host that
// nothing resolves: dials reach the Listener whatever the address).
func Listen(addr string) *Listener {
	return &Listener{addr: Addr(addr), conns: make(chan net.Conn), closed: make(chan struct{})}
}

// Accept waits for a dial, or for Close.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops Accept and refuses new dials; open connections stay open.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr returns the address Listen was given.
func (l *Listener) Addr() net.Addr { return l.addr }

// DialContext connects to the Listener, whatever network and address say; it
// has the signature of net.Dialer.DialContext and http.Transport.DialContext.
func (l *Listener) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
	case <-ctx.Done():
	}
	_ = client.Close()
	_ = server.Close()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, &net.OpError{Op: "dial", Net: "memnet", Addr: l.addr, Err: net.ErrClosed}
}

// Transport returns an HTTP transport whose connections all go to l. Close
// its idle connections before the bubble ends.
func (l *Listener) Transport() *http.Transport {
	return &http.Transport{DialContext: l.DialContext}
}

// Addr is the address of a Listener.
type Addr string

// Network returns "memnet".
func (Addr) Network() string { return "memnet" }

func (a Addr) String() string { return string(a) }
