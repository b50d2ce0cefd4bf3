package hub

// Interoperability with an independent, third-party SSE client:
// github.com/r3labs/sse/v2 (used in tests only).

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	r3sse "github.com/r3labs/sse/v2"
	"gopkg.in/cenkalti/backoff.v1"
)

// r3Subscriber is a running r3labs client.
type r3Subscriber struct {
	events chan *r3sse.Event
	header http.Header // response headers of the connection
}

// r3Subscribe connects an r3labs client to the hub with the given query and
// request headers; it returns once the hub has answered 200, so the
// subscription is live. The client stops when the test ends.
func r3Subscribe(tb testing.TB, th *testHub, query string, headers map[string]string) *r3Subscriber {
	tb.Helper()
	c := r3sse.NewClient(confURL(th, query))
	for k, v := range headers {
		c.Headers[k] = v
	}
	// One connection only: no reconnection once the test cancels it.
	c.ReconnectStrategy = &backoff.StopBackOff{}
	connected := make(chan http.Header, 1)
	c.ResponseValidator = func(_ *r3sse.Client, resp *http.Response) error {
		if resp.StatusCode != http.StatusOK {
			_ = resp.Body.Close()
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		connected <- resp.Header.Clone()
		return nil
	}
	s := &r3Subscriber{events: make(chan *r3sse.Event, 64)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.SubscribeRawWithContext(ctx, func(ev *r3sse.Event) {
			select {
			case s.events <- ev:
			case <-ctx.Done():
			}
		})
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case s.header = <-connected:
	case err := <-done:
		tb.Fatalf("r3labs client: %v", err)
	case <-time.After(5 * time.Second):
		tb.Fatal("r3labs client did not connect")
	}
	return s
}

func (s *r3Subscriber) next(tb testing.TB) *r3sse.Event {
	tb.Helper()
	select {
	case ev := <-s.events:
		return ev
	case <-time.After(5 * time.Second):
		tb.Fatal("r3labs client: no event within 5s")
	}
	return nil
}

// An independent client receives ids, types, retry and (multi-line) data
// from both generations.
func TestInteropR3labsClient(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Heartbeat = 50 * time.Millisecond })
	pub := legacyToken(t, []string{"*"}, nil)
	subs := map[string]*r3Subscriber{
		"draft07": r3Subscribe(t, th, "topic="+url.QueryEscape("https://example.com/books/{id}"),
			map[string]string{"Authorization": "Bearer " + legacyToken(t, nil, []string{"*"})}),
		"draft08": r3Subscribe(t, th, "match_urlpattern="+url.QueryEscape("https://example.com/books/:id"),
			map[string]string{"Authorization": "Bearer " + th.accessToken(t, nil, []string{"*"})}),
		"draft07 cookie": r3Subscribe(t, th, "topic=*",
			map[string]string{"Cookie": cookie07 + "=" + legacyToken(t, nil, []string{"*"})}),
	}
	// Let a few heartbeats go by: the client must ignore them.
	time.Sleep(150 * time.Millisecond)
	updates := []url.Values{
		{"topic": {"https://example.com/books/1"}, "data": {"hello"}, "id": {"book-1"}},
		{"topic": {"https://example.com/books/2"}, "data": {"line1\nline2\r\nline3\rline4\n\n  indented"}, "type": {"multi"}, "retry": {"3000"}},
		{"topic": {"https://example.com/authors/1", "https://example.com/books/3"}, "data": {`{"@id": "/books/3"}`}, "private": {"on"}},
	}
	var ids []string
	for _, u := range updates {
		ids = append(ids, th.mustPublish(t, pub, u))
	}
	wantData := []string{"hello", "line1\nline2\nline3\nline4\n\n  indented", `{"@id": "/books/3"}`}
	for name, s := range subs {
		for i := range updates {
			ev := s.next(t)
			if string(ev.ID) != ids[i] || string(ev.Data) != wantData[i] {
				t.Errorf("%s: event %d = id %q data %q, want id %q data %q", name, i, ev.ID, ev.Data, ids[i], wantData[i])
			}
			if i == 1 && (string(ev.Event) != "multi" || string(ev.Retry) != "3000") {
				t.Errorf("%s: event %d type %q retry %q", name, i, ev.Event, ev.Retry)
			}
		}
	}
	if ct := subs["draft08"].header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type %q", ct)
	}
}

// The client resumes with Last-Event-ID: the hub replays what it missed.
func TestInteropR3labsResume(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := th.accessToken(t, []string{"*"}, []string{"*"})
	var ids []string
	for i := range 4 {
		ids = append(ids, th.mustPublish(t, tok, url.Values{"topic": {"t"}, "data": {fmt.Sprint("u", i)}}))
	}
	s := r3Subscribe(t, th, "match=t", map[string]string{"Authorization": "Bearer " + tok, "Last-Event-ID": ids[1]})
	if got := s.header.Get("Mercure-Last-Event-ID"); got != ids[1] {
		t.Errorf("Mercure-Last-Event-ID = %q", got)
	}
	for _, want := range ids[2:] {
		if ev := s.next(t); string(ev.ID) != want {
			t.Errorf("replayed %q, want %q", ev.ID, want)
		}
	}
	live := th.mustPublish(t, tok, url.Values{"topic": {"t"}, "data": {"live"}})
	if ev := s.next(t); string(ev.ID) != live || string(ev.Data) != "live" {
		t.Errorf("live event id %q data %q", ev.ID, ev.Data)
	}
}
