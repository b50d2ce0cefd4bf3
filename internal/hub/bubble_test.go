package hub

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/memnet"
)

// Tests of time (heartbeats, expiry, lifetimes) run in a testing/synctest
// bubble, where the time package's clock, the hub's one clock, is fake: it
// advances only when every goroutine of the bubble is blocked, straight to
// the next timer. They are exact and take no real time. A bubble cannot use
// real sockets, so newBubbleHub serves the hub on a memnet.Listener.

// bubbleHost is the host of bubble hubs; nothing resolves it, the client
// dials the in-memory listener whatever the address.
const bubbleHost = "hub.test"

// newBubbleHub is newTestHub for a synctest bubble: call it inside
// synctest.Test. The hub runs on an http.Server on a memnet.Listener, and
// th.client reaches it; every helper that takes a testHub uses that client.
func newBubbleHub(t *testing.T, mod func(*Config)) *testHub {
	t.Helper()
	cfg := newTestConfig(t, "http://"+bubbleHost+Path)
	// A parked stream waits in the kernel's poller, where the bubble cannot
	// see it: bubble streams keep their goroutine.
	cfg.ParkIdle = false
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln := memnet.Listen(bubbleHost)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	tr := ln.Transport()
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
