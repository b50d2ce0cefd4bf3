package client

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mercurectl/mercurectl/internal/sse"
)

// seed publishes n updates on topic "t" and returns their ids.
func seed(h *fakeHub, n int) []string {
	var ids []string
	for range n {
		ids = append(ids, h.publish(fakeUpdate{topics: []string{"t"}, data: "x"}))
	}
	return ids
}

// replayIDs runs a replay and returns the ids received.
func replayIDs(t *testing.T, c *Client, r ReplayRequest) ([]string, ReplayResult, error) {
	t.Helper()
	var ids []string
	r.OnEvent = func(ev sse.Event) error {
		ids = append(ids, ev.ID)
		return nil
	}
	if r.Selectors == nil {
		r.Selectors = Selectors("", "t")
	}
	res, err := c.Replay(t.Context(), r)
	return ids, res, err
}

// Against a hub that marks the end of the replay, Replay stops exactly
// there, even when the newest update is on another topic, and never
// delivers what follows the marker.
func TestReplayMarker(t *testing.T) {
	t.Parallel()
	for _, header := range []bool{true, false} {
		t.Run(map[bool]string{true: "announced", false: "not announced"}[header], func(t *testing.T) {
			t.Parallel()
			for _, metadata := range []bool{false, true} {
				h := newFakeHub(t)
				h.marker, h.markerHeader, h.metadata = true, header, metadata
				want := seed(h, 3)
				h.publish(fakeUpdate{topics: []string{"other"}})
				c := newTestClient(t, h.url(), Options{})
				start := time.Now()
				ids, res, err := replayIDs(t, c, ReplayRequest{
					From: Earliest,
					Idle: time.Hour, // only the marker can end it quickly
					OnConnect: func(ConnInfo) {
						h.publish(fakeUpdate{topics: []string{"t"}, data: "live"}) // after the marker
					},
				})
				if err != nil {
					t.Fatalf("Replay: %v", err)
				}
				if !slices.Equal(ids, want) || res.Events != 3 || res.LastEventID != want[2] || res.End != ReplayEndMarker {
					t.Fatalf("ids %v (want %v), result %+v", ids, want, res)
				}
				if res.Conn.ReplayMarker != header || res.Gap {
					t.Fatalf("conn %+v", res.Conn)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Fatalf("took %v", d)
				}
			}
		})
	}
}

// Against other hubs, Replay ends after Idle without traffic: exactly Idle
// after the last byte, on the clock of a synctest bubble.
func TestReplayIdle(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h, tr := newBubbleFakeHub(t)
		all := seed(h, 5)
		c := newBubbleClient(t, tr, Options{})
		const idle = 150 * time.Millisecond

		start := time.Now()
		ids, res, err := replayIDs(t, c, ReplayRequest{From: all[1], Idle: idle})
		if err != nil || !slices.Equal(ids, all[2:]) || res.End != ReplayEndIdle || res.Gap {
			t.Fatalf("ids %v, result %+v, err %v", ids, res, err)
		}
		if elapsed := time.Since(start); elapsed != idle {
			t.Fatalf("ended after %v, want %v", elapsed, idle)
		}

		// Nothing to replay: ends after Idle too, with From as LastEventID.
		ids, res, err = replayIDs(t, c, ReplayRequest{From: all[4], Idle: idle})
		if err != nil || len(ids) != 0 || res.End != ReplayEndIdle || res.LastEventID != all[4] {
			t.Fatalf("ids %v, result %+v, err %v", ids, res, err)
		}
		if !hasQuery(h.subscribeRequests()[1], "lastEventID", all[4]) {
			t.Fatalf("cursor not sent: %s", h.subscribeRequests()[1].url.RawQuery)
		}
	})
}

// Traffic keeps an idle replay going; the timer restarts on every byte, so
// the replay ends Idle after the last update.
func TestReplayIdleRestartsOnTraffic(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h, tr := newBubbleFakeHub(t)
		c := newBubbleClient(t, tr, Options{})
		const idle = 300 * time.Millisecond
		start := time.Now()
		go func() {
			for range 4 {
				time.Sleep(idle / 3)
				h.publish(fakeUpdate{topics: []string{"t"}})
			}
		}()
		ids, res, err := replayIDs(t, c, ReplayRequest{From: Earliest, Idle: idle})
		if err != nil || len(ids) != 4 || res.End != ReplayEndIdle {
			t.Fatalf("ids %v, result %+v, err %v", ids, res, err)
		}
		if elapsed, want := time.Since(start), 4*(idle/3)+idle; elapsed != want {
			t.Fatalf("ended after %v, want %v (Idle after the last update)", elapsed, want)
		}
	})
}

// docs/protocol.md#subscribe-cursors: an unknown cursor is a gap.
func TestReplayGap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		metadata      bool
		unknownCursor string
	}{
		{"draft-07, 1.x style earliest", false, ""},
		{"draft-08, earliest", true, ""},
		{"draft-07, 0.x style newest id", false, "urn:fake:3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newFakeHub(t)
			h.metadata, h.unknownCursor = tc.metadata, tc.unknownCursor
			seed(h, 3)
			c := newTestClient(t, h.url(), Options{})
			ids, res, err := replayIDs(t, c, ReplayRequest{From: "urn:gone", Idle: 50 * time.Millisecond})
			if !errors.Is(err, ErrHistoryGap) || len(ids) != 0 || !res.Gap {
				t.Fatalf("ids %v, result %+v, err %v", ids, res, err)
			}
			want := tc.unknownCursor
			if want == "" {
				want = Earliest
			}
			if res.Conn.ResponseCursor != want || res.Conn.RequestCursor != "urn:gone" {
				t.Fatalf("conn %+v", res.Conn)
			}
			_, res, err = replayIDs(t, c, ReplayRequest{From: "urn:gone", Idle: 50 * time.Millisecond, AllowGap: true})
			if err != nil || !res.Gap || res.End != ReplayEndIdle {
				t.Fatalf("AllowGap: result %+v, err %v", res, err)
			}
			// earliest and known ids are never gaps.
			_, res, err = replayIDs(t, c, ReplayRequest{From: Earliest, Idle: 50 * time.Millisecond})
			if err != nil || res.Gap || res.Events != 3 {
				t.Fatalf("earliest: result %+v, err %v", res, err)
			}
			_, res, err = replayIDs(t, c, ReplayRequest{From: "urn:fake:1", Idle: 50 * time.Millisecond})
			if err != nil || res.Gap || res.Events != 2 {
				t.Fatalf("known: result %+v, err %v", res, err)
			}
		})
	}
}

func TestReplayEnds(t *testing.T) {
	t.Parallel()
	t.Run("hub closes the stream", func(t *testing.T) {
		t.Parallel()
		h := newFakeHub(t)
		h.dropAfter = 2
		seed(h, 3)
		c := newTestClient(t, h.url(), Options{})
		ids, res, err := replayIDs(t, c, ReplayRequest{From: Earliest, Idle: time.Hour})
		if err != nil || len(ids) != 2 || res.End != ReplayEndEOF {
			t.Fatalf("ids %v, result %+v, err %v", ids, res, err)
		}
		if n := len(h.subscribeRequests()); n != 1 {
			t.Fatalf("Replay reconnected: %d connections", n)
		}
	})
	t.Run("broken connection is an error", func(t *testing.T) {
		t.Parallel()
		h := newFakeHub(t)
		h.dropAfter, h.abortDrop = 2, true
		seed(h, 3)
		c := newTestClient(t, h.url(), Options{})
		_, _, err := replayIDs(t, c, ReplayRequest{From: Earliest, Idle: time.Hour})
		if err == nil || errors.Is(err, ErrUnreachable) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("callback stops", func(t *testing.T) {
		t.Parallel()
		h := newFakeHub(t)
		seed(h, 3)
		c := newTestClient(t, h.url(), Options{})
		res, err := c.Replay(t.Context(), ReplayRequest{Selectors: Selectors("", "t"), From: Earliest, Idle: time.Hour,
			OnEvent: func(sse.Event) error { return ErrStop }})
		if err != nil || res.Events != 1 || res.End != ReplayEndStopped {
			t.Fatalf("result %+v, err %v", res, err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		h := newFakeHub(t)
		h.refuse = func(int) int { return http.StatusForbidden }
		c := newTestClient(t, h.url(), Options{})
		if _, _, err := replayIDs(t, c, ReplayRequest{From: Earliest}); !errors.Is(err, ErrRefused) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("usage", func(t *testing.T) {
		t.Parallel()
		c := newTestClient(t, "http://127.0.0.1:1", Options{Protocol: Protocol08})
		if _, _, err := replayIDs(t, c, ReplayRequest{}); !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("no From: %v", err)
		}
		if _, _, err := replayIDs(t, c, ReplayRequest{From: Earliest, Selectors: Selectors("", "/b/{id}")}); !errors.Is(err, ErrTemplateSelector) {
			t.Fatalf("template: %v", err)
		}
	})
}

// Against hubs that expose their cursor through the subscriptions API,
// Replay ends when the newest update arrives, without waiting for Idle.
func TestReplayHubCursor(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"link", "jsonld"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := newFakeHub(t)
			h.subsAPI = mode
			h.metadata = mode == "link"
			want := seed(h, 3)
			var tokReqs []TokenRequest
			var mu sync.Mutex
			c := newTestClient(t, h.url(), Options{TokenFunc: func(_ context.Context, r TokenRequest) (string, error) {
				mu.Lock()
				defer mu.Unlock()
				tokReqs = append(tokReqs, r)
				return "tok", nil
			}})
			start := time.Now()
			ids, res, err := replayIDs(t, c, ReplayRequest{From: Earliest, Idle: time.Hour})
			if err != nil || !slices.Equal(ids, want) || res.End != ReplayEndCursor || res.HubCursor != want[2] {
				t.Fatalf("ids %v, result %+v, err %v", ids, res, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v", d)
			}
			// The subscriptions API was asked with a token for its own path.
			mu.Lock()
			last := tokReqs[len(tokReqs)-1]
			mu.Unlock()
			if len(last.Selectors) != 1 || last.Selectors[0].Value != HubPath+SubscriptionsPath || last.Action != ActionSubscribe {
				t.Fatalf("token request %+v", last)
			}

			// Nothing after From: ends at once.
			ids, res, err = replayIDs(t, c, ReplayRequest{From: want[2], Idle: time.Hour})
			if err != nil || len(ids) != 0 || res.End != ReplayEndCursor {
				t.Fatalf("ids %v, result %+v, err %v", ids, res, err)
			}
		})
	}
	t.Run("newest update on another topic: idle fallback", func(t *testing.T) {
		t.Parallel()
		h := newFakeHub(t)
		h.subsAPI = "link"
		want := seed(h, 2)
		h.publish(fakeUpdate{topics: []string{"other"}})
		c := newTestClient(t, h.url(), Options{})
		ids, res, err := replayIDs(t, c, ReplayRequest{From: Earliest, Idle: 100 * time.Millisecond})
		if err != nil || !slices.Equal(ids, want) || res.End != ReplayEndIdle {
			t.Fatalf("ids %v, result %+v, err %v", ids, res, err)
		}
	})
	t.Run("API refused or absent: idle", func(t *testing.T) {
		t.Parallel()
		for _, status := range []int{0, http.StatusForbidden, http.StatusNotFound} {
			h := newFakeHub(t)
			if status != 0 {
				h.subsAPI, h.subsAPIStatus = "link", status
			}
			seed(h, 2)
			c := newTestClient(t, h.url(), Options{})
			_, res, err := replayIDs(t, c, ReplayRequest{From: Earliest, Idle: 100 * time.Millisecond})
			if err != nil || res.End != ReplayEndIdle || res.Events != 2 || res.HubCursor != "" {
				t.Fatalf("status %d: result %+v, err %v", status, res, err)
			}
		}
	})
	t.Run("not probed when the hub promises the marker, or when disabled", func(t *testing.T) {
		t.Parallel()
		h := newFakeHub(t)
		h.subsAPI, h.marker, h.markerHeader = "link", true, true
		seed(h, 2)
		c := newTestClient(t, h.url(), Options{})
		if _, res, err := replayIDs(t, c, ReplayRequest{From: Earliest}); err != nil || res.End != ReplayEndMarker {
			t.Fatalf("result %+v, err %v", res, err)
		}
		h.marker, h.markerHeader = false, false
		if _, res, err := replayIDs(t, c, ReplayRequest{From: Earliest, Idle: 50 * time.Millisecond, NoCursorProbe: true}); err != nil || res.End != ReplayEndIdle {
			t.Fatalf("result %+v, err %v", res, err)
		}
		for _, r := range h.requests() {
			if r.url.Path == HubPath+SubscriptionsPath {
				t.Fatalf("subscriptions API asked")
			}
		}
	})
}

func TestLinkCursor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		values []string
		want   string
		ok     bool
	}{
		{[]string{`</.well-known/mercure>; rel="mercure"; last-event-id="urn:uuid:1"; type="mercure"`}, "urn:uuid:1", true},
		{[]string{`<https://a>; rel=self, </hub>; rel="mercure"; Last-Event-ID=abc`}, "abc", true},
		{[]string{`<https://a>; rel="self mercure"; last-event-id="x,y;z\"q"`}, `x,y;z"q`, true},
		{[]string{`<https://a>; rel="self"; last-event-id="x"`}, "", false},
		{[]string{`</hub>; rel="mercure"`}, "", false},
		{[]string{`</hub>; rel="mercure"; last-event-id=""`}, "", false},
		{[]string{`garbage`, `</hub>; rel="mercure"; last-event-id="earliest"`}, "earliest", true},
		{nil, "", false},
	}
	for _, tt := range tests {
		if got, ok := linkCursor(tt.values); got != tt.want || ok != tt.ok {
			t.Errorf("linkCursor(%q) = %q, %v; want %q, %v", tt.values, got, ok, tt.want, tt.ok)
		}
	}
}
