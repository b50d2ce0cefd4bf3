package conformance

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/hub"
	"github.com/mercurectl/mercurectl/internal/token"
)

// testKey signs the tokens of the tests' hubs.
const testKey = "conformance-test-secret-0123456789abcdef"

// testOrigin is the CORS origin the tests' hubs allow.
const testOrigin = "https://app.conformance.test"

// testHub is one of our hubs for the tests, over real HTTP.
type testHub struct {
	url   string
	store history.Store
	srv   *httptest.Server
}

// hubOptions tunes startHub.
type hubOptions struct {
	historySize uint64
	draft08Only bool
}

// startHub starts our hub with every optional feature on: anonymous
// subscribers, subscriptions API, CORS for testOrigin, a 1 s heartbeat.
func startHub(tb testing.TB, o hubOptions) *testHub {
	tb.Helper()
	v, err := token.NewVerifier(token.VerifierConfig{Key: []byte(testKey)})
	if err != nil {
		tb.Fatal(err)
	}
	store := history.NewMemory(history.Retention{MaxUpdates: o.historySize}, nil)
	srv := httptest.NewUnstartedServer(nil)
	cfg := hub.DefaultConfig()
	cfg.Store = store
	cfg.PublisherVerifier, cfg.SubscriberVerifier = v, v
	// Pinned as serve pins it: the URL of the listen address.
	cfg.ResourceIdentifier = "http://" + srv.Listener.Addr().String() + hub.Path
	cfg.Anonymous, cfg.Subscriptions = true, true
	cfg.CORSOrigins = []string{testOrigin}
	cfg.Heartbeat = time.Second
	cfg.Draft08Only = o.draft08Only
	h, err := hub.New(cfg)
	if err != nil {
		srv.Close()
		tb.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		srv.Close()
		_ = h.Close()
		_ = store.Close()
	})
	return &testHub{url: srv.URL + hub.Path, store: store, srv: srv}
}

// scale holds the figures of the tests' runs and faults: the real ones
// (1,000-event thresholds, 1 s delivery, 2 s of buffering), crossed by a
// deep-cursor case of just 1,200 updates; under the race detector, which
// slows publishing down a hundredfold on a shared machine, scaled-down
// ones that exercise the same code.
var scale = func() struct {
	depth, longReplay, threshold int
	delivery, buffer, heartbeat  time.Duration
} {
	if raceEnabled {
		return struct {
			depth, longReplay, threshold int
			delivery, buffer, heartbeat  time.Duration
		}{300, 200, 100, 2500 * time.Millisecond, 5 * time.Second, 2 * time.Second}
	}
	return struct {
		depth, longReplay, threshold int
		delivery, buffer, heartbeat  time.Duration
	}{1200, 0, 1000, 0, 0, time.Second}
}()

// runOptions are the options of a full run against url. The timeouts are
// roomy: tests share the machine, and a timeout only matters when a case
// fails.
func runOptions(url string) Options {
	return Options{
		HubURL:        url,
		HTTPClient:    &http.Client{},
		Key:           []byte(testKey),
		Origin:        testOrigin,
		Heartbeat:     scale.heartbeat,
		HistoryDepth:  scale.depth,
		Timeout:       30 * time.Second,
		longReplay:    scale.longReplay,
		deliveryBound: scale.delivery,
	}
}

// runResults runs o and returns the results by ID.
func runResults(tb testing.TB, o Options) (map[string]Result, Summary) {
	tb.Helper()
	var mu sync.Mutex
	res := map[string]Result{}
	o.OnResult = func(r Result) {
		mu.Lock()
		defer mu.Unlock()
		res[r.Protocol+" "+r.Name] = r
	}
	sum, err := Run(tb.(interface{ Context() context.Context }).Context(), o)
	if err != nil {
		tb.Fatalf("Run: %v", err)
	}
	return res, sum
}

func TestOurHubPassesEveryCase(t *testing.T) {
	t.Parallel()
	h := startHub(t, hubOptions{})
	res, sum := runResults(t, runOptions(h.url))
	for _, r := range res {
		switch r.Status {
		case Fail:
			t.Errorf("FAIL %s %s: %s", r.Protocol, r.ID(), r.Detail)
		case Skip:
			t.Logf("SKIP %s %s: %s", r.Protocol, r.ID(), r.Detail)
		}
	}
	t.Logf("%d passed, %d failed, %d skipped in %v", sum.Passed, sum.Failed, sum.Skipped, sum.Duration)
	if sum.Passed == 0 {
		t.Fatal("no case passed")
	}
	for _, p := range []string{"draft-07 ", "draft-08 "} {
		found := false
		for id := range res {
			if strings.HasPrefix(id, p) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %scase ran", p)
		}
	}
}

// The deep-cursor case at its default depth: a cursor 19,999 updates deep
// is found, and the whole replay arrives.
func TestOldCursorFoundAtDefaultDepth(t *testing.T) {
	t.Parallel()
	if raceEnabled || testing.Short() {
		t.Skip("publishes 20,000 updates: skipped under -race and -short")
	}
	h := startHub(t, hubOptions{})
	o := runOptions(h.url)
	o.HistoryDepth = 0 // the default
	o.Run = regexp.MustCompile(`^beyond/old-cursor-found `)
	res, sum := runResults(t, o)
	if r := res["draft-08 beyond/old-cursor-found"]; r.Status != Pass || sum.Passed != 1 {
		t.Fatalf("%s: %s; summary %+v", r.Status, r.Detail, sum)
	}
}

// A hub whose history is smaller than the depth: the deep-cursor case is
// skipped, and says why; so is the long replay.
func TestSmallHistorySkipsTheDeepCases(t *testing.T) {
	t.Parallel()
	h := startHub(t, hubOptions{historySize: uint64(scale.depth / 4)})
	o := runOptions(h.url)
	o.Run = regexp.MustCompile(`^beyond/(old-cursor-found|replay-over-1000-events) `)
	res, _ := runResults(t, o)
	for _, name := range []string{"draft-08 beyond/old-cursor-found", "draft-08 beyond/replay-over-1000-events"} {
		r := res[name]
		if r.Status != Skip || !strings.Contains(r.Detail, "the hub's history does not hold the update published") {
			t.Errorf("%s: %s (%s), want a skip that says the history is too small", name, r.Status, r.Detail)
		}
	}
}
