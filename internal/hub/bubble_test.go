package hub

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/token"
)

// Tests of time (heartbeats, expiry, lifetimes) run in a testing/synctest
// bubble, where the time package's clock, the hub's one clock, is fake: it
// advances only when every goroutine of the bubble is blocked, straight to
// the next timer. They are exact and take no real time. A bubble cannot use
// real sockets, so newBubbleHub serves the hub over net.Pipe connections.

// bubbleHost is the host of bubble hubs; nothing resolves it, the client
// dials the in-memory listener whatever the address.
const bubbleHost = "hub.test"

// pipeListener is an in-memory net.Listener: each dial hands the server end
// of a net.Pipe to Accept.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial is the client's DialContext.
func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
	case <-ctx.Done():
	}
	_ = client.Close()
	_ = server.Close()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, net.ErrClosed
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return bubbleHost }

// newBubbleHub is newTestHub for a synctest bubble: call it inside
// synctest.Test. The hub runs on an http.Server on a pipeListener, and
// th.client reaches it; every helper that takes a testHub uses that client.
func newBubbleHub(t *testing.T, mod func(*Config)) *testHub {
	t.Helper()
	v, err := token.NewVerifier(token.VerifierConfig{Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Store = history.NewMemory(history.Retention{}, nil)
	cfg.PublisherVerifier, cfg.SubscriberVerifier = v, v
	cfg.ResourceIdentifier = "http://" + bubbleHost + Path
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln := newPipeListener()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	tr := &http.Transport{DialContext: ln.dial}
	th := &testHub{h: h, url: "http://" + bubbleHost + Path, store: cfg.Store, client: &http.Client{Transport: tr}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		_ = srv.Close()
		<-served
		tr.CloseIdleConnections()
		_ = h.Close()
		_ = cfg.Store.Close()
	})
	return th
}
