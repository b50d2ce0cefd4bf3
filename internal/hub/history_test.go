package hub

// Hub-level history guarantees of issue 3 (items 1-4), over real HTTP and on
// the durable bolt store: exact replay of large histories with the live
// updates that arrive meanwhile following with no gap and no duplicate, one
// reconnection that replays tens of thousands of updates to a slow reader
// (through the hub's resync from the store), replay right after a restart,
// unknown and evicted cursors, and retention
// (docs/protocol.md#subscribe-cursors).

import (
	"bufio"
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/history/bolt"
	"github.com/mercurectl/mercurectl/internal/sse"
	"github.com/mercurectl/mercurectl/internal/token"
)

// replayBenchSize is the size of the history that BenchmarkReplay builds.
var replayBenchSize = flag.Int("hub.replay-size", 200_000, "updates stored before BenchmarkReplay replays them")

// histTimeout bounds every HTTP exchange of these tests, so that a lost
// event fails the test instead of hanging it.
const histTimeout = 90 * time.Second

// histHub is a hub on a given store, served over real HTTP, that a test can
// stop before its end (to restart on the same file).
type histHub struct {
	*testHub
	client *http.Client
	stop   func()
}

// serveStore starts a hub on store. stop shuts the hub down and closes the
// store; it runs at cleanup if the test did not call it.
func serveStore(tb testing.TB, store history.Store, mod func(*Config)) *histHub {
	tb.Helper()
	v, err := token.NewVerifier(token.VerifierConfig{Key: testKey})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	cfg := DefaultConfig()
	cfg.Store, cfg.PublisherVerifier, cfg.SubscriberVerifier = store, v, v
	cfg.ResourceIdentifier = "http://" + srv.Listener.Addr().String() + Path
	testConfig(&cfg)
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		srv.Close()
		tb.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	// Keep-alive connections for concurrent publishers: the default client
	// keeps two, and closing the others would churn through ports.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	hh := &histHub{
		testHub: &testHub{h: h, srv: srv, url: srv.URL + Path, store: store},
		client:  client,
	}
	var once sync.Once
	hh.stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := h.Shutdown(ctx); err != nil {
				tb.Errorf("hub shutdown: %v", err)
			}
			srv.CloseClientConnections()
			srv.Close()
			client.CloseIdleConnections()
			_ = h.Close()
			if err := store.Close(); err != nil {
				tb.Errorf("close store: %v", err)
			}
		})
	}
	tb.Cleanup(hh.stop)
	return hh
}

// openBolt opens the bolt store at path, failing the test on error.
func openBolt(tb testing.TB, path string, r history.Retention) *bolt.Store {
	tb.Helper()
	s, err := bolt.Open(path, bolt.Options{Retention: r})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// fillStore appends n updates made by mk straight to s, from many goroutines
// so that the group commit keeps it fast, and returns them in Seq order: the
// order in which a replay must deliver them.
func fillStore(tb testing.TB, s history.Store, n int, mk func(i int) *history.Update) []*history.Update {
	tb.Helper()
	ups := make([]*history.Update, n)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 256 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && failed.Load() == nil; i = int(next.Add(1)) - 1 {
				u := mk(i)
				if err := s.Append(context.Background(), u); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				ups[i] = u
			}
		})
	}
	wg.Wait()
	if p := failed.Load(); p != nil {
		tb.Fatalf("fill the store: %v", *p)
	}
	slices.SortFunc(ups, func(a, b *history.Update) int { return cmp.Compare(a.Seq, b.Seq) })
	for i := 1; i < n; i++ {
		if ups[i].Seq <= ups[i-1].Seq {
			tb.Fatalf("fill the store: Seq %d after %d", ups[i].Seq, ups[i-1].Seq)
		}
	}
	return ups
}

// histStream is a subscription read event by event, with the position of
// the replay-done comment among the events.
type histStream struct {
	resp *http.Response
	r    *sse.Reader
	// doneAt is the number of events read when the replay-done comment
	// came (-1: not yet); dones counts such comments.
	doneAt, dones int
	n             int // events read so far
	// endAtDone, when set, ends the subscription as soon as the replay-done
	// comment arrives, so that next returns an error instead of waiting
	// for a live event.
	endAtDone bool
	cancel    context.CancelFunc
}

// openHist subscribes with a raw query and headers and fails the test unless
// the hub answers 200. The subscription is live once it returns.
func (hh *histHub) openHist(tb testing.TB, query string, hdr http.Header) *histStream {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), histTimeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hh.url+"?"+query, nil)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := hh.client.Do(req)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		cancel()
		tb.Fatalf("subscribe %s: %d %s", query, resp.StatusCode, b)
	}
	hs := &histStream{resp: resp, doneAt: -1, cancel: cancel}
	hs.r = sse.NewReader(bufio.NewReaderSize(resp.Body, 64<<10), sse.ReaderOptions{OnComment: func(c string) {
		if strings.TrimSpace(c) == sse.ReplayDoneComment {
			hs.dones++
			if hs.doneAt < 0 {
				hs.doneAt = hs.n
			}
			if hs.endAtDone {
				hs.cancel()
			}
		}
	}})
	tb.Cleanup(func() {
		cancel()
		_ = resp.Body.Close()
	})
	return hs
}

// next returns the next event. It does not fail the test itself, so that
// readers can run in their own goroutines.
func (hs *histStream) next() (sse.Event, error) {
	ev, err := hs.r.Next()
	if err == nil {
		hs.n++
	}
	return ev, err
}

// close ends the subscription from the client side.
func (hs *histStream) close() { _ = hs.resp.Body.Close() }

// publisher publishes over the hub's keep-alive client. Its methods return
// errors rather than failing the test, for use from goroutines.
type publisher struct {
	hh  *histHub
	tok string
}

// publish posts one update and returns the id the hub acknowledged.
func (p publisher) publish(ctx context.Context, form url.Values) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.hh.url, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+p.tok)
	resp, err := p.hh.client.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("publish %v: %d %s", form, resp.StatusCode, body)
	}
	return string(body), nil
}

// liveUpdate is one update published over HTTP during a test, with what a
// subscriber needs to know to decide whether it must see it.
type liveUpdate struct {
	id, topic, data string
	private         bool
}

// livePublishers publishes, from `publishers` goroutines, `each` updates
// made by mk, and records per publisher the updates the hub acknowledged,
// in acknowledgement order. acked counts acknowledgements as they come.
type livePublishers struct {
	acked atomic.Int64
	done  chan struct{}
	mu    sync.Mutex
	byPub [][]liveUpdate
	err   error
}

func startLive(p publisher, publishers, each int, mk func(pub, k int) liveUpdate) *livePublishers {
	lp := &livePublishers{done: make(chan struct{}), byPub: make([][]liveUpdate, publishers)}
	ctx, cancel := context.WithTimeout(context.Background(), histTimeout)
	var wg sync.WaitGroup
	for pub := range publishers {
		wg.Go(func() {
			for k := range each {
				u := mk(pub, k)
				form := url.Values{"topic": {u.topic}, "id": {u.id}, "data": {u.data}}
				if u.private {
					form.Set("private", "on")
				}
				id, err := p.publish(ctx, form)
				if err == nil && id != u.id {
					err = fmt.Errorf("publish %s: the hub acknowledged id %q", u.id, id)
				}
				if err != nil {
					lp.mu.Lock()
					lp.err = cmp.Or(lp.err, err)
					lp.mu.Unlock()
					return
				}
				lp.mu.Lock()
				lp.byPub[pub] = append(lp.byPub[pub], u)
				lp.mu.Unlock()
				lp.acked.Add(1)
			}
		})
	}
	go func() {
		wg.Wait()
		cancel()
		close(lp.done)
	}()
	return lp
}

// waitAcked waits until n publishes were acknowledged or the publishers stopped.
func (lp *livePublishers) waitAcked(n int64) {
	for lp.acked.Load() < n {
		select {
		case <-lp.done:
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// wait waits for the publishers to finish and returns what they acknowledged.
func (lp *livePublishers) wait(tb testing.TB) [][]liveUpdate {
	tb.Helper()
	<-lp.done
	if lp.err != nil {
		tb.Fatal(lp.err)
	}
	return lp.byPub
}

// sentinelTopic and sentinelID mark the end of a stream: the sentinel is
// published after every live update was acknowledged, so a reader that has
// seen it has seen everything (and any duplicate would have come before it).
const (
	sentinelTopic = "https://example.com/books/sentinel"
	sentinelID    = "sentinel"
)

// readUntilSentinel reads events until the sentinel. pause, when set, is
// called once after the first event, before reading on: readers use it to
// stall while live updates pile up.
func readUntilSentinel(hs *histStream, pause func()) ([]sse.Event, error) {
	var evs []sse.Event
	for {
		ev, err := hs.next()
		if err != nil {
			return evs, fmt.Errorf("after %d events: %w", len(evs), err)
		}
		if ev.ID == sentinelID {
			return evs, nil
		}
		evs = append(evs, ev)
		if len(evs) == 1 && pause != nil {
			pause()
		}
	}
}

// checkReplay checks that a stream delivered exactly the stored updates
// `replay` (in order, with their data), then the replay-done comment once,
// then exactly the live updates in `live` (each publisher's in its
// acknowledgement order, none missing, none doubled).
func checkReplay(t *testing.T, name string, hs *histStream, evs []sse.Event, replay []*history.Update, live [][]liveUpdate) {
	t.Helper()
	if hs.dones != 1 || hs.doneAt != len(replay) {
		t.Errorf("%s: replay-done comment seen %d times, after event %d; want once, after the %d replayed events",
			name, hs.dones, hs.doneAt, len(replay))
	}
	n := min(len(evs), len(replay))
	for i := range n {
		if evs[i].ID != replay[i].ID || evs[i].Data != replay[i].Data {
			t.Fatalf("%s: replayed event %d = %q (data %q), want %q (data %q)",
				name, i, evs[i].ID, evs[i].Data, replay[i].ID, replay[i].Data)
		}
	}
	if len(evs) < len(replay) {
		t.Fatalf("%s: %d events, want at least the %d replayed ones", name, len(evs), len(replay))
	}
	// After the replay: the live updates, each publisher's in order.
	pos := make([]int, len(live))
	want := 0
	for _, l := range live {
		want += len(l)
	}
	for i, ev := range evs[len(replay):] {
		pub, ok := livePublisherOf(ev.ID)
		if !ok || pub >= len(live) {
			t.Fatalf("%s: live event %d has id %q, not a live update (duplicate replay?)", name, i, ev.ID)
		}
		if pos[pub] >= len(live[pub]) {
			t.Fatalf("%s: live event %d (%q): publisher %d already delivered all its %d updates (duplicate)",
				name, i, ev.ID, pub, len(live[pub]))
		}
		if w := live[pub][pos[pub]]; ev.ID != w.id || ev.Data != w.data {
			t.Fatalf("%s: live event %d = %q, want %q (publisher %d's next): gap, duplicate or reordering",
				name, i, ev.ID, w.id, pub)
		}
		pos[pub]++
	}
	if got := len(evs) - len(replay); got != want {
		t.Fatalf("%s: %d live events, want %d", name, got, want)
	}
}

// liveID names live update k of publisher pub.
func liveID(pub, k int) string { return fmt.Sprintf("live-%d-%d", pub, k) }

func livePublisherOf(id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, "live-")
	if !ok {
		return 0, false
	}
	p, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(p)
	return n, err == nil
}

func filterStored(ups []*history.Update, keep func(topic string, private bool) bool) []*history.Update {
	var out []*history.Update
	for _, u := range ups {
		if keep(u.Topics[0], u.Private) {
			out = append(out, u)
		}
	}
	return out
}

func filterLive(live [][]liveUpdate, keep func(topic string, private bool) bool) [][]liveUpdate {
	out := make([][]liveUpdate, len(live))
	for p, l := range live {
		for _, u := range l {
			if keep(u.topic, u.private) {
				out[p] = append(out[p], u)
			}
		}
	}
	return out
}

// Issue 3 item 2, docs/protocol.md#subscribe-cursors and #private-delivery: a
// history of 120,000 updates replays from an old and from a recent cursor,
// exactly and in order, with the replay-done comment right after the replayed
// updates; the live updates published while the replay streams follow, with
// no gap and no duplicate. Routing and authorization apply to the replay as
// to live updates.
func TestHistoryLargeReplay(t *testing.T) {
	t.Parallel()
	const n = 120_000
	store := openBolt(t, filepath.Join(t.TempDir(), "hub.db"), history.Retention{})
	start := time.Now()
	stored := fillStore(t, store, n, func(i int) *history.Update {
		id := fmt.Sprintf("h-%07d", i)
		u := &history.Update{ID: id, Topics: []string{fmt.Sprintf("https://example.com/books/%d", i%64)}, Data: "data of " + id}
		if i%10 == 9 {
			u.Topics = []string{fmt.Sprintf("https://example.com/authors/%d", i%5)}
		}
		if i%1000 == 500 {
			u.Data = "first line of " + id + "\n\n  indented third line"
		}
		u.Private = i%7 == 3
		return u
	})
	t.Logf("stored %d updates in %v", n, time.Since(start).Round(time.Millisecond))
	// The readers' pause below must not count as a stuck connection.
	hh := serveStore(t, store, func(c *Config) { c.DispatchTimeout = 60 * time.Second })

	// A: draft-07, an old cursor, a token that grants the books, private too.
	booksTemplate := "https://example.com/books/{id}"
	seesA := func(topic string, _ bool) bool { return strings.HasPrefix(topic, "https://example.com/books/") }
	tokA := legacyToken(t, nil, []string{booksTemplate})
	// B: draft-08, a recent cursor, a token that grants nothing it routes:
	// public books only.
	seesB := func(topic string, private bool) bool { return seesA(topic, private) && !private }
	tokB := hh.accessToken(t, nil, []string{"https://example.com/nothing"})

	cursorA, cursorB := stored[9].ID, stored[n-300].ID
	a := hh.openHist(t, "topic="+url.QueryEscape(booksTemplate)+"&lastEventID="+cursorA, bearer(tokA))
	b := hh.openHist(t, "match_urlpattern="+url.QueryEscape("https://example.com/books/:id"), http.Header{
		"Authorization": {"Bearer " + tokB}, "Last-Event-Id": {cursorB},
	})
	if got := a.resp.Header.Get("Last-Event-ID"); got != cursorA {
		t.Errorf("draft-07 response cursor = %q, want %q", got, cursorA)
	}
	if got := b.resp.Header.Get("Mercure-Last-Event-ID"); got != cursorB {
		t.Errorf("draft-08 response cursor = %q, want %q", got, cursorB)
	}

	// Both subscriptions are live: whatever is published now comes after
	// their replay. Four publishers, books and authors, some private.
	pub := publisher{hh: hh, tok: legacyToken(t, []string{"*"}, nil)}
	lp := startLive(pub, 4, 300, func(p, k int) liveUpdate {
		u := liveUpdate{id: liveID(p, k), topic: fmt.Sprintf("https://example.com/books/live-%d", p), private: k%3 == 0}
		if k%5 == 4 {
			u.topic = "https://example.com/authors/live"
		}
		u.data = "live data " + u.id
		return u
	})
	// Each reader stalls after its first event until 400 live updates were
	// acknowledged, so that they are published while the replay streams.
	type result struct {
		evs []sse.Event
		err error
	}
	read := func(hs *histStream) <-chan result {
		ch := make(chan result, 1)
		go func() {
			evs, err := readUntilSentinel(hs, func() { lp.waitAcked(400) })
			ch <- result{evs, err}
		}()
		return ch
	}
	resA, resB := read(a), read(b)
	live := lp.wait(t)
	if _, err := pub.publish(t.Context(), url.Values{"topic": {sentinelTopic}, "id": {sentinelID}}); err != nil {
		t.Fatal(err)
	}
	ra, rb := <-resA, <-resB
	if ra.err != nil || rb.err != nil {
		t.Fatalf("read: A: %v; B: %v", ra.err, rb.err)
	}
	t.Logf("A: %d events, B: %d events, %v after the fill", len(ra.evs), len(rb.evs), time.Since(start).Round(time.Millisecond))
	checkReplay(t, "old cursor (draft-07)", a, ra.evs, filterStored(stored[10:], seesA), filterLive(live, seesA))
	checkReplay(t, "recent cursor (draft-08)", b, rb.evs, filterStored(stored[n-299:], seesB), filterLive(live, seesB))
}

// Issue 3 item 2: one reconnection replays tens of thousands of updates to a
// reader that is slow at first. Its queue (QueueSize 32) overflows while the
// hub is still writing the replay, so the hub catches it up from the store
// (the resync path); the stream is still exact.
func TestHistorySlowReconnection(t *testing.T) {
	t.Parallel()
	const n = 40_000
	const topic = "https://example.com/feed"
	store := openBolt(t, filepath.Join(t.TempDir(), "hub.db"), history.Retention{})
	// 1 KiB payloads: the replay (40 MB) cannot hide in socket buffers, so
	// the hub's writes stall while the reader pauses.
	pad := strings.Repeat("p", 1024)
	stored := fillStore(t, store, n, func(i int) *history.Update {
		id := fmt.Sprintf("s-%06d", i)
		return &history.Update{ID: id, Topics: []string{topic}, Data: id + pad}
	})
	hh := serveStore(t, store, func(c *Config) {
		c.QueueSize = 32
		// The reader's pause must not count as a stuck connection.
		c.DispatchTimeout = 60 * time.Second
	})
	tok := hh.accessToken(t, []string{"*"}, []string{topic})

	// The first connection reads the start of the history, then drops.
	first := hh.openHist(t, "match="+url.QueryEscape(topic)+"&last_event_id=earliest", bearer(tok))
	const seen = 2500
	for i := range seen {
		ev, err := first.next()
		if err != nil {
			t.Fatalf("first connection, event %d: %v", i, err)
		}
		if ev.ID != stored[i].ID {
			t.Fatalf("first connection, event %d = %q, want %q", i, ev.ID, stored[i].ID)
		}
	}
	last := first.r.LastEventID()
	first.close()

	// The reconnection, as EventSource does it: the Last-Event-ID header.
	again := hh.openHist(t, "match="+url.QueryEscape(topic), http.Header{"Authorization": {"Bearer " + tok}, "Last-Event-Id": {last}})
	if got := again.resp.Header.Get("Mercure-Last-Event-ID"); got != last {
		t.Errorf("response cursor = %q, want %q", got, last)
	}
	pub := publisher{hh: hh, tok: tok}
	lp := startLive(pub, 2, 400, func(p, k int) liveUpdate {
		id := liveID(p, k)
		return liveUpdate{id: id, topic: topic, data: id + " " + pad[:100]}
	})
	type result struct {
		evs []sse.Event
		err error
	}
	res := make(chan result, 1)
	go func() {
		// Stall until far more than QueueSize live updates were dispatched.
		evs, err := readUntilSentinel(again, func() { lp.waitAcked(500) })
		res <- result{evs, err}
	}()
	live := lp.wait(t)
	if _, err := pub.publish(t.Context(), url.Values{"topic": {topic}, "id": {sentinelID}}); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	checkReplay(t, "reconnection", again, r.evs, stored[seen:], live)
	if got := scrape(t, hh.h)["mercure_slow_subscriber_resyncs_total"]; got < 1 {
		t.Errorf("mercure_slow_subscriber_resyncs_total = %v: the slow reader never overflowed its queue, the test proves nothing", got)
	}
}

// Issue 3 item 2: history replays right after a restart, before any new
// publish, from a cursor given before the restart; "earliest" replays all.
func TestHistoryReplayAfterRestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hub.db")
	const topic = "https://example.com/restart"
	tok := legacyToken(t, []string{topic}, []string{topic})

	before := serveStore(t, openBolt(t, path, history.Retention{}), nil)
	pub := publisher{hh: before, tok: tok}
	var ids []string
	for i := range 50 {
		id, err := pub.publish(t.Context(), url.Values{"topic": {topic}, "data": {fmt.Sprintf("before restart %d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	before.stop()

	after := serveStore(t, openBolt(t, path, history.Retention{}), nil)
	check := func(name string, hs *histStream, want []string) {
		t.Helper()
		for i, w := range want {
			ev, err := hs.next()
			if err != nil {
				t.Fatalf("%s: event %d: %v", name, i, err)
			}
			if ev.ID != w {
				t.Fatalf("%s: event %d = %q, want %q", name, i, ev.ID, w)
			}
		}
	}
	fromCursor := after.openHist(t, "topic="+url.QueryEscape(topic), http.Header{"Authorization": {"Bearer " + tok}, "Last-Event-Id": {ids[19]}})
	if got := fromCursor.resp.Header.Get("Last-Event-ID"); got != ids[19] {
		t.Errorf("response cursor after restart = %q, want %q (the cursor was found)", got, ids[19])
	}
	check("cursor", fromCursor, ids[20:])
	fromEarliest := after.openHist(t, "topic="+url.QueryEscape(topic)+"&lastEventID=earliest", bearer(tok))
	check("earliest", fromEarliest, ids)
	// An empty cursor asks for the hub's position without a replay: right
	// after the restart it is the newest stored update, not "earliest"
	// (resuming from "earliest" would receive the whole history again).
	for _, c := range []struct{ query, header string }{
		{"topic=" + url.QueryEscape(topic) + "&lastEventID=", "Last-Event-ID"},
		{"match=" + url.QueryEscape(topic) + "&last_event_id=", "Mercure-Last-Event-ID"},
	} {
		tok := tok
		if c.header != "Last-Event-ID" {
			tok = after.accessToken(t, nil, []string{topic})
		}
		empty := after.openHist(t, c.query, bearer(tok))
		if got := empty.resp.Header.Get(c.header); got != ids[len(ids)-1] {
			t.Errorf("%s: response cursor for an empty cursor after restart = %q, want the newest id %q", c.query, got, ids[len(ids)-1])
		}
		empty.close()
	}

	// Then a new publish arrives live, after the replay-done comment.
	pub = publisher{hh: after, tok: tok}
	id, err := pub.publish(t.Context(), url.Values{"topic": {topic}, "data": {"after restart"}})
	if err != nil {
		t.Fatal(err)
	}
	check("cursor, live", fromCursor, []string{id})
	check("earliest, live", fromEarliest, []string{id})
	for _, c := range []struct {
		name   string
		hs     *histStream
		wantAt int
	}{{"cursor", fromCursor, 30}, {"earliest", fromEarliest, 50}} {
		if c.hs.dones != 1 || c.hs.doneAt != c.wantAt {
			t.Errorf("%s: replay-done comment seen %d times after event %d, want once after %d", c.name, c.hs.dones, c.hs.doneAt, c.wantAt)
		}
	}
}

// Issue 3 items 1, 2 and 4, docs/protocol.md#subscribe-cursors: with retention of
// 100 updates (--history-size), on the bolt and the memory store alike, the
// history stays at 100 updates (Len, mercure_history_updates, what replays);
// an evicted or unknown cursor answers the response cursor "earliest" and
// replays the whole retained history, so the client can tell what was lost
// and nothing else is skipped; a retained cursor replays what follows it.
func TestHistoryRetentionAndEvictedCursor(t *testing.T) {
	t.Parallel()
	const keep = 100
	retention := history.Retention{MaxUpdates: keep}
	stores := map[string]func(t *testing.T) history.Store{
		"bolt":   func(t *testing.T) history.Store { return openBolt(t, filepath.Join(t.TempDir(), "hub.db"), retention) },
		"memory": func(*testing.T) history.Store { return history.NewMemory(retention, nil) },
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			hh := serveStore(t, open(t), nil)
			const topic = "https://example.com/retained"
			tok := legacyToken(t, []string{topic}, []string{topic})
			pub := publisher{hh: hh, tok: tok}
			var ids []string
			publish := func(count int) {
				t.Helper()
				for range count {
					id, err := pub.publish(t.Context(), url.Values{"topic": {topic}, "data": {fmt.Sprintf("update %d", len(ids))}})
					if err != nil {
						t.Fatal(err)
					}
					ids = append(ids, id)
				}
			}
			checkSize := func() {
				t.Helper()
				l, ok := hh.store.(interface{ Len() uint64 })
				if !ok {
					t.Fatalf("%T has no Len", hh.store)
				}
				if got := l.Len(); got != keep {
					t.Errorf("after %d publishes Len = %d, want %d", len(ids), got, keep)
				}
				if got := scrape(t, hh.h)["mercure_history_updates"]; got != keep {
					t.Errorf("after %d publishes mercure_history_updates = %v, want %d", len(ids), got, keep)
				}
			}
			publish(250)
			checkSize()
			// The bound holds as the history keeps growing.
			publish(150)
			checkSize()
			retained := ids[len(ids)-keep:]

			type gen struct {
				name, query, cursorParam, respHeader string
				hdr                                  http.Header
			}
			gens := []gen{
				{"draft-07", "topic=" + url.QueryEscape(topic), "lastEventID", "Last-Event-ID", bearer(tok)},
				{"draft-08", "match=" + url.QueryEscape(topic), "last_event_id", "Mercure-Last-Event-ID", bearer(hh.accessToken(t, nil, []string{topic}))},
			}
			cases := []struct {
				name, cursor, wantCursor string
				want                     []string
			}{
				{"earliest", "earliest", "earliest", retained},
				{"oldest evicted", ids[0], "earliest", retained},
				{"newest evicted", ids[len(ids)-keep-1], "earliest", retained},
				{"unknown", "urn:uuid:never-published", "earliest", retained},
				{"oldest retained", retained[0], retained[0], retained[1:]},
				{"newest", ids[len(ids)-1], ids[len(ids)-1], nil},
			}
			var streams []*histStream
			for _, g := range gens {
				for _, c := range cases {
					hs := hh.openHist(t, g.query+"&"+g.cursorParam+"="+url.QueryEscape(c.cursor), g.hdr)
					if got := hs.resp.Header.Get(g.respHeader); got != c.wantCursor {
						t.Errorf("%s, %s: %s = %q, want %q", g.name, c.name, g.respHeader, got, c.wantCursor)
					}
					for i, w := range c.want {
						ev, err := hs.next()
						if err != nil {
							t.Fatalf("%s, %s: event %d: %v", g.name, c.name, i, err)
						}
						if ev.ID != w {
							t.Fatalf("%s, %s: event %d = %q, want %q", g.name, c.name, i, ev.ID, w)
						}
					}
					streams = append(streams, hs)
				}
			}
			// Every stream is now live: one more update reaches each of
			// them right after its replay-done comment.
			publish(1)
			for i, hs := range streams {
				g, c := gens[i/len(cases)], cases[i%len(cases)]
				ev, err := hs.next()
				if err != nil {
					t.Fatalf("%s, %s: live event: %v", g.name, c.name, err)
				}
				if ev.ID != ids[len(ids)-1] {
					t.Errorf("%s, %s: live event = %q, want %q", g.name, c.name, ev.ID, ids[len(ids)-1])
				}
				if hs.dones != 1 || hs.doneAt != len(c.want) {
					t.Errorf("%s, %s: replay-done comment seen %d times after event %d, want once after %d",
						g.name, c.name, hs.dones, hs.doneAt, len(c.want))
				}
			}
			checkSize()
		})
	}
}

// BenchmarkDurablePublish measures publishing through the HTTP hub on the
// bolt store: each 200 means the update was fsynced and dispatched. Issue 3's
// target with 16 concurrent publishers: at least 10,000 updates/s, p99 at
// most 10 ms.
func BenchmarkDurablePublish(b *testing.B) {
	for _, publishers := range []int{1, 16} {
		b.Run(fmt.Sprintf("publishers=%d", publishers), func(b *testing.B) {
			hh := serveStore(b, openBolt(b, filepath.Join(b.TempDir(), "hub.db"), history.Retention{}), nil)
			// A subscriber to every topic, as a hub in use has.
			sub := hh.openHist(b, "match=*", bearer(hh.accessToken(b, nil, []string{"*"})))
			go func() {
				for {
					if _, err := sub.next(); err != nil {
						return
					}
				}
			}()
			pub := publisher{hh: hh, tok: legacyToken(b, []string{"*"}, nil)}
			form := url.Values{"topic": {"https://example.com/books/1"}, "data": {strings.Repeat("x", 200)}}
			lat := make([][]time.Duration, publishers)
			var next atomic.Int64
			var wg sync.WaitGroup
			var failed atomic.Bool
			b.ResetTimer()
			start := time.Now()
			for p := range publishers {
				wg.Go(func() {
					for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
						t0 := time.Now()
						if _, err := pub.publish(context.Background(), form); err != nil {
							if failed.CompareAndSwap(false, true) {
								b.Error(err)
							}
							return
						}
						lat[p] = append(lat[p], time.Since(t0))
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			all := slices.Concat(lat...)
			if len(all) == 0 {
				return
			}
			slices.Sort(all)
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "updates/s")
			b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
			sub.close()
		})
	}
}

// BenchmarkReplay measures one reconnection from the oldest cursor in a
// history of -hub.replay-size updates (default 200,000; 1,000,000 for the
// issue's figure): the time to the first event (cursor lookup, first read
// of the store, first write) and the replay rate through HTTP, read by
// internal/sse. Issue 3's targets: first event within 10 ms, at least
// 250,000 events/s.
func BenchmarkReplay(b *testing.B) {
	n := *replayBenchSize
	store := openBolt(b, filepath.Join(b.TempDir(), "hub.db"), history.Retention{})
	start := time.Now()
	data := strings.Repeat("d", 100)
	stored := fillStore(b, store, n, func(i int) *history.Update {
		return &history.Update{ID: fmt.Sprintf("urn:uuid:%08x-bench", uint32(i)*2654435761), Topics: []string{fmt.Sprintf("https://example.com/books/%d", i%1000)}, Data: data}
	})
	b.Logf("stored %d updates in %v", n, time.Since(start).Round(time.Millisecond))
	hh := serveStore(b, store, nil)
	tok := hh.accessToken(b, nil, []string{"*"})
	query := "match_urlpattern=" + url.QueryEscape("https://example.com/books/:id") + "&last_event_id=" + url.QueryEscape(stored[0].ID)
	var first, total time.Duration
	var events int
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		hs := hh.openHist(b, query, bearer(tok))
		hs.endAtDone = true
		ev, err := hs.next()
		if err != nil {
			b.Fatal(err)
		}
		first += time.Since(t0)
		if ev.ID != stored[1].ID {
			b.Fatalf("first event %q, want %q", ev.ID, stored[1].ID)
		}
		for {
			if _, err := hs.next(); err != nil {
				if hs.dones > 0 {
					break
				}
				b.Fatal(err)
			}
		}
		total += time.Since(t0)
		if hs.doneAt != n-1 {
			b.Fatalf("replayed %d events, want %d", hs.doneAt, n-1)
		}
		events += hs.doneAt
		hs.close()
	}
	b.StopTimer()
	loops := float64(b.N)
	b.ReportMetric(float64(first.Microseconds())/1000/loops, "first-event-ms")
	b.ReportMetric(float64(events)/total.Seconds(), "events/s")
}
