package hub

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/sse"
)

// scrape serves the hub's registry through promhttp, as --metrics-addr
// does, and returns the samples of the text exposition by series (name
// plus labels as written).
func scrape(tb testing.TB, h *Hub) map[string]float64 {
	tb.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(h.Gatherer(), promhttp.HandlerOpts{}))
	defer srv.Close()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodGet, srv.URL, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("scrape: %d", resp.StatusCode)
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			tb.Fatalf("scrape: bad line %q", line)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// wantSamples checks some series of a scrape.
func wantSamples(tb testing.TB, got map[string]float64, want map[string]float64) {
	tb.Helper()
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			tb.Errorf("metric %s missing", k)
		} else if g != v {
			tb.Errorf("%s = %v, want %v", k, g, v)
		}
	}
}

// eventually polls cond for up to 5s.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Issue 3 item 6: the hub's metrics move as subscribers come and go and
// updates are published, with no per-topic labels.
func TestMetrics(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	wantSamples(t, scrape(t, th.h), map[string]float64{
		"mercure_subscribers_connected":           0,
		"mercure_subscribers_total":               0,
		"mercure_updates_total":                   0,
		"mercure_publish_errors_total":            0,
		"mercure_publish_duration_seconds_count":  0,
		"mercure_dispatch_duration_seconds_count": 0,
		"mercure_slow_subscriber_resyncs_total":   0,
		"mercure_history_last_sequence":           0,
	})

	tok := legacyToken(t, []string{"a", "b"}, []string{"*"})
	s1 := th.mustSubscribe(t, "topic=a", bearer(tok))
	th.mustSubscribe(t, "topic=b", bearer(tok))
	for i := range 3 {
		th.mustPublish(t, tok, url.Values{"topic": {"a"}, "data": {fmt.Sprint(i)}})
	}
	if resp, _ := th.publish(t, tok, url.Values{"topic": {"c"}}); resp.StatusCode < 400 {
		t.Fatalf("publish to an ungranted topic: %d", resp.StatusCode)
	}
	got := scrape(t, th.h)
	wantSamples(t, got, map[string]float64{
		"mercure_subscribers_connected":           2,
		"mercure_subscribers_total":               2,
		"mercure_updates_total":                   3,
		"mercure_publish_errors_total":            1,
		"mercure_publish_duration_seconds_count":  3,
		"mercure_dispatch_duration_seconds_count": 3,
		"mercure_history_last_sequence":           3,
		"mercure_history_updates":                 3,
	})
	if got[`mercure_publish_duration_seconds_bucket{le="+Inf"}`] != 3 || got["mercure_publish_duration_seconds_sum"] <= 0 {
		t.Errorf("publish histogram: %v", got)
	}
	for k := range got {
		if strings.Contains(k, "topic=") || strings.Contains(k, "subscriber=") {
			t.Errorf("per-topic or per-subscriber series %s", k)
		}
	}

	// Leaving lowers the gauge, not the counter.
	s1.cancel()
	eventually(t, "the subscriber to leave", func() bool { return scrape(t, th.h)["mercure_subscribers_connected"] == 1 })
	wantSamples(t, scrape(t, th.h), map[string]float64{"mercure_subscribers_total": 2})
}

// Subscription events go through the store too: they are dispatched (and
// timed) but are not counted as published updates.
func TestMetricsSubscriptionEvents(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, subscriptionsOn)
	s := th.mustSubscribe(t, "match=a&match=b", bearer(th.accessToken(t, nil, []string{"*"})))
	wantSamples(t, scrape(t, th.h), map[string]float64{
		"mercure_subscribers_total":               1,
		"mercure_updates_total":                   0,
		"mercure_dispatch_duration_seconds_count": 2,
		"mercure_history_last_sequence":           2,
	})
	s.cancel()
	eventually(t, "the active:false events", func() bool {
		return scrape(t, th.h)["mercure_dispatch_duration_seconds_count"] == 4
	})
}

// countingStore is a store that can count its updates cheaply.
type countingStore struct {
	*history.Memory
	n atomic.Uint64
}

func (s *countingStore) Append(ctx context.Context, u *history.Update) error {
	err := s.Memory.Append(ctx, u)
	if err == nil {
		s.n.Add(1)
	}
	return err
}

func (s *countingStore) Usage() history.Usage {
	return history.Usage{Updates: s.n.Load(), UpdateBytes: 7 * s.n.Load()}
}

// A store with Usage gets the history size exported.
func TestMetricsHistorySize(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Store = &countingStore{Memory: history.NewMemory(history.Retention{}, nil)} })
	tok := legacyToken(t, []string{"a"}, nil)
	for range 4 {
		th.mustPublish(t, tok, url.Values{"topic": {"a"}})
	}
	wantSamples(t, scrape(t, th.h), map[string]float64{"mercure_history_updates": 4, "mercure_history_bytes": 28})
}

// A subscriber that stops reading while updates pile up is caught up from
// history rather than buffered without bound; the counter records it, and
// the subscriber still gets every update in order.
func TestMetricsSlowSubscriber(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) {
		c.QueueSize = 1
		c.DispatchTimeout = 30 * time.Second
	})
	tok := legacyToken(t, []string{"a"}, []string{"a"})
	// A raw stream that is not read while updates pile up: with 256 KiB
	// updates the hub's writes stall on full socket buffers, and its queue
	// of one overflows.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, th.url+"?topic=a", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("subscribe: %d", resp.StatusCode)
	}
	big := strings.Repeat("x", 256<<10)
	const n = 80 // 20 MiB, well above loopback socket buffers
	for i := range n {
		th.mustPublish(t, tok, url.Values{"topic": {"a"}, "data": {big}, "id": {fmt.Sprint("u", i)}})
	}
	r := sse.NewReader(bufio.NewReader(resp.Body), sse.ReaderOptions{})
	for i := range n {
		ev, err := r.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.ID != fmt.Sprint("u", i) || ev.Data != big {
			t.Fatalf("event %d: id %q, %d bytes", i, ev.ID, len(ev.Data))
		}
	}
	if got := scrape(t, th.h)["mercure_slow_subscriber_resyncs_total"]; got < 1 {
		t.Errorf("mercure_slow_subscriber_resyncs_total = %v, want at least 1", got)
	}
}
