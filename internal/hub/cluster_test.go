package hub

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/history/redisstore"
	"github.com/mercurectl/mercurectl/internal/history/redisstore/redistest"
	"github.com/mercurectl/mercurectl/internal/sse"
	"github.com/mercurectl/mercurectl/internal/token"
)

// Cluster mode: several hubs, each with its own HTTP server, share one Redis
// stream through the Redis history store (issue 6). These tests start a real
// redis-server (redistest: skipped when it is absent, a failure when
// CI=true).

// clusterResource is the resource identifier that every node of a test
// cluster pins, as the nodes behind one load balancer do: a draft-08 access
// token carries it as its aud, and relative draft-08 topics resolve against
// it, so both must not depend on which node answers.
const clusterResource = "https://hub.example.com/.well-known/mercure"

// testCluster is one redis-server and the settings of the nodes on it.
type testCluster struct {
	redis  *redistest.Server
	prefix string
	mod    func(*Config)
	n      int
}

// clusterNode is one hub of a test cluster, served over real HTTP.
type clusterNode struct {
	*testHub
	name     string
	stopOnce sync.Once
}

// newTestCluster starts a redis-server and n hubs on it. mod, when not nil,
// adjusts every node's Config.
func newTestCluster(tb testing.TB, n int, mod func(*Config)) (*testCluster, []*clusterNode) {
	tb.Helper()
	c := &testCluster{mod: mod}
	c.start(tb)
	nodes := make([]*clusterNode, n)
	for i := range nodes {
		nodes[i] = c.addNode(tb, nil)
	}
	return c, nodes
}

// start starts the cluster's redis-server; extra are redis-server arguments.
func (c *testCluster) start(tb testing.TB, extra ...string) {
	tb.Helper()
	c.redis = redistest.Start(tb, "", extra...)
	c.prefix = "mercure-test"
}

// addNode starts one more hub on the cluster's stream. wrap, when not nil,
// wraps the node's store (to observe or delay it).
func (c *testCluster) addNode(tb testing.TB, wrap func(*redisstore.Store) history.Store) *clusterNode {
	tb.Helper()
	name := string(rune('A' + c.n))
	c.n++
	logger := slog.New(slog.NewTextHandler(newTBLog(tb, name), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(tb.Context(), 10*time.Second)
	defer cancel()
	rs, err := redisstore.Open(ctx, c.redis.DSN(), redisstore.Options{Stream: c.prefix, Logger: logger})
	if err != nil {
		tb.Fatalf("node %s: %v", name, err)
	}
	var store history.Store = rs
	if wrap != nil {
		store = wrap(rs)
	}
	v, err := token.NewVerifier(token.VerifierConfig{Key: testKey})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Store, cfg.PublisherVerifier, cfg.SubscriberVerifier = store, v, v
	cfg.ResourceIdentifier, cfg.Logger = clusterResource, logger
	testConfig(&cfg)
	if c.mod != nil {
		c.mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		_ = store.Close()
		tb.Fatalf("node %s: %v", name, err)
	}
	srv := httptest.NewServer(h)
	n := &clusterNode{testHub: &testHub{h: h, srv: srv, url: srv.URL + Path, store: store}, name: name}
	tb.Cleanup(n.stop)
	return n
}

// stop shuts the node down gracefully, as SIGTERM does in serve.
func (n *clusterNode) stop() {
	n.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.h.Shutdown(ctx)
		n.srv.CloseClientConnections()
		n.srv.Close()
		_ = n.h.Close()
		_ = n.store.Close()
	})
}

// crash ends the node as a killed process would: its connections to Redis
// and to its clients drop at once, without Shutdown (so nothing more is
// published on its behalf).
func (n *clusterNode) crash() {
	n.stopOnce.Do(func() {
		_ = n.srv.Listener.Close()
		_ = n.store.Close()
		n.srv.CloseClientConnections()
		n.srv.Close()
		_ = n.h.Close()
	})
}

// tbLog writes log lines to the test's log until the test ends, and drops
// them afterwards (a late line from a background goroutine must not panic).
type tbLog struct {
	mu   sync.Mutex
	tb   testing.TB
	name string
	done bool
}

func newTBLog(tb testing.TB, name string) *tbLog {
	l := &tbLog{tb: tb, name: name}
	tb.Cleanup(func() {
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return l
}

func (l *tbLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.tb.Logf("node %s: %s", l.name, strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// clusterToken is a draft-08 access token valid on every node.
func clusterToken(tb testing.TB, publish, subscribe []string) string {
	return mint(tb, token.MintOptions{Format: token.FormatAccessToken, Publish: publish, Subscribe: subscribe, Audience: clusterResource})
}

// tryPublish posts form and returns the status and body; unlike publish it
// may run on any goroutine (it never stops the test) and is bounded by d.
func tryPublish(ctx context.Context, hubURL, tok string, form url.Values, d time.Duration) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hubURL, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// nextIDs reads n events and returns their ids.
func (s *stream) nextIDs(tb testing.TB, n int) []string {
	tb.Helper()
	ids := make([]string, 0, n)
	for range n {
		ids = append(ids, s.next(tb).ID)
	}
	return ids
}

// alive fails tb if the stream has ended.
func (s *stream) alive(tb testing.TB) {
	tb.Helper()
	select {
	case err := <-s.errc:
		tb.Fatalf("stream ended: %v", err)
	default:
	}
}

// heartbeat waits for a heartbeat written after the call: the connection is
// open and the node still writes to it.
func (s *stream) heartbeat(tb testing.TB) {
	tb.Helper()
	for drained := false; !drained; {
		select {
		case <-s.comments:
		default:
			drained = true
		}
	}
	s.waitComment(tb, "")
	s.alive(tb)
}

// replayAll subscribes on n from the start of the history, reads the replay
// up to its end marker, and returns the ids replayed (the selector must match
// every update of the test).
func (n *clusterNode) replayAll(tb testing.TB, query, tok string) []string {
	tb.Helper()
	s := n.mustSubscribe(tb, query, http.Header{"Authorization": {"Bearer " + tok}, "Last-Event-Id": {"earliest"}})
	defer s.cancel()
	var ids []string
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				tb.Fatalf("node %s: replay ended: %v", n.name, <-s.errc)
			}
			ids = append(ids, ev.ID)
		case c := <-s.comments:
			if strings.TrimSpace(c) == sse.ReplayDoneComment {
				// The marker follows the last replayed event on the wire, and
				// the reader delivers in wire order, but through two
				// channels: take any event already decoded.
				for {
					select {
					case ev, ok := <-s.events:
						if ok {
							ids = append(ids, ev.ID)
							continue
						}
					default:
					}
					return ids
				}
			}
		case <-deadline:
			tb.Fatalf("node %s: replay did not end within 10s (%d events so far)", n.name, len(ids))
		}
	}
}

// An update published on any node reaches the subscribers of every node, in
// both protocol generations, with every field intact; private updates only
// reach authorised subscribers, wherever they are connected
// (docs/protocol.md#event-stream, #alternate-topics, #private-updates and
// #private-delivery).
func TestClusterFanOut(t *testing.T) {
	t.Parallel()
	_, nodes := newTestCluster(t, 3, nil)
	const topic = "https://example.com/books/1"
	legacy := legacyToken(t, []string{"*"}, []string{"*"})
	access := clusterToken(t, []string{"*"}, []string{"*"})
	narrow := legacyToken(t, nil, []string{"https://example.com/other"})

	type subs struct{ s07, s08, denied *stream }
	per := make([]subs, len(nodes))
	for i, n := range nodes {
		per[i] = subs{
			s07:    n.mustSubscribe(t, "topic="+url.QueryEscape("https://example.com/books/{id}"), bearer(legacy)),
			s08:    n.mustSubscribe(t, "match="+url.QueryEscape(topic), bearer(access)),
			denied: n.mustSubscribe(t, "topic="+url.QueryEscape(topic), bearer(narrow)),
		}
	}

	// One update from each node: draft-07 publisher on A, draft-08 on B
	// (private), draft-07 on C.
	a, b, c := nodes[0], nodes[1], nodes[2]
	id1 := a.mustPublish(t, legacy, url.Values{"topic": {topic}, "data": {"line 1\nline 2"}, "type": {"greeting"}, "retry": {"1500"}, "id": {"from-a"}})
	id2 := b.mustPublish(t, access, url.Values{"topic": {"https://example.com/alt", topic}, "data": {"secret"}, "private": {"on"}})
	id3 := c.mustPublish(t, legacy, url.Values{"topic": {topic}, "data": {"from c"}})
	if id1 != "from-a" || !strings.HasPrefix(id2, "urn:uuid:") || !strings.HasPrefix(id3, "urn:uuid:") {
		t.Fatalf("ids %q %q %q", id1, id2, id3)
	}

	for i, s := range per {
		for _, st := range []*stream{s.s07, s.s08} {
			ev := st.next(t)
			if ev.ID != id1 || ev.Data != "line 1\nline 2" || ev.Type != "greeting" || !ev.HasRetry || ev.Retry != 1500 {
				t.Errorf("node %s: first event = %+v", nodes[i].name, ev)
			}
			if ev := st.next(t); ev.ID != id2 || ev.Data != "secret" {
				t.Errorf("node %s: authorised subscriber, second event = %+v, want the private update %s", nodes[i].name, ev, id2)
			}
			if ev := st.next(t); ev.ID != id3 || ev.Data != "from c" {
				t.Errorf("node %s: third event = %+v", nodes[i].name, ev)
			}
		}
		if got := s.denied.nextIDs(t, 2); !slices.Equal(got, []string{id1, id3}) {
			t.Errorf("node %s: subscriber not authorised for the private update got %q, want %q", nodes[i].name, got, []string{id1, id3})
		}
	}
	for _, s := range per {
		for _, st := range []*stream{s.s07, s.s08, s.denied} {
			st.none(t, 20*time.Millisecond)
		}
	}
}

// A Last-Event-ID issued by any node replays exactly on every other node:
// the updates after it and nothing else, then the end-of-replay marker, then
// live updates from any node (docs/protocol.md#subscribe-cursors).
func TestClusterReplayFromAnyNode(t *testing.T) {
	t.Parallel()
	_, nodes := newTestCluster(t, 3, nil)
	legacy := legacyToken(t, []string{"*"}, []string{"*"})
	access := clusterToken(t, []string{"*"}, []string{"*"})
	const topic = "https://example.com/t"

	var ids []string
	for i := range 12 {
		n := nodes[i%len(nodes)]
		ids = append(ids, n.mustPublish(t, legacy, url.Values{"topic": {topic}, "data": {fmt.Sprint(i)}}))
	}
	live := 0
	for ni, n := range nodes {
		for _, k := range []int{ni, 4 + ni, len(ids) - 1} { // cursors issued by every node
			cursor := ids[k]
			s07 := n.mustSubscribe(t, "topic="+url.QueryEscape(topic)+"&lastEventID="+url.QueryEscape(cursor), bearer(legacy))
			s08 := n.mustSubscribe(t, "match="+url.QueryEscape(topic), http.Header{"Authorization": {"Bearer " + access}, "Last-Event-Id": {cursor}})
			if got := s07.resp.Header.Get("Last-Event-ID"); got != cursor {
				t.Errorf("node %s, draft-07: Last-Event-ID = %q, want %q", n.name, got, cursor)
			}
			if got := s08.resp.Header.Get("Mercure-Last-Event-ID"); got != cursor {
				t.Errorf("node %s, draft-08: Mercure-Last-Event-ID = %q, want %q", n.name, got, cursor)
			}
			want := ids[k+1:]
			for _, s := range []*stream{s07, s08} {
				if got := s.nextIDs(t, len(want)); !slices.Equal(got, want) {
					t.Fatalf("node %s, cursor %d: replay %q, want %q", n.name, k, got, want)
				}
				s.waitComment(t, sse.ReplayDoneComment)
			}
			// Live, from another node.
			other := nodes[(ni+1+live)%len(nodes)]
			live++
			id := other.mustPublish(t, access, url.Values{"topic": {topic}, "data": {"live"}})
			ids = append(ids, id)
			for _, s := range []*stream{s07, s08} {
				if ev := s.next(t); ev.ID != id {
					t.Fatalf("node %s, cursor %d: live event %q, want %q (published on %s)", n.name, k, ev.ID, id, other.name)
				}
				s.none(t, 10*time.Millisecond)
				s.cancel()
			}
		}
	}
}

// Replay and live join without gap or duplicate on a node while other nodes
// publish, also for a subscriber too slow for its live queue (it catches up
// from Redis).
func TestClusterReplayThenLiveUnderLoad(t *testing.T) {
	t.Parallel()
	_, nodes := newTestCluster(t, 2, func(c *Config) { c.QueueSize = 8 })
	tok := legacyToken(t, []string{"*"}, []string{"*"})
	first := nodes[0].mustPublish(t, tok, url.Values{"topic": {"t"}, "data": {"first"}})

	const n = 300
	var (
		mu    sync.Mutex
		acked []string
	)
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		defer close(errc)
		for i := range n {
			if i == 20 {
				close(started)
			}
			id := fmt.Sprint("u", i)
			status, body, err := tryPublish(t.Context(), nodes[i%2].url, tok, url.Values{"topic": {"t"}, "id": {id}}, 5*time.Second)
			if err != nil {
				errc <- fmt.Errorf("publish %s: %w", id, err)
				return
			}
			if status != http.StatusOK {
				errc <- fmt.Errorf("publish %s: %d %q", id, status, body)
				return
			}
			mu.Lock()
			acked = append(acked, id)
			mu.Unlock()
		}
	}()
	<-started
	// Published sequentially, so acknowledgement order is stream order.
	s := nodes[1].mustSubscribe(t, "topic=t&lastEventID="+url.QueryEscape(first), bearer(tok))
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got := s.nextIDs(t, n); !slices.Equal(got, acked) {
		for i := range got {
			if got[i] != acked[i] {
				t.Fatalf("event %d: got %q, want %q", i, got[i], acked[i])
			}
		}
	}
	s.none(t, 50*time.Millisecond)
}

// laggingStore holds back the deliveries of one node's reader while held, as
// a node whose reader is behind the stream would be (a slow link to Redis,
// a long pause). Appends on other nodes still succeed.
type laggingStore struct {
	*redisstore.Store
	mu   sync.Mutex
	gate chan struct{} // non-nil while held
}

func (s *laggingStore) Start(sink history.Sink) error {
	return s.Store.Start(func(u *history.Update) {
		s.mu.Lock()
		gate := s.gate
		s.mu.Unlock()
		if gate != nil {
			<-gate
		}
		sink(u)
	})
}

func (s *laggingStore) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		s.gate = make(chan struct{})
	}
}

func (s *laggingStore) resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

// A client that saw an update on node A (its publisher got the
// acknowledgement) and reconnects to node B before B's reader has delivered
// that update gets neither a duplicate nor a gap: the updates up to its
// cursor are not sent again when B's reader catches up.
func TestClusterCursorAheadOfNode(t *testing.T) {
	t.Parallel()
	c, nodes := newTestCluster(t, 1, nil)
	a := nodes[0]
	var lag *laggingStore
	b := c.addNode(t, func(s *redisstore.Store) history.Store {
		lag = &laggingStore{Store: s}
		return lag
	})
	t.Cleanup(lag.resume) // before the node's store closes (cleanups run last first)
	tok := legacyToken(t, []string{"*"}, []string{"*"})

	for _, gen := range []struct {
		name, query string
		hdr         func(cursor string) http.Header
	}{
		{"draft-07", "topic=t", func(cursor string) http.Header {
			return http.Header{"Authorization": {"Bearer " + tok}, "Last-Event-Id": {cursor}}
		}},
		{"draft-08", "match=t", func(cursor string) http.Header {
			return http.Header{"Authorization": {"Bearer " + clusterToken(t, nil, []string{"*"})}, "Last-Event-Id": {cursor}}
		}},
	} {
		t.Run(gen.name, func(t *testing.T) {
			a.mustPublish(t, tok, url.Values{"topic": {"t"}})
			lag.hold()
			var ids []string
			for range 3 {
				ids = append(ids, a.mustPublish(t, tok, url.Values{"topic": {"t"}}))
			}
			// The client saw ids[1] through A; B has delivered at most
			// the update before ids[0].
			s := b.mustSubscribe(t, gen.query, gen.hdr(ids[1]))
			lag.resume()
			s.waitComment(t, sse.ReplayDoneComment)
			if ev := s.next(t); ev.ID != ids[2] {
				t.Fatalf("first event after cursor %s: %q, want %q (updates up to the cursor sent again)", ids[1], ev.ID, ids[2])
			}
			next := a.mustPublish(t, tok, url.Values{"topic": {"t"}})
			if ev := s.next(t); ev.ID != next {
				t.Fatalf("live event %q, want %q", ev.ID, next)
			}
			s.none(t, 20*time.Millisecond)
		})
	}
}

// A node that dies takes nothing with it: the other nodes keep serving their
// subscribers and publishers, and the history, including what was published
// on the dead node, is intact on every survivor.
func TestClusterNodeCrash(t *testing.T) {
	t.Parallel()
	_, nodes := newTestCluster(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	tok := legacyToken(t, []string{"*"}, []string{"*"})
	subs := make([]*stream, len(nodes))
	for i, n := range nodes {
		subs[i] = n.mustSubscribe(t, "topic=t", bearer(tok))
	}
	var acked []string
	for i := range 6 {
		acked = append(acked, nodes[i%3].mustPublish(t, tok, url.Values{"topic": {"t"}, "data": {fmt.Sprint(i)}}))
	}
	for i, s := range subs {
		if got := s.nextIDs(t, len(acked)); !slices.Equal(got, acked) {
			t.Fatalf("node %s before the crash: %q, want %q", nodes[i].name, got, acked)
		}
	}

	c.crash()
	subs[2].closed(t, 5*time.Second)

	for i, n := range []*clusterNode{a, b, a, b} {
		acked = append(acked, n.mustPublish(t, tok, url.Values{"topic": {"t"}, "data": {fmt.Sprint("after ", i)}}))
	}
	for i, s := range subs[:2] {
		if got := s.nextIDs(t, 4); !slices.Equal(got, acked[6:]) {
			t.Fatalf("node %s after the crash: %q, want %q", nodes[i].name, got, acked[6:])
		}
		s.alive(t)
	}
	for _, n := range []*clusterNode{a, b} {
		if got := n.replayAll(t, "topic=t", tok); !slices.Equal(got, acked) {
			t.Errorf("node %s: history after the crash %q, want %q", n.name, got, acked)
		}
	}
}

// While Redis is down, publishes get 503 with a reason on every node (never
// a false 200), open subscriptions stay connected (heartbeats keep flowing),
// and a cursor cannot be resolved (503) while a subscription without one
// still opens. When Redis returns, publishing resumes and every subscriber
// receives the later updates; the history holds exactly what was
// acknowledged.
func TestClusterRedisOutage(t *testing.T) {
	t.Parallel()
	c, nodes := newTestCluster(t, 2, func(c *Config) { c.Heartbeat = 100 * time.Millisecond })
	tok := legacyToken(t, []string{"*"}, []string{"*"})
	subs := make([]*stream, len(nodes))
	for i, n := range nodes {
		subs[i] = n.mustSubscribe(t, "topic=t", bearer(tok))
	}
	acked := []string{nodes[0].mustPublish(t, tok, url.Values{"topic": {"t"}, "id": {"before"}})}
	for _, s := range subs {
		if ev := s.next(t); ev.ID != "before" {
			t.Fatalf("event %q, want before", ev.ID)
		}
	}

	c.redis.Kill()
	for _, n := range nodes {
		for i := range 3 {
			id := fmt.Sprintf("down-%s-%d", n.name, i)
			status, body, err := tryPublish(t.Context(), n.url, tok, url.Values{"topic": {"t"}, "id": {id}}, 5*time.Second)
			if err != nil {
				t.Fatalf("node %s: publish while Redis is down: %v", n.name, err)
			}
			if status != http.StatusServiceUnavailable || !strings.Contains(body, "history store unavailable") {
				t.Fatalf("node %s: publish while Redis is down: %d %q, want 503 with a reason", n.name, status, body)
			}
		}
		if _, resp := n.subscribe(t, "topic=t&lastEventID=before", bearer(tok)); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("node %s: subscription with a cursor while Redis is down: %d, want 503", n.name, resp.StatusCode)
		}
		fresh := n.mustSubscribe(t, "topic=t", bearer(tok))
		fresh.cancel()
	}
	for _, s := range subs {
		s.heartbeat(t)
	}

	c.redis.Restart()
	// The first publish may meet a pooled connection broken by the restart:
	// it must then fail (503), never succeed falsely. Each node publishes
	// until it succeeds.
	for _, n := range nodes {
		deadline := time.Now().Add(10 * time.Second)
		for i := 0; ; i++ {
			id := fmt.Sprintf("after-%s-%d", n.name, i)
			status, body, err := tryPublish(t.Context(), n.url, tok, url.Values{"topic": {"t"}, "id": {id}}, 5*time.Second)
			if err == nil && status == http.StatusOK {
				acked = append(acked, id)
				break
			}
			if err != nil || status != http.StatusServiceUnavailable {
				t.Fatalf("node %s: publish after the restart: %d %q %v", n.name, status, body, err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s: publishes still fail 10s after Redis returned: %q", n.name, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i, s := range subs {
		if got := s.nextIDs(t, len(acked)-1); !slices.Equal(got, acked[1:]) {
			t.Fatalf("node %s: after the restart %q, want %q", nodes[i].name, got, acked[1:])
		}
		s.none(t, 20*time.Millisecond)
	}
	for _, n := range nodes {
		if got := n.replayAll(t, "topic=t", tok); !slices.Equal(got, acked) {
			t.Errorf("node %s: history %q, want exactly the acknowledged %q", n.name, got, acked)
		}
	}
}

// No acknowledged update is lost when redis-server is killed and restarted
// under concurrent publishing on two nodes: every reply is 200 or 503; the
// subscribers that stayed connected through the outage receive the history's
// exact sequence; the history holds every acknowledged update, in the order
// each publisher got its acknowledgements, and nothing else except updates
// whose publish failed ambiguously (the connection broke after Redis ran the
// append, see the redisstore package documentation).
func TestClusterRedisRestartUnderLoad(t *testing.T) {
	t.Parallel()
	c, nodes := newTestCluster(t, 2, nil)
	tok := legacyToken(t, []string{"*"}, []string{"*"})
	subs := make([]*stream, len(nodes))
	for i, n := range nodes {
		subs[i] = n.mustSubscribe(t, "topic=t", bearer(tok))
	}

	const publishers = 4
	type result struct {
		acked, failed []string
		err           error
	}
	results := make([]result, publishers)
	var acks atomic.Int64
	// waitAcks waits for n more acknowledged publishes.
	waitAcks := func(what string, n int64) {
		t.Helper()
		target := acks.Load() + n
		deadline := time.Now().Add(10 * time.Second)
		for acks.Load() < target {
			if time.Now().After(deadline) {
				t.Fatalf("no %d acknowledged publishes %s within 10s", n, what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopPublishers := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopPublishers()
	for p := range publishers {
		n := nodes[p%len(nodes)]
		wg.Go(func() {
			r := &results[p]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("p%d-%d", p, i)
				status, body, err := tryPublish(t.Context(), n.url, tok, url.Values{"topic": {"t"}, "id": {id}}, 15*time.Second)
				switch {
				case err != nil:
					r.err = fmt.Errorf("publish %s on %s: %w", id, n.name, err)
					return
				case status == http.StatusOK:
					r.acked = append(r.acked, id)
					acks.Add(1)
				case status == http.StatusServiceUnavailable:
					r.failed = append(r.failed, id)
					time.Sleep(5 * time.Millisecond)
				default:
					r.err = fmt.Errorf("publish %s on %s: %d %q", id, n.name, status, body)
					return
				}
			}
		})
	}
	waitAcks("before the kill", 50)
	c.redis.Kill()
	// Publishers whose update Redis stored just before it died wait for
	// their node's reader to deliver it (they are acknowledged once Redis
	// returns); new publishes are refused at once.
	var probes []string
	for _, n := range nodes {
		id := "probe-" + n.name
		status, body, err := tryPublish(t.Context(), n.url, tok, url.Values{"topic": {"t"}, "id": {id}}, 5*time.Second)
		if err != nil || status != http.StatusServiceUnavailable {
			t.Fatalf("node %s: publish while Redis is down: %d %q %v, want 503", n.name, status, body, err)
		}
		probes = append(probes, id)
	}
	c.redis.Restart()
	waitAcks("after the restart", 50)
	stopPublishers()

	ackedSet := make(map[string]bool)
	failedSet := make(map[string]bool)
	for _, id := range probes {
		failedSet[id] = true
	}
	total, failures := 0, len(probes)
	for p, r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		total += len(r.acked)
		failures += len(r.failed)
		for _, id := range r.acked {
			ackedSet[id] = true
		}
		for _, id := range r.failed {
			failedSet[id] = true
		}
		if len(r.acked) == 0 {
			t.Errorf("publisher %d: no publish succeeded", p)
		}
	}
	t.Logf("%d publishes acknowledged, %d refused with 503", total, failures)

	hist := nodes[0].replayAll(t, "topic=t", tok)
	if got := nodes[1].replayAll(t, "topic=t", tok); !slices.Equal(got, hist) {
		t.Fatalf("the nodes replay different histories:\n%q\n%q", hist, got)
	}
	pos := make(map[string]int, len(hist))
	for i, id := range hist {
		if _, dup := pos[id]; dup {
			t.Errorf("id %s stored twice", id)
		}
		pos[id] = i
		if !ackedSet[id] && !failedSet[id] {
			t.Errorf("history holds %s, which nobody published", id)
		}
	}
	for p, r := range results {
		last := -1
		for _, id := range r.acked {
			i, ok := pos[id]
			if !ok {
				t.Errorf("acknowledged update %s is not in the history", id)
				continue
			}
			if i < last {
				t.Errorf("publisher %d: %s is stored before an update acknowledged earlier", p, id)
			}
			last = i
		}
	}
	for i, s := range subs {
		if got := s.nextIDs(t, len(hist)); !slices.Equal(got, hist) {
			t.Errorf("node %s: the subscriber connected through the outage received %d updates that differ from the history (%d)", nodes[i].name, len(got), len(hist))
		}
		s.none(t, 20*time.Millisecond)
	}
}

// Subscription events go through the stream, so they are cluster-wide: a
// listener on one node sees the subscriptions opened and closed on another,
// also when that node shuts down gracefully. The subscriptions API answers
// for the node that serves it (its registry is local), but its cursor is a
// cluster-wide Last-Event-ID (docs/protocol.md#active-subscriptions).
func TestClusterSubscriptionEvents(t *testing.T) {
	t.Parallel()
	_, nodes := newTestCluster(t, 2, subscriptionsOn)
	a, b := nodes[0], nodes[1]
	listenTok := clusterToken(t, nil, []string{subsPattern08})
	l08 := a.mustSubscribe(t, "match_urlpattern="+url.QueryEscape(subsPattern08), bearer(listenTok))
	own := nextSubscriptionEvent08(t, l08)
	if !own.Active {
		t.Fatalf("own event = %+v", own)
	}
	l07 := a.mustSubscribe(t, "topic="+url.QueryEscape(subsTemplate07), bearer(legacyToken(t, nil, []string{subsTemplate07})))
	if e := nextSubscriptionEvent07(t, l07); !e.Active {
		t.Fatalf("own draft-07 event = %+v", e)
	}
	// l08's pattern also matches the draft-07 listener's topic.
	if e := l08.next(t); !strings.Contains(e.Data, `"Subscription"`) {
		t.Fatalf("l08: want the draft-07 listener's event, got %+v", e)
	}

	// A draft-08 subscriber on B: A's listener sees it come.
	s8 := b.mustSubscribe(t, "match="+url.QueryEscape("https://example.com/x"), bearer(clusterToken(t, nil, []string{"*"})))
	came := nextSubscriptionEvent08(t, l08)
	checkSubscriberID(t, came.Subscriber)
	if want := topic08("exact", "https://example.com/x", came.Subscriber); came.ID != want || !came.Active {
		t.Fatalf("event for B's subscriber = %+v, want id %s active", came, want)
	}
	// A draft-07 subscriber on B: A's draft-07 listener sees it.
	s7 := b.mustSubscribe(t, "topic=plain", bearer(legacyToken(t, nil, []string{"*"})))
	came7 := nextSubscriptionEvent07(t, l07)
	if came7.Topic != "plain" || !came7.Active {
		t.Fatalf("draft-07 event for B's subscriber = %+v", came7)
	}
	if e := l08.next(t); !strings.Contains(e.Data, came7.Subscriber) {
		t.Fatalf("l08: want the event of %s, got %+v", came7.Subscriber, e)
	}

	// The API of B lists B's subscribers; A's lists A's.
	apiTok := clusterToken(t, nil, []string{"/.well-known/mercure/subscriptions", subsPattern08})
	const base = "/.well-known/mercure/subscriptions"
	list := func(n *clusterNode) (string, []string) {
		t.Helper()
		resp, body := n.api(t, http.MethodGet, base, bearer(apiTok))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("node %s: GET %s: %d %s", n.name, base, resp.StatusCode, body)
		}
		var ids []string
		for _, s := range decode[collection08](t, body).Subscriptions {
			ids = append(ids, s.Subscriber)
		}
		return strings.Trim(resp.Header.Get("ETag"), `"`), ids
	}
	cursorB, onB := list(b)
	if !slices.Equal(onB, []string{came.Subscriber}) {
		t.Errorf("node B lists %q, want its own subscriber %q", onB, came.Subscriber)
	}
	if _, onA := list(a); !slices.Equal(onA, []string{own.Subscriber}) {
		t.Errorf("node A lists %q, want its own listener %q", onA, own.Subscriber)
	}
	// B's cursor resolves on A.
	follow := a.mustSubscribe(t, "match_urlpattern="+url.QueryEscape(subsPattern08)+"&last_event_id="+url.QueryEscape(cursorB), bearer(listenTok))
	if got := follow.resp.Header.Get("Mercure-Last-Event-ID"); got != cursorB {
		t.Fatalf("B's API cursor %q on A: Mercure-Last-Event-ID %q", cursorB, got)
	}
	follow.waitComment(t, sse.ReplayDoneComment)
	if e := nextSubscriptionEvent08(t, follow); e.Active != true {
		t.Fatalf("follower's own event = %+v", e)
	}
	if e := nextSubscriptionEvent08(t, l08); e.Active != true {
		t.Fatalf("follower's event on l08 = %+v", e)
	}

	// s8 leaves: A's listeners learn it.
	s8.cancel()
	if gone := nextSubscriptionEvent08(t, l08); gone.ID != came.ID || gone.Active {
		t.Fatalf("event after B's subscriber left = %+v, want %s inactive", gone, came.ID)
	}
	if gone := nextSubscriptionEvent08(t, follow); gone.ID != came.ID || gone.Active {
		t.Fatalf("follower: event after B's subscriber left = %+v, want %s inactive", gone, came.ID)
	}
	// B shuts down gracefully: its last subscriber's closing event reaches A.
	b.stop()
	s7.closed(t, 5*time.Second)
	if gone := nextSubscriptionEvent07(t, l07); gone.ID != came7.ID || gone.Active {
		t.Fatalf("event after B shut down = %+v, want %s inactive", gone, came7.ID)
	}
}
