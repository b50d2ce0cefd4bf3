package bench_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/bench"
	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/hub"
	"github.com/mercurectl/mercurectl/internal/token"
)

func TestRunAgainstBaseline(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(bench.NewBaseline())
	defer srv.Close()
	defer srv.CloseClientConnections()
	res, err := bench.Run(t.Context(), bench.Options{
		HubURL: srv.URL, PublisherToken: "x", Subscribers: 40, Topics: 10, Publishers: 4, Updates: 200, Drain: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 200 || res.Expected != 200*4 || res.Delivered != res.Expected {
		t.Fatalf("result %+v", res)
	}
}

func TestRunAgainstHub(t *testing.T) {
	t.Parallel()
	key := []byte("bench-test-key-bench-test-key-32")
	v, err := token.NewVerifier(token.VerifierConfig{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	store := history.NewMemory(history.Retention{MaxUpdates: 1000}, nil)
	srv := httptest.NewUnstartedServer(nil)
	cfg := hub.DefaultConfig()
	cfg.Store, cfg.PublisherVerifier, cfg.SubscriberVerifier = store, v, v
	cfg.ResourceIdentifier = "http://" + srv.Listener.Addr().String() + hub.Path
	h, err := hub.New(cfg)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	defer func() {
		_ = h.Shutdown(context.Background())
		srv.CloseClientConnections()
		srv.Close()
		_ = h.Close()
		_ = store.Close()
	}()
	tok, err := token.Mint(token.MintOptions{Key: key, Publish: []string{"*"}, Subscribe: []string{"*"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// One topic: every update is a broadcast to every subscriber.
	res, err := bench.Run(t.Context(), bench.Options{
		HubURL: srv.URL + hub.Path, PublisherToken: tok, SubscriberToken: tok,
		Subscribers: 30, Topics: 1, Publishers: 3, Updates: 100, PayloadSize: 64, Drain: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 100 || res.Failed != 0 || res.Delivered != 100*30 {
		t.Fatalf("result %+v", res)
	}
	if res.P99 <= 0 || res.DeliveryRate() <= 0 {
		t.Fatalf("no latency measured: %+v", res)
	}
}
