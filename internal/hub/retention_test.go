package hub

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/history/redisstore"
	"github.com/mercurectl/mercurectl/internal/history/redisstore/redistest"
)

// retainedTransports opens one empty store of each kind with retention r
// (Redis where redistest finds redis-server).
func retainedTransports(r history.Retention) map[string]func(*testing.T) history.Store {
	return map[string]func(*testing.T) history.Store{
		"memory": func(*testing.T) history.Store { return history.NewMemory(r, nil) },
		"bolt": func(t *testing.T) history.Store {
			return openBolt(t, filepath.Join(t.TempDir(), "h.db"), r)
		},
		"redis": func(t *testing.T) history.Store {
			srv := redistest.Start(t, "")
			s, err := redisstore.Open(t.Context(), srv.DSN(), redisstore.Options{Retention: r})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
}

// connectAndLeave opens an anonymous draft-07 subscription to n exact topics
// and closes it as soon as the hub answers, as the flood of the issue did.
func connectAndLeave(t *testing.T, hh *histHub, cycle, n int) {
	t.Helper()
	q := make(url.Values)
	for i := range n {
		q.Add("topic", fmt.Sprintf("https://example.com/flood/%d/%d", cycle, i))
	}
	ctx, cancel := context.WithTimeout(t.Context(), histTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hh.url+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hh.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("anonymous subscription: %d", resp.StatusCode)
	}
	cancel()
	_ = resp.Body.Close()
}

// waitLastSeq waits until the store has assigned seq: the `active: false`
// events are stored once the hub notices that the client left.
func waitLastSeq(t *testing.T, s history.Store, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(histTimeout)
	for s.LastSeq() < seq {
		if time.Now().After(deadline) {
			t.Fatalf("the store reached seq %d, want %d", s.LastSeq(), seq)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSubscriptionEventsNeverFlushPublishedUpdates is the reproduction of the
// flood, scaled down: a history bounded to 100 published updates, by count
// or by bytes, then anonymous clients that connect and leave with 100 exact
// topics each, three times (600 subscription events). A client that saw the
// first update reconnects with its id: the hub must still know it and replay
// the other 99, on every transport.
func TestSubscriptionEventsNeverFlushPublishedUpdates(t *testing.T) {
	t.Parallel()
	const keep, topics, cycles = 100, 100, 3
	const topic = "https://example.com/real"
	data := func(i int) string { return fmt.Sprintf("real update %03d", i) }
	unit := history.Size(&history.Update{ID: "real-000", Topics: []string{topic}, Data: data(0)})
	for _, r := range []history.Retention{{MaxUpdates: keep}, {MaxBytes: keep * unit}} {
		for name, open := range retainedTransports(r) {
			t.Run(fmt.Sprintf("%s/%d updates/%d bytes", name, r.MaxUpdates, r.MaxBytes), func(t *testing.T) {
				t.Parallel()
				store := open(t)
				hh := serveStore(t, store, func(c *Config) { c.Subscriptions, c.Anonymous = true, true })
				tok := legacyToken(t, []string{topic}, []string{topic})
				pub := publisher{hh: hh, tok: tok}
				var ids []string
				for i := range keep {
					id, err := pub.publish(t.Context(), url.Values{"topic": {topic}, "id": {fmt.Sprintf("real-%03d", i)}, "data": {data(i)}})
					if err != nil {
						t.Fatal(err)
					}
					ids = append(ids, id)
				}
				for c := range cycles {
					connectAndLeave(t, hh, c, topics)
					waitLastSeq(t, store, uint64(keep+2*topics*(c+1)))
				}
				hs := hh.openHist(t, "topic="+url.QueryEscape(topic)+"&lastEventID="+url.QueryEscape(ids[0]), bearer(tok))
				if got := hs.resp.Header.Get("Last-Event-ID"); got != ids[0] {
					t.Fatalf("after %d subscription events the cursor %q answers %q: the history lost it", 2*topics*cycles, ids[0], got)
				}
				for i, want := range ids[1:] {
					ev, err := hs.next()
					if err != nil {
						t.Fatalf("replay event %d: %v", i, err)
					}
					if ev.ID != want || ev.Data != data(i+1) {
						t.Fatalf("replay event %d = %q %q, want %q", i, ev.ID, ev.Data, want)
					}
				}
				// The events keep a history of their own, bounded the same way.
				if u, ok := store.(interface{ Usage() history.Usage }); ok {
					got := u.Usage()
					want := history.Usage{Updates: keep, UpdateBytes: keep * unit}
					if got.Updates != want.Updates || got.UpdateBytes != want.UpdateBytes {
						t.Errorf("Usage = %+v, want %d updates of %d bytes", got, want.Updates, want.UpdateBytes)
					}
					if r.MaxUpdates > 0 && got.Events != keep || r.MaxBytes > 0 && (got.EventBytes > r.MaxBytes || got.Events == 0) {
						t.Errorf("Usage = %+v: the subscription events are not bounded like the updates", got)
					}
					m := scrape(t, hh.h)
					if m["mercure_history_updates"] != keep || m["mercure_history_bytes"] != float64(keep*unit) ||
						m["mercure_history_subscription_events"] != float64(got.Events) || m["mercure_history_subscription_event_bytes"] != float64(got.EventBytes) {
						t.Errorf("history gauges %v, want %+v", historyGauges(m), got)
					}
				}
			})
		}
	}
}

// historyGauges returns the mercure_history_* samples of m.
func historyGauges(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if strings.HasPrefix(k, "mercure_history_") {
			out[k] = v
		}
	}
	return out
}

// The bolt file keeps the kinds apart across a restart of the hub: the
// subscription events stored before it do not count against the published
// updates after it.
func TestSubscriptionEventsStayApartAcrossARestart(t *testing.T) {
	t.Parallel()
	const keep = 20
	const topic = "https://example.com/real"
	path := filepath.Join(t.TempDir(), "h.db")
	r := history.Retention{MaxUpdates: keep}
	hh := serveStore(t, openBolt(t, path, r), func(c *Config) { c.Subscriptions, c.Anonymous = true, true })
	tok := legacyToken(t, []string{topic}, []string{topic})
	var ids []string
	for i := range keep {
		id, err := publisher{hh: hh, tok: tok}.publish(t.Context(), url.Values{"topic": {topic}, "data": {fmt.Sprint(i)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	connectAndLeave(t, hh, 0, 50)
	waitLastSeq(t, hh.store, keep+100)
	hh.stop()

	store := openBolt(t, path, r)
	if got := store.Usage(); got.Updates != keep || got.Events != keep {
		t.Fatalf("after the restart Usage = %+v, want %d of each kind", got, keep)
	}
	hh = serveStore(t, store, func(c *Config) { c.Subscriptions, c.Anonymous = true, true })
	connectAndLeave(t, hh, 1, 50)
	waitLastSeq(t, store, keep+200)
	hs := hh.openHist(t, "topic="+url.QueryEscape(topic)+"&lastEventID="+url.QueryEscape(ids[0]), bearer(tok))
	if got := hs.resp.Header.Get("Last-Event-ID"); got != ids[0] {
		t.Fatalf("after the restart the cursor %q answers %q", ids[0], got)
	}
}
