package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/sse"
)

// restart stops the fake hub and starts it again on the same port, keeping
// its history, as a hub with a durable store does. fn, when set, runs while
// the hub is down.
func (h *fakeHub) restart(fn func()) {
	addr := strings.TrimSuffix(strings.TrimPrefix(h.url(), "http://"), HubPath)
	h.stop()
	if fn != nil {
		fn()
	}
	h.start(addr)
}

// store adds an update to the history without delivering it, as an update
// published while this hub is down (to another node, or just before the
// restart) is found in the history afterwards.
func (h *fakeHub) store(topic string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	id := fmt.Sprintf("urn:stored:%d", h.nextID)
	h.history = append(h.history, fakeUpdate{id: id, topics: []string{topic}})
	return id
}

// fastReconnect makes reconnections quick enough for many restarts.
var fastReconnect = Options{ReconnectDelay: 5 * time.Millisecond, MaxReconnectDelay: 20 * time.Millisecond}

// A subscriber that received nothing yet resumes from the hub's response
// cursor: what was published while it was away, after a hub restart, is
// delivered, and nothing from before it connected is.
func TestQuietSubscriberResumesFromResponseCursor(t *testing.T) {
	t.Parallel()
	for _, gen08 := range []bool{false, true} {
		name := map[bool]string{false: "draft-07", true: "draft-08"}[gen08]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newFakeHub(t)
			h.metadata = gen08
			old := seed(h, 2)
			col := newCollector()
			col.stopAt = 2
			c := newTestClient(t, h.url(), fastReconnect)
			wait := runSubscribe(t, t.Context(), c, col.request("t"))
			first := waitConn(t, col)
			if first.ResumeCursor != old[1] || first.RequestCursor != "" || !first.HasResponseCursor {
				t.Fatalf("first connection %+v, want the resume cursor %q from the hub", first, old[1])
			}
			var want []string
			h.restart(func() { want = append(want, h.store("t")) })
			second := waitConn(t, col)
			if !second.Reconnect || second.RequestCursor != old[1] {
				t.Fatalf("reconnection %+v, want the request cursor %q", second, old[1])
			}
			want = append(want, h.publish(fakeUpdate{topics: []string{"t"}}))
			if err := wait(); err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			if got := col.gotIDs(); !slices.Equal(got, want) {
				t.Fatalf("ids %v, want %v", got, want)
			}
			reqs := h.subscribeRequests()
			param := map[bool]string{false: cursorParam07, true: cursorParam08}[gen08]
			if q := reqs[0].url.Query(); !q.Has(param) || q.Get(param) != "" {
				t.Errorf("first connection %q: want an empty %s", reqs[0].url.RawQuery, param)
			}
			if got := reqs[1].header.Get("Last-Event-ID"); got != old[1] {
				t.Errorf("reconnection Last-Event-ID %q, want %q", got, old[1])
			}
		})
	}
}

// An empty history answers "earliest": resuming from it receives exactly
// what was published since.
func TestQuietSubscriberOnEmptyHistory(t *testing.T) {
	t.Parallel()
	h := newFakeHub(t)
	col := newCollector()
	col.stopAt = 2
	c := newTestClient(t, h.url(), fastReconnect)
	wait := runSubscribe(t, t.Context(), c, col.request("t"))
	if ci := waitConn(t, col); ci.ResumeCursor != Earliest {
		t.Fatalf("resume cursor %q, want %q", ci.ResumeCursor, Earliest)
	}
	var want []string
	h.restart(func() { want = append(want, h.store("t"), h.store("t")) })
	if err := wait(); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if got := col.gotIDs(); !slices.Equal(got, want) {
		t.Fatalf("ids %v, want %v", got, want)
	}
}

// A hub that sends no response cursor leaves the subscriber without a
// resume position until its first event (ResumeCursor ""): reconnections
// then ask for the hub's position again, with an empty cursor.
func TestNoResponseCursorFallsBack(t *testing.T) {
	t.Parallel()
	h := newFakeHub(t)
	h.noEmptyCursor = true
	seed(h, 1)
	col := newCollector()
	col.stopAt = 1
	c := newTestClient(t, h.url(), fastReconnect)
	wait := runSubscribe(t, t.Context(), c, col.request("t"))
	if ci := waitConn(t, col); ci.ResumeCursor != "" || ci.HasResponseCursor {
		t.Fatalf("first connection %+v, want no resume cursor", ci)
	}
	h.restart(func() { h.store("t") }) // lost: nobody knows where to resume
	if ci := waitConn(t, col); ci.RequestCursor != "" || ci.ResumeCursor != "" {
		t.Fatalf("reconnection %+v", ci)
	}
	want := h.publish(fakeUpdate{topics: []string{"t"}})
	if err := wait(); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if got := col.gotIDs(); !slices.Equal(got, []string{want}) {
		t.Fatalf("ids %v, want %v", got, []string{want})
	}
	reqs := h.subscribeRequests()
	if r := reqs[len(reqs)-1]; r.header.Get("Last-Event-ID") != "" || !r.url.Query().Has(cursorParam07) {
		t.Errorf("reconnection without a position: header %q, query %q; want an empty query cursor",
			r.header.Get("Last-Event-ID"), r.url.RawQuery)
	}
}

// restartPlan drives a fake hub through restarts at random moments while
// updates are published, live and while it is down, and returns the ids
// published on topic "t", in order. The first restarts come before any
// update, as for a quiet subscriber.
func restartPlan(t *testing.T, h *fakeHub, rng *rand.Rand, restarts int) []string {
	t.Helper()
	var want []string
	pause := func(max time.Duration) { time.Sleep(time.Duration(rng.Int64N(int64(max)))) }
	for i := range restarts {
		pause(15 * time.Millisecond)
		h.restart(func() {
			if i < 2 {
				return // nothing yet: the subscriber is still quiet
			}
			for range rng.IntN(3) {
				want = append(want, h.store("t"))
			}
			if rng.IntN(4) == 0 {
				h.store("other")
			}
			pause(10 * time.Millisecond)
		})
		if i < 2 {
			continue
		}
		for range rng.IntN(3) {
			pause(3 * time.Millisecond)
			want = append(want, h.publish(fakeUpdate{topics: []string{"t"}}))
		}
	}
	want = append(want, h.publish(fakeUpdate{topics: []string{"t"}})) // at least one
	return want
}

// The contract's "no duplicate, no loss when the hub keeps history", with
// the hub restarted at random moments, including before the first event,
// in both generations and with or without a starting cursor.
func TestSubscribeSurvivesRandomRestarts(t *testing.T) {
	t.Parallel()
	rngSeed := rand.Uint64()
	t.Logf("seed %d", rngSeed)
	for _, tc := range []struct {
		name   string
		gen08  bool
		cursor string
	}{
		{"draft-07 no cursor", false, ""},
		{"draft-08 no cursor", true, ""},
		{"draft-07 earliest", false, Earliest},
		{"draft-08 earliest", true, Earliest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(rngSeed, uint64(len(tc.name))))
			for round := range 5 {
				h := newFakeHub(t)
				h.metadata = tc.gen08
				old := seed(h, 3)
				col := newCollector()
				c := newTestClient(t, h.url(), fastReconnect)
				ctx, cancel := context.WithCancel(t.Context())
				req := col.request("t")
				req.LastEventID = tc.cursor
				done := make(chan error, 1)
				go func() { done <- c.Subscribe(ctx, req) }()
				waitConn(t, col)
				want := restartPlan(t, h, rng, 8)
				if tc.cursor == Earliest {
					want = append(slices.Clone(old), want...)
				}
				waitEvents(t, col, len(want))
				cancel()
				<-done
				h.stop()
				if got := col.gotIDs(); !slices.Equal(got, want) {
					t.Fatalf("round %d: ids\n got %v\nwant %v", round, got, want)
				}
			}
		})
	}
}

// A replay cut by the hub (a restart, or the end of the stream) before it
// caught up resumes after the last update received, and ends at the marker
// of the new connection: every update once, in order.
func TestReplayReconnects(t *testing.T) {
	t.Parallel()
	h := newFakeHub(t)
	h.marker, h.markerHeader = true, true
	h.dropAfter = 3
	want := seed(h, 10)
	var mu sync.Mutex
	var disconnects int
	c := newTestClient(t, h.url(), fastReconnect)
	got, res, err := replayIDs(t, c, ReplayRequest{
		From:      Earliest,
		Reconnect: true,
		OnDisconnect: func(error, time.Duration) {
			mu.Lock()
			disconnects++
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ids\n got %v\nwant %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if res.End != ReplayEndMarker || res.Reconnections != 3 || disconnects != 3 {
		t.Fatalf("result %+v, %d disconnections; want the marker after 3 reconnections", res, disconnects)
	}

	// Without Reconnect the first end of the stream ends the replay.
	got, res, err = replayIDs(t, c, ReplayRequest{From: Earliest})
	if err != nil || res.End != ReplayEndEOF || !slices.Equal(got, want[:3]) {
		t.Fatalf("without Reconnect: %v, %+v, ids %v", err, res, got)
	}
}

// Replay against a hub restarted at random moments while it streams the
// history: the output is the history, once, in order.
func TestReplaySurvivesRandomRestarts(t *testing.T) {
	t.Parallel()
	rngSeed := rand.Uint64()
	t.Logf("seed %d", rngSeed)
	rng := rand.New(rand.NewPCG(rngSeed, 1))
	for round := range 10 {
		h := newFakeHub(t)
		h.marker, h.markerHeader = true, true
		h.dropAfter = 1 + rng.IntN(4) // the stream also ends by itself
		want := seed(h, 20)
		c := newTestClient(t, h.url(), fastReconnect)
		stop := make(chan struct{})
		restarted := make(chan struct{})
		connected := make(chan struct{}, 1)
		go func() {
			defer close(restarted)
			select { // the first connection must succeed
			case <-stop:
				return
			case <-connected:
			}
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(rng.Int64N(int64(5 * time.Millisecond)))):
				}
				h.restart(nil)
			}
		}()
		var ids []string
		res, err := c.Replay(t.Context(), ReplayRequest{
			Selectors: Selectors("", "t"),
			From:      Earliest,
			Reconnect: true,
			OnConnect: func(ConnInfo) {
				select {
				case connected <- struct{}{}:
				default:
				}
			},
			OnEvent: func(ev sse.Event) error { ids = append(ids, ev.ID); return nil },
		})
		close(stop)
		<-restarted
		if err != nil {
			t.Fatalf("round %d: Replay: %v", round, err)
		}
		if !slices.Equal(ids, want) || res.End != ReplayEndMarker {
			t.Fatalf("round %d: end %v, ids\n got %v\nwant %v", round, res.End, ids, want)
		}
	}
}
