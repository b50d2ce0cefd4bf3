package hub

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/sse"
)

// docs/protocol.md#event-stream, #alternate-topics and #publish-reply: a
// draft-07 subscriber receives what a legacy publisher sends, with every SSE
// field, on any of its topics.
func TestPublishSubscribe07(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := legacyToken(t, []string{"*"}, []string{"*"})
	s, resp := th.subscribe(t, "topic="+url.QueryEscape("https://example.com/books/{id}"), bearer(tok))
	if s == nil {
		t.Fatalf("subscribe: %d", resp.StatusCode)
	}
	if ct := s.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	resp2, id := th.publish(t, tok, url.Values{
		"topic": {"https://example.com/other", "https://example.com/books/1"},
		"data":  {"hello"}, "id": {"my-id"}, "type": {"greeting"}, "retry": {"1500"},
	})
	if resp2.StatusCode != 200 || id != "my-id" {
		t.Fatalf("publish: %d %q", resp2.StatusCode, id)
	}
	if ct := resp2.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("publish Content-Type = %q", ct)
	}
	ev := s.next(t)
	if ev.ID != "my-id" || ev.Data != "hello" || ev.Type != "greeting" || ev.Retry != 1500 || !ev.HasRetry {
		t.Fatalf("event = %+v", ev)
	}
}

// docs/protocol.md#subscribe-match, #matching-08, #alternate-topics,
// #publish-id and #publish-reply: draft-08 with URL patterns and generated
// urn:uuid ids.
func TestPublishSubscribe08(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := th.accessToken(t, []string{"https://example.com/b/:id", "alt"}, []string{"*"})
	s, resp := th.subscribe(t, "match_urlpattern="+url.QueryEscape("https://example.com/b/:id"), bearer(tok))
	if s == nil {
		t.Fatalf("subscribe: %d", resp.StatusCode)
	}
	id := th.mustPublish(t, tok, url.Values{"topic": {"alt", "https://example.com/b/8"}, "data": {"x"}})
	if len(id) != len("urn:uuid:")+36 || id[:9] != "urn:uuid:" || id[9+14] != '7' {
		t.Fatalf("generated id %q is not a urn:uuid UUIDv7", id)
	}
	if ev := s.next(t); ev.ID != id || ev.Data != "x" {
		t.Fatalf("event = %+v", ev)
	}
}

// docs/protocol.md#private-updates and #private-delivery: private updates
// reach only authorised subscribers.
func TestPrivateUpdates(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Anonymous = true })
	pub := legacyToken(t, []string{"*"}, nil)
	allowed, _ := th.subscribe(t, "topic=a", bearer(legacyToken(t, nil, []string{"a"})))
	other, _ := th.subscribe(t, "topic=a", bearer(legacyToken(t, nil, []string{"b"})))
	anon, _ := th.subscribe(t, "topic=a", nil)
	th.mustPublish(t, pub, url.Values{"topic": {"a"}, "data": {"secret"}, "private": {""}})
	th.mustPublish(t, pub, url.Values{"topic": {"a"}, "data": {"public"}})
	if ev := allowed.next(t); ev.Data != "secret" {
		t.Fatalf("authorised subscriber got %+v", ev)
	}
	if ev := allowed.next(t); ev.Data != "public" {
		t.Fatalf("authorised subscriber got %+v", ev)
	}
	for _, s := range []*stream{other, anon} {
		if ev := s.next(t); ev.Data != "public" {
			t.Fatalf("unauthorised subscriber got %+v", ev)
		}
	}
}

// docs/protocol.md#subscribe-cursors, and the in-band end-of-replay marker.
func TestReplayFromCursor(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := legacyToken(t, []string{"*"}, []string{"*"})
	var ids []string
	for i := range 5 {
		ids = append(ids, th.mustPublish(t, tok, url.Values{"topic": {"t"}, "data": {fmt.Sprint(i)}}))
	}
	// draft-07 query cursor.
	s, _ := th.subscribe(t, "topic=t&lastEventID="+url.QueryEscape(ids[1]), bearer(tok))
	if got := s.resp.Header.Get("Last-Event-ID"); got != ids[1] {
		t.Errorf("Last-Event-ID = %q, want %q", got, ids[1])
	}
	for i := 2; i < 5; i++ {
		if ev := s.next(t); ev.ID != ids[i] {
			t.Fatalf("replay %d: got %q want %q", i, ev.ID, ids[i])
		}
	}
	s.waitComment(t, sse.ReplayDoneComment)
	live := th.mustPublish(t, tok, url.Values{"topic": {"t"}, "data": {"live"}})
	if ev := s.next(t); ev.ID != live {
		t.Fatalf("live: got %q want %q", ev.ID, live)
	}

	// draft-08: header beats query; unknown id answers "earliest" and replays all.
	tok8 := th.accessToken(t, nil, []string{"*"})
	s8, _ := th.subscribe(t, "match=t&last_event_id=unknown", http.Header{"Authorization": {"Bearer " + tok8}, "Last-Event-Id": {ids[3]}})
	if got := s8.resp.Header.Get("Mercure-Last-Event-ID"); got != ids[3] {
		t.Errorf("Mercure-Last-Event-ID = %q, want %q", got, ids[3])
	}
	if ev := s8.next(t); ev.ID != ids[4] {
		t.Fatalf("got %q want %q", ev.ID, ids[4])
	}
	su, _ := th.subscribe(t, "match=t&last_event_id=unknown", bearer(tok8))
	if got := su.resp.Header.Get("Mercure-Last-Event-ID"); got != "earliest" {
		t.Errorf("unknown cursor: Mercure-Last-Event-ID = %q, want earliest", got)
	}
	if ev := su.next(t); ev.ID != ids[0] {
		t.Fatalf("unknown cursor replays everything retained: got %q want %q", ev.ID, ids[0])
	}
}

// The ordering guarantee (docs/protocol.md#ordering) and no gap, no
// duplicate between replay and live, under concurrent publishing.
func TestReplayThenLiveNoGapNoDuplicate(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.QueueSize = 8 })
	tok := legacyToken(t, []string{"*"}, []string{"*"})
	first := th.mustPublish(t, tok, url.Values{"topic": {"t"}, "data": {"first"}})
	const n = 400
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Go(func() {
		<-start
		for i := range n {
			th.mustPublish(t, tok, url.Values{"topic": {"t"}, "id": {fmt.Sprint("u", i)}})
		}
	})
	close(start)
	time.Sleep(5 * time.Millisecond)
	s, _ := th.subscribe(t, "topic=t&lastEventID="+url.QueryEscape(first), bearer(tok))
	wg.Wait()
	for i := range n {
		if ev := s.next(t); ev.ID != fmt.Sprint("u", i) {
			t.Fatalf("event %d: got %q", i, ev.ID)
		}
	}
	s.none(t, 50*time.Millisecond)
}
