package bench_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
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

// benchKey signs the tokens of the test hubs.
var benchKey = []byte("bench-test-key-bench-test-key-32")

// startHub serves a hub with a memory store on 127.0.0.1 and returns its
// URL, which is also its pinned resource identifier.
func startHub(t *testing.T) string {
	t.Helper()
	v, err := token.NewVerifier(token.VerifierConfig{Key: benchKey})
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
	t.Cleanup(func() {
		_ = h.Shutdown(context.Background())
		srv.CloseClientConnections()
		srv.Close()
		_ = h.Close()
		_ = store.Close()
	})
	return cfg.ResourceIdentifier
}

func TestRunAgainstHub(t *testing.T) {
	t.Parallel()
	key, hubURL := benchKey, startHub(t)
	tok, err := token.Mint(token.MintOptions{Key: key, Publish: []string{"*"}, Subscribe: []string{"*"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// One topic: every update is a broadcast to every subscriber.
	res, err := bench.Run(t.Context(), bench.Options{
		HubURL: hubURL, PublisherToken: tok, SubscriberToken: tok,
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

// With --duration, the publishes in flight at the deadline are waited for
// and counted: every update the hub accepted is in Published, and the
// deliveries match what was expected (no "delivered 49956 of 49948").
// The live status line is written while the run goes on, then cleared.
func TestRunDurationCountsInFlightPublishes(t *testing.T) {
	t.Parallel()
	var accepted atomic.Uint64
	base := bench.NewBaseline()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			time.Sleep(30 * time.Millisecond) // publishes are in flight at any deadline
			rec := httptest.NewRecorder()
			base.ServeHTTP(rec, r)
			if rec.Code == http.StatusOK {
				accepted.Add(1)
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		base.ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer srv.CloseClientConnections()
	// Run returns after the live line's goroutine has ended: a plain
	// buffer is safe to read then.
	var live bytes.Buffer
	res, err := bench.Run(t.Context(), bench.Options{
		HubURL: srv.URL, PublisherToken: "x", Subscribers: 20, Topics: 5, Publishers: 8,
		Duration: 200 * time.Millisecond, Drain: 2 * time.Second, Live: &live, LiveInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Published == 0 || res.Published != accepted.Load() || res.Delivered != res.Expected || res.Failed != 0 {
		t.Fatalf("published %d (%d failed), the hub accepted %d; delivered %d of %d", res.Published, res.Failed, accepted.Load(), res.Delivered, res.Expected)
	}
	out := live.String()
	if !strings.Contains(out, "\r\x1b[Kbench: published ") || !strings.HasSuffix(out, "\r\x1b[K") {
		t.Fatalf("live line %q", out)
	}
}
func TestRunWithTemplatesAndURLPatterns(t *testing.T) {
	t.Parallel()
	key, hubURL := benchKey, startHub(t)
	legacy, err := token.Mint(token.MintOptions{Key: key, Publish: []string{"*"}, Subscribe: []string{"*"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	access, err := token.Mint(token.MintOptions{Format: token.FormatAccessToken, Key: key, Subscribe: []string{"*"}, TTL: time.Hour, Audience: hubURL})
	if err != nil {
		t.Fatal(err)
	}
	for _, sel := range []string{bench.SelectTemplate, bench.SelectURLPattern} {
		for _, topics := range []int{0, 1} { // one selector each, then one shared by all
			sub := legacy
			if sel == bench.SelectURLPattern {
				sub = access
			}
			res, err := bench.Run(t.Context(), bench.Options{
				HubURL: hubURL, PublisherToken: legacy, SubscriberToken: sub, Selector: sel,
				Subscribers: 20, Topics: topics, Publishers: 2, Updates: 40, Drain: 2 * time.Second,
			})
			if err != nil {
				t.Fatalf("%s, %d topics: %v", sel, topics, err)
			}
			want := uint64(40)
			if topics == 1 {
				want = 40 * 20
			}
			if res.Failed != 0 || res.Expected != want || res.Delivered != want {
				t.Errorf("%s, %d topics: result %+v, want %d deliveries", sel, topics, res, want)
			}
		}
	}
	if _, err := bench.Run(t.Context(), bench.Options{HubURL: hubURL, Selector: "regexp"}); !errors.Is(err, bench.ErrSelector) {
		t.Errorf("unknown selector kind: %v", err)
	}
}
