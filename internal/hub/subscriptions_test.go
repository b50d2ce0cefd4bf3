package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/token"
)

// Grants used by subscription-event listeners and API clients.
const (
	subsPattern08  = "/.well-known/mercure/subscriptions/*"
	subsTemplate07 = "/.well-known/mercure/subscriptions{/topic}{/subscriber}"
)

func subscriptionsOn(c *Config) { c.Subscriptions = true }

// detail is one authorization detail for detailsToken; each topic is
// {match, match_type}.
func detail(actions []string, payload string, topics ...[2]string) map[string]any {
	ts := make([]map[string]string, 0, len(topics))
	for _, t := range topics {
		ts = append(ts, map[string]string{"match": t[0], "match_type": t[1]})
	}
	d := map[string]any{"type": token.DetailType, "actions": actions, "topics": ts}
	if payload != "" {
		d["payload"] = json.RawMessage(payload)
	}
	return d
}

// detailsToken signs a draft-08 access token with the given details, which
// token.Mint cannot express (several subscribe details, each with its own
// payload).
func (th *testHub) detailsToken(tb testing.TB, details ...map[string]any) string {
	tb.Helper()
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "test", "sub": "test", "client_id": "test", "jti": uuid.NewString(),
		"aud": th.url, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"authorization_details": details,
	})
	t.Header["typ"] = "at+jwt"
	s, err := t.SignedString(testKey)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// mustSubscribe opens a subscription and fails the test unless it is live.
func (th *testHub) mustSubscribe(tb testing.TB, query string, hdr http.Header) *stream {
	tb.Helper()
	s, resp := th.subscribe(tb, query, hdr)
	if s == nil {
		tb.Fatalf("subscribe %s: %d", query, resp.StatusCode)
	}
	return s
}

// event08 is a decoded draft-08 subscription event.
type event08 struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	MatchType  string          `json:"match_type"`
	Match      string          `json:"match"`
	Subscriber string          `json:"subscriber"`
	Active     bool            `json:"active"`
	Payload    json.RawMessage `json:"payload"`
}

// nextSubscriptionEvent08 reads one event and checks its draft-08 envelope
// (docs/protocol.md#subscription-events): SSE type "mercure", an id,
// pretty-printed JSON whose id is the event's topic, and exactly the
// documented fields.
func nextSubscriptionEvent08(tb testing.TB, s *stream) event08 {
	tb.Helper()
	ev := s.next(tb)
	if ev.Type != "mercure" {
		tb.Fatalf("subscription event type = %q, want mercure", ev.Type)
	}
	if !ev.HasID || ev.ID == "" {
		tb.Fatalf("subscription event without id: %+v", ev)
	}
	if !strings.Contains(ev.Data, "\n") {
		tb.Errorf("subscription event is on one data line, want pretty-printed JSON: %q", ev.Data)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(ev.Data), &fields); err != nil {
		tb.Fatalf("subscription event data is not JSON: %v\n%s", err, ev.Data)
	}
	keys := slices.Sorted(maps.Keys(fields))
	want := []string{"active", "id", "match", "match_type", "subscriber", "type"}
	if _, ok := fields["payload"]; ok {
		want = []string{"active", "id", "match", "match_type", "payload", "subscriber", "type"}
	}
	if !slices.Equal(keys, want) {
		tb.Errorf("subscription event fields = %v, want %v", keys, want)
	}
	var e event08
	if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
		tb.Fatal(err)
	}
	if e.Type != "subscription" {
		tb.Errorf(`type = %q, want "subscription"`, e.Type)
	}
	return e
}

// topic08 is the draft-08 subscription topic
// (docs/protocol.md#subscription-topics).
func topic08(matchType, match, subscriber string) string {
	enc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	return "/.well-known/mercure/subscriptions/" + matchType + "/" + enc(match) + "/" + enc(subscriber)
}

// checkSubscriberID checks that a subscriber id is hub-assigned urn:uuid: +
// UUIDv4 (docs/protocol.md#subscription-topics).
func checkSubscriberID(tb testing.TB, id string) {
	tb.Helper()
	u, err := uuid.Parse(strings.TrimPrefix(id, "urn:uuid:"))
	if !strings.HasPrefix(id, "urn:uuid:") || err != nil || u.Version() != 4 {
		tb.Errorf("subscriber id %q is not urn:uuid: + a UUIDv4", id)
	}
}

func jsonEqual(tb testing.TB, what string, got json.RawMessage, want string) {
	tb.Helper()
	var g, w any
	if want == "" {
		if len(got) != 0 {
			tb.Errorf("%s = %s, want none", what, got)
		}
		return
	}
	if err := json.Unmarshal(got, &g); err != nil {
		tb.Fatalf("%s: %v (%q)", what, err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		tb.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		tb.Errorf("%s = %s, want %s", what, got, want)
	}
}

// docs/protocol.md#subscription-events in draft-08: one private event per
// matcher on creation and on termination, with the topic encoding of
// docs/protocol.md#subscription-topics, the listener's own active:true event
// first, and nothing for a subscriber that is not authorised.
func TestSubscriptionEvents08(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, subscriptionsOn)
	listenTok := th.detailsToken(t, detail([]string{"subscribe"}, `{"role":"listener"}`, [2]string{subsPattern08, "urlpattern"}))
	l := th.mustSubscribe(t, "match_urlpattern="+url.QueryEscape(subsPattern08), bearer(listenTok))

	// docs/protocol.md#subscription-events: the listener is registered before
	// its own announcement.
	own := nextSubscriptionEvent08(t, l)
	checkSubscriberID(t, own.Subscriber)
	if want := topic08("urlpattern", subsPattern08, own.Subscriber); own.ID != want {
		t.Errorf("own event id = %q, want %q", own.ID, want)
	}
	if own.MatchType != "urlpattern" || own.Match != subsPattern08 || !own.Active {
		t.Errorf("own event = %+v", own)
	}
	jsonEqual(t, "own payload", own.Payload, `{"role":"listener"}`)

	// A subscriber that may not see subscription events gets none, not even
	// its own (docs/protocol.md#subscription-events: the updates are private).
	other := th.mustSubscribe(t, "match_urlpattern="+url.QueryEscape(subsPattern08), bearer(th.accessToken(t, nil, []string{"https://example.com/x"})))
	otherEv := nextSubscriptionEvent08(t, l)
	if otherEv.Subscriber == own.Subscriber || !otherEv.Active {
		t.Fatalf("event for the second listener = %+v", otherEv)
	}

	// Two matchers, one of them the example of
	// docs/protocol.md#subscription-topics, and one with a space and a plus
	// sign: each variable is percent-encoded once.
	tok := th.accessToken(t, nil, []string{"*"})
	q := "match_urlpattern=" + url.QueryEscape("https://example.com/:selector") + "&match=" + url.QueryEscape("a b+c")
	a := th.mustSubscribe(t, q, bearer(tok))
	first := nextSubscriptionEvent08(t, l)
	second := nextSubscriptionEvent08(t, l)
	aID := first.Subscriber
	checkSubscriberID(t, aID)
	if second.Subscriber != aID || aID == own.Subscriber || aID == otherEv.Subscriber {
		t.Fatalf("subscriber ids: %q %q (listeners %q %q)", first.Subscriber, second.Subscriber, own.Subscriber, otherEv.Subscriber)
	}
	wantFirst := "/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fexample.com%2F%3Aselector/" + strings.ReplaceAll(url.QueryEscape(aID), "+", "%20")
	if !strings.HasPrefix(wantFirst, "/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fexample.com%2F%3Aselector/urn%3Auuid%3A") || first.ID != wantFirst {
		t.Errorf("the documented example: id = %q, want %q", first.ID, wantFirst)
	}
	if want := "/.well-known/mercure/subscriptions/exact/a%20b%2Bc/" + url.QueryEscape(aID); second.ID != want {
		t.Errorf("id = %q, want %q", second.ID, want)
	}
	if first.MatchType != "urlpattern" || first.Match != "https://example.com/:selector" || !first.Active ||
		second.MatchType != "exact" || second.Match != "a b+c" || !second.Active {
		t.Errorf("events = %+v, %+v", first, second)
	}
	jsonEqual(t, "payload", first.Payload, "") // the token has none

	// Termination: active:false for each matcher, after removal.
	a.cancel()
	for _, want := range []event08{first, second} {
		got := nextSubscriptionEvent08(t, l)
		want.Active = false
		if got.ID != want.ID || got.Active || got.Subscriber != aID || got.Match != want.Match {
			t.Errorf("termination event = %+v, want %+v", got, want)
		}
	}
	other.none(t, 100*time.Millisecond)

	// The events are in the history (published through the store): a
	// replay from the start sees every one of them, in order.
	r := th.mustSubscribe(t, "match_urlpattern="+url.QueryEscape(subsPattern08)+"&last_event_id=earliest", bearer(listenTok))
	var got []string
	for range 6 {
		e := nextSubscriptionEvent08(t, r)
		got = append(got, fmt.Sprintf("%v %s %v", e.Subscriber == aID, e.Match, e.Active))
	}
	want := []string{
		"false " + subsPattern08 + " true", "false " + subsPattern08 + " true",
		"true https://example.com/:selector true", "true a b+c true",
		"true https://example.com/:selector false", "true a b+c false",
	}
	if !slices.Equal(got, want) {
		t.Errorf("replayed events:\n got %q\nwant %q", got, want)
	}
}

// event07 is a decoded draft-07 subscription event.
type event07 struct {
	Context    string          `json:"@context"`
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Topic      string          `json:"topic"`
	Subscriber string          `json:"subscriber"`
	Active     bool            `json:"active"`
	Payload    json.RawMessage `json:"payload"`
}

func nextSubscriptionEvent07(tb testing.TB, s *stream) event07 {
	tb.Helper()
	ev := s.next(tb)
	if ev.Type != "" {
		tb.Errorf("draft-07 subscription event has type %q", ev.Type)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(ev.Data), &fields); err != nil {
		tb.Fatalf("subscription event data is not JSON: %v\n%s", err, ev.Data)
	}
	keys := slices.Sorted(maps.Keys(fields))
	want := []string{"@context", "active", "id", "subscriber", "topic", "type"}
	if _, ok := fields["payload"]; ok {
		want = []string{"@context", "active", "id", "payload", "subscriber", "topic", "type"}
	}
	if !slices.Equal(keys, want) {
		tb.Errorf("draft-07 event fields = %v, want %v", keys, want)
	}
	var e event07
	if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
		tb.Fatal(err)
	}
	if e.Context != "https://mercure.rocks/" || e.Type != "Subscription" {
		tb.Errorf("JSON-LD envelope = %q %q", e.Context, e.Type)
	}
	return e
}

// docs/protocol.md#subscription-events and #subscription-payload in draft-07:
// JSON-LD events on /.well-known/mercure/subscriptions/{topic}/{subscriber},
// matched by the URI template grant, with the token's mercure.payload.
func TestSubscriptionEvents07(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, subscriptionsOn)
	listenTok := mint(t, token.MintOptions{Subscribe: []string{subsTemplate07}, Payload: json.RawMessage(`"listener"`), TTL: time.Hour})
	l := th.mustSubscribe(t, "topic="+url.QueryEscape(subsTemplate07), bearer(listenTok))
	own := nextSubscriptionEvent07(t, l)
	checkSubscriberID(t, own.Subscriber)
	if want := "/.well-known/mercure/subscriptions/" + url.QueryEscape(subsTemplate07) + "/" + url.QueryEscape(own.Subscriber); own.ID != want {
		t.Errorf("own id = %q, want %q", own.ID, want)
	}
	if own.Topic != subsTemplate07 || !own.Active {
		t.Errorf("own event = %+v", own)
	}
	jsonEqual(t, "own payload", own.Payload, `"listener"`)

	// mercure.payload is the same for every subscription of the token
	// (docs/protocol.md#subscription-payload).
	tok := mint(t, token.MintOptions{Subscribe: []string{"*"}, Payload: json.RawMessage(`{"user":"a"}`), TTL: time.Hour})
	a := th.mustSubscribe(t, "topic="+url.QueryEscape("https://example.com/books/{id}")+"&topic=plain", bearer(tok))
	e1, e2 := nextSubscriptionEvent07(t, l), nextSubscriptionEvent07(t, l)
	enc := url.QueryEscape(e1.Subscriber)
	if want := "/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D/" + enc; e1.ID != want || e1.Topic != "https://example.com/books/{id}" || !e1.Active {
		t.Errorf("first event = %+v, want id %q", e1, want)
	}
	if want := "/.well-known/mercure/subscriptions/plain/" + enc; e2.ID != want || e2.Subscriber != e1.Subscriber || !e2.Active {
		t.Errorf("second event = %+v, want id %q", e2, want)
	}
	jsonEqual(t, "payload", e1.Payload, `{"user":"a"}`)
	jsonEqual(t, "payload", e2.Payload, `{"user":"a"}`)

	a.cancel()
	for _, want := range []event07{e1, e2} {
		if got := nextSubscriptionEvent07(t, l); got.ID != want.ID || got.Active {
			t.Errorf("termination event = %+v, want %s inactive", got, want.ID)
		}
	}
}

// docs/protocol.md#subscription-payload: the draft-08 payload is that of the
// first subscribe detail with a topic matching the subscription's own matcher
// string; a publish-only detail's payload never applies, and "*" matches
// every matcher.
func TestSubscriptionEventPayload08(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, subscriptionsOn)
	tok := th.detailsToken(t,
		detail([]string{"publish"}, `{"d":"publish"}`, [2]string{"*", "exact"}),
		detail([]string{"subscribe"}, "", [2]string{"https://example.com/private", "exact"}),
		detail([]string{"subscribe"}, `{"d":1}`, [2]string{"https://example.com/books/:id", "urlpattern"}),
		detail([]string{"subscribe"}, `{"d":2}`, [2]string{"*", "exact"}, [2]string{subsPattern08, "urlpattern"}),
	)
	q := "match_urlpattern=" + url.QueryEscape(subsPattern08) +
		"&match=" + url.QueryEscape("https://example.com/private") +
		"&match=" + url.QueryEscape("https://example.com/books/1") +
		"&match_urlpattern=" + url.QueryEscape("https://example.com/authors/:id")
	l := th.mustSubscribe(t, q, bearer(tok))
	want := map[string]string{
		subsPattern08:                     `{"d":2}`,
		"https://example.com/private":     "", // first matching detail has none
		"https://example.com/books/1":     `{"d":1}`,
		"https://example.com/authors/:id": `{"d":2}`,
	}
	for range want {
		e := nextSubscriptionEvent08(t, l)
		p, ok := want[e.Match]
		if !ok {
			t.Fatalf("unexpected event %+v", e)
		}
		jsonEqual(t, "payload of "+e.Match, e.Payload, p)
		delete(want, e.Match)
	}
}

// Repeated selectors are one subscription: one event each way.
func TestSubscriptionEventsDeduplicated(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, subscriptionsOn)
	tok := th.accessToken(t, nil, []string{"*"})
	l := th.mustSubscribe(t, "match=*", bearer(tok))
	nextSubscriptionEvent08(t, l) // its own
	th.mustSubscribe(t, "match=x&match=x&match_exact=x", bearer(tok))
	if e := nextSubscriptionEvent08(t, l); e.Match != "x" || !e.Active {
		t.Fatalf("event = %+v", e)
	}
	l.none(t, 100*time.Millisecond)
}

// Without Config.Subscriptions there are no events and no API.
func TestSubscriptionsDisabled(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := th.accessToken(t, nil, []string{"*"})
	l := th.mustSubscribe(t, "match=*", bearer(tok))
	th.mustSubscribe(t, "match=x", bearer(tok))
	l.none(t, 100*time.Millisecond)
	resp, _ := th.api(t, http.MethodGet, "/.well-known/mercure/subscriptions", bearer(tok))
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("API without Subscriptions: %d, want 404", resp.StatusCode)
	}
}

// api sends a request to a path of the test server.
func (th *testHub) api(tb testing.TB, method, path string, hdr http.Header) (*http.Response, string) {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), method, th.srv.URL+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, string(b)
}

type collection08 struct {
	ID            string    `json:"id"`
	Type          string    `json:"type"`
	Subscriptions []event08 `json:"subscriptions"`
}

func decode[T any](tb testing.TB, body string) T {
	tb.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		tb.Fatalf("decode %T: %v\n%s", v, err, body)
	}
	return v
}

// docs/protocol.md#subscriptions-api in draft-08: documents, content type,
// Link and ETag cursor, 304, 404, 400, 401, 403; only the path is authorised.
func TestSubscriptionsAPI08(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, subscriptionsOn)
	apiTok := th.accessToken(t, nil, []string{"/.well-known/mercure/subscriptions", subsPattern08})
	subTok := th.detailsToken(t, detail([]string{"subscribe"}, `{"n":1}`, [2]string{"*", "exact"}))
	a := th.mustSubscribe(t, "match="+url.QueryEscape("https://example.com/a")+"&match_urlpattern="+url.QueryEscape("https://example.com/b/:id"), bearer(subTok))
	_ = a
	th.mustSubscribe(t, "topic=draft07", bearer(legacyToken(t, nil, []string{"*"}))) // listed by the draft-07 API only
	// A known cursor: the newest dispatched update.
	th.mustPublish(t, th.accessToken(t, []string{"https://example.com/z"}, nil), url.Values{"topic": {"https://example.com/z"}, "id": {"cursor-1"}})

	const base = "/.well-known/mercure/subscriptions"
	resp, body := th.api(t, http.MethodGet, base, bearer(apiTok))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", base, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	wantLink := `</.well-known/mercure>; rel="mercure"; last-event-id="cursor-1"; type="mercure"; content-type="application/json"`
	if got := resp.Header.Get("Link"); got != wantLink {
		t.Errorf("Link = %q, want %q", got, wantLink)
	}
	if got := resp.Header.Get("ETag"); got != `"cursor-1"` {
		t.Errorf("ETag = %q, want quoted cursor", got)
	}
	coll := decode[collection08](t, body)
	if coll.ID != base || coll.Type != "subscriptions" || len(coll.Subscriptions) != 2 {
		t.Fatalf("collection = %+v", coll)
	}
	aID := coll.Subscriptions[0].Subscriber
	checkSubscriberID(t, aID)
	for i, want := range []event08{
		{ID: topic08("exact", "https://example.com/a", aID), Type: "subscription", MatchType: "exact", Match: "https://example.com/a", Subscriber: aID, Active: true},
		{ID: topic08("urlpattern", "https://example.com/b/:id", aID), Type: "subscription", MatchType: "urlpattern", Match: "https://example.com/b/:id", Subscriber: aID, Active: true},
	} {
		got := coll.Subscriptions[i]
		jsonEqual(t, "payload", got.Payload, `{"n":1}`)
		got.Payload = nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("subscription %d:\n got %+v\nwant %+v", i, got, want)
		}
	}

	// Conditional requests (docs/protocol.md#subscriptions-api-cursor), also
	// with HEAD.
	for _, inm := range []string{`"cursor-1"`, `W/"other", "cursor-1"`, "*"} {
		resp, body = th.api(t, http.MethodGet, base, http.Header{"Authorization": {"Bearer " + apiTok}, "If-None-Match": {inm}})
		if resp.StatusCode != http.StatusNotModified || body != "" {
			t.Errorf("If-None-Match %s: %d %q, want 304", inm, resp.StatusCode, body)
		}
	}
	resp, _ = th.api(t, http.MethodGet, base, http.Header{"Authorization": {"Bearer " + apiTok}, "If-None-Match": {`"stale"`}})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("stale If-None-Match: %d, want 200", resp.StatusCode)
	}
	resp, body = th.api(t, http.MethodHead, base, bearer(apiTok))
	if resp.StatusCode != http.StatusOK || body != "" || resp.Header.Get("ETag") != `"cursor-1"` {
		t.Errorf("HEAD: %d %q %v", resp.StatusCode, body, resp.Header)
	}

	// The collection of one selector, and one document
	// (docs/protocol.md#subscriptions-api). The document ids are the paths that
	// address them.
	doc := coll.Subscriptions[1].ID
	sel := strings.TrimSuffix(doc, "/"+url.QueryEscape(aID))
	resp, body = th.api(t, http.MethodGet, sel, bearer(apiTok))
	if c := decode[collection08](t, body); resp.StatusCode != 200 || c.ID != sel || len(c.Subscriptions) != 1 || c.Subscriptions[0].ID != doc {
		t.Errorf("GET %s: %d %s", sel, resp.StatusCode, body)
	}
	resp, body = th.api(t, http.MethodGet, doc, bearer(apiTok))
	if d := decode[event08](t, body); resp.StatusCode != 200 || d.ID != doc || d.Match != "https://example.com/b/:id" || !d.Active || resp.Header.Get("Link") != wantLink {
		t.Errorf("GET %s: %d %s", doc, resp.StatusCode, body)
	}
	resp, body = th.api(t, http.MethodGet, base+"/exact/nothing", bearer(apiTok))
	if c := decode[collection08](t, body); resp.StatusCode != 200 || len(c.Subscriptions) != 0 || !strings.Contains(body, `"subscriptions":[]`) {
		t.Errorf("empty selection: %d %s", resp.StatusCode, body)
	}

	for _, tc := range []struct {
		name, path string
		hdr        http.Header
		status     int
		challenge  string
	}{
		{"unknown subscriber", sel + "/" + url.QueryEscape(uuid.New().URN()), bearer(apiTok), 404, ""},
		{"right subscriber, wrong type", strings.Replace(doc, "/urlpattern/", "/exact/", 1), bearer(apiTok), 404, ""},
		{"unknown match type", base + "/regexp/x", bearer(apiTok), 400, ""},
		{"unknown match type alone", base + "/regexp", bearer(apiTok), 400, ""},
		{"too many segments", doc + "/more", bearer(apiTok), 404, ""},
		{"type without match", base + "/exact", bearer(apiTok), 404, ""},
		{"not under the API", base + "x", bearer(apiTok), 404, ""},
		{"no token", base, nil, 401, `Bearer resource_metadata="`},
		{"no grant", base, bearer(th.accessToken(t, nil, []string{"https://example.com/a"})), 403, `Bearer error="insufficient_scope"`},
		{"collection grant only", doc, bearer(th.accessToken(t, nil, []string{base})), 403, `Bearer error="insufficient_scope"`},
		{"bad token", base, bearer(apiTok[:len(apiTok)-4] + "AAAA"), 401, `Bearer error="invalid_token"`},
	} {
		resp, body := th.api(t, http.MethodGet, tc.path, tc.hdr)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: GET %s = %d %s, want %d", tc.name, tc.path, resp.StatusCode, body, tc.status)
		}
		if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, tc.challenge) || (tc.challenge == "") != (got == "") {
			t.Errorf("%s: WWW-Authenticate = %q, want prefix %q", tc.name, got, tc.challenge)
		}
	}

	// Draft-08 authorises the path alone
	// (docs/protocol.md#subscriptions-api-authorization): the query is ignored.
	resp, body = th.api(t, http.MethodGet, base+"?foo=bar", bearer(th.accessToken(t, nil, []string{base})))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("query ignored: %d %s", resp.StatusCode, body)
	}
	resp, _ = th.api(t, http.MethodPost, base, bearer(apiTok))
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

type doc07 struct {
	Context     string          `json:"@context"`
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Topic       string          `json:"topic"`
	Subscriber  string          `json:"subscriber"`
	Active      bool            `json:"active"`
	Payload     json.RawMessage `json:"payload"`
	LastEventID string          `json:"lastEventID"`
}

type collection07 struct {
	Context       string  `json:"@context"`
	ID            string  `json:"id"`
	Type          string  `json:"type"`
	LastEventID   string  `json:"lastEventID"`
	Subscriptions []doc07 `json:"subscriptions"`
}

// docs/protocol.md#subscriptions-api in draft-07: JSON-LD, lastEventID, bare
// ETag, no Link; the whole request URI (query included) is authorised, and a
// missing grant is a plain 401.
func TestSubscriptionsAPI07(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, subscriptionsOn)
	apiTok := legacyToken(t, nil, []string{subsTemplate07})
	subTok := mint(t, token.MintOptions{Subscribe: []string{"*"}, Payload: json.RawMessage(`[1,2]`), TTL: time.Hour})
	th.mustSubscribe(t, "topic="+url.QueryEscape("https://example.com/books/{id}"), bearer(subTok))
	th.mustSubscribe(t, "match=draft08", bearer(th.accessToken(t, nil, []string{"*"}))) // listed by the draft-08 API only
	th.mustPublish(t, legacyToken(t, []string{"z"}, nil), url.Values{"topic": {"z"}, "id": {"cursor-7"}})

	const base = "/.well-known/mercure/subscriptions"
	resp, body := th.api(t, http.MethodGet, base, bearer(apiTok))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/ld+json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if got := resp.Header.Get("ETag"); got != "cursor-7" {
		t.Errorf("ETag = %q, want the bare cursor (the reference 0.x hub)", got)
	}
	if got := resp.Header.Get("Link"); got != "" {
		t.Errorf("draft-07 reply has a Link header %q", got)
	}
	coll := decode[collection07](t, body)
	if coll.Context != "https://mercure.rocks/" || coll.ID != base || coll.Type != "Subscriptions" || coll.LastEventID != "cursor-7" || len(coll.Subscriptions) != 1 {
		t.Fatalf("collection = %+v", coll)
	}
	d := coll.Subscriptions[0]
	wantID := "/.well-known/mercure/subscriptions/" + url.QueryEscape("https://example.com/books/{id}") + "/" + url.QueryEscape(d.Subscriber)
	if d.Context != "" || d.LastEventID != "" || d.ID != wantID || d.Type != "Subscription" || d.Topic != "https://example.com/books/{id}" || !d.Active {
		t.Errorf("member = %+v, want id %q", d, wantID)
	}
	jsonEqual(t, "payload", d.Payload, `[1,2]`)

	resp, body = th.api(t, http.MethodGet, d.ID, bearer(apiTok))
	single := decode[doc07](t, body)
	if resp.StatusCode != 200 || single.Context != "https://mercure.rocks/" || single.LastEventID != "cursor-7" || single.ID != d.ID {
		t.Errorf("single document: %d %s", resp.StatusCode, body)
	}
	topicPath := base + "/" + url.QueryEscape("https://example.com/books/{id}")
	resp, body = th.api(t, http.MethodGet, topicPath, bearer(apiTok))
	if c := decode[collection07](t, body); resp.StatusCode != 200 || c.ID != topicPath || len(c.Subscriptions) != 1 {
		t.Errorf("topic collection: %d %s", resp.StatusCode, body)
	}
	resp, _ = th.api(t, http.MethodGet, base, http.Header{"Authorization": {"Bearer " + apiTok}, "If-None-Match": {"cursor-7"}})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match bare cursor: %d, want 304", resp.StatusCode)
	}

	for _, tc := range []struct {
		name, path string
		hdr        http.Header
		status     int
	}{
		{"unknown subscriber", topicPath + "/" + url.QueryEscape(uuid.New().URN()), bearer(apiTok), 404},
		{"no token", base, nil, 401},
		{"no grant: plain 401", base, bearer(legacyToken(t, nil, []string{"https://example.com/a"})), 401},
		{"query is authorised too", base + "?x=1", bearer(apiTok), 401},
		{"too many segments", d.ID + "/x", bearer(legacyToken(t, nil, []string{"*"})), 404},
	} {
		resp, body := th.api(t, http.MethodGet, tc.path, tc.hdr)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: GET %s = %d %s, want %d", tc.name, tc.path, resp.StatusCode, body, tc.status)
		}
		if tc.hdr != nil && resp.Header.Get("WWW-Authenticate") != "" {
			t.Errorf("%s: draft-07 reply has WWW-Authenticate %q", tc.name, resp.Header.Get("WWW-Authenticate"))
		}
	}
	// With the query granted (the reference 0.x hub authorises the whole URI), it passes.
	resp, body = th.api(t, http.MethodGet, base+"?x=1", bearer(legacyToken(t, nil, []string{base + "?x=1"})))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("granted URI with query: %d %s", resp.StatusCode, body)
	}
}

// docs/protocol.md#subscriptions-api-cursor and #subscription-events: a
// client that lists the subscriptions and then subscribes to subscription
// events from the list's cursor can follow the set of subscriptions exactly,
// even while subscriptions come and go concurrently.
func TestSubscriptionsListThenFollow(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, subscriptionsOn)
	tok := th.accessToken(t, nil, []string{"*"})
	const base = "/.well-known/mercure/subscriptions"

	list := func() (string, map[string]bool) {
		resp, body := th.api(t, http.MethodGet, base, bearer(tok))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("list: %d %s", resp.StatusCode, body)
		}
		cursor := strings.Trim(resp.Header.Get("ETag"), `"`)
		set := make(map[string]bool)
		for _, s := range decode[collection08](t, body).Subscriptions {
			set[s.ID] = true
		}
		return cursor, set
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s, resp := th.subscribe(t, fmt.Sprintf("match=churn-%d-%d&match=both", w, i), bearer(tok))
				if s == nil {
					t.Errorf("churn subscription: %d", resp.StatusCode)
					return
				}
				if i%3 != 0 {
					s.cancel() // the others stay open until the end
				}
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	cursor, set := list()
	l := th.mustSubscribe(t, "match_urlpattern="+url.QueryEscape(subsPattern08)+"&last_event_id="+url.QueryEscape(cursor), bearer(tok))
	if got := l.resp.Header.Get("Mercure-Last-Event-ID"); got != cursor {
		t.Fatalf("cursor %q not found in history: %q", cursor, got)
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()

	// Apply events until the followed set equals a fresh listing taken at
	// the cursor just reached. A missed event would keep them apart forever.
	deadline := time.Now().Add(10 * time.Second)
	for applied := 0; ; {
		cursor2, set2 := list()
		for reached := cursor2 == cursor; !reached; {
			ev := l.next(t)
			var e event08
			if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
				t.Fatal(err)
			}
			if e.Active {
				set[e.ID] = true
			} else {
				delete(set, e.ID)
			}
			applied++
			cursor, reached = ev.ID, ev.ID == cursor2
		}
		if maps.Equal(set, set2) {
			if applied == 0 || len(set) < 2 {
				t.Fatalf("the test did not exercise anything: %d events, %d subscriptions", applied, len(set))
			}
			return
		}
		if time.Now().After(deadline) {
			var missed, extra []string
			for id := range set2 {
				if !set[id] {
					missed = append(missed, id)
				}
			}
			for id := range set {
				if !set2[id] {
					extra = append(extra, id)
				}
			}
			t.Fatalf("followed set never converged with the listing: events missed for %v, stale %v", missed, extra)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// failingEventsStore refuses to store subscription events.
type failingEventsStore struct{ *history.Memory }

func (s failingEventsStore) Append(ctx context.Context, u *history.Update) error {
	if strings.HasPrefix(u.Topics[0], "/.well-known/mercure/subscriptions/") {
		return fmt.Errorf("test: %w", history.ErrUnavailable)
	}
	return s.Memory.Append(ctx, u)
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A store that refuses the events (docs/protocol.md#subscription-events)
// costs a log line, not the subscription.
func TestSubscriptionEventStoreFailure(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	th := newTestHub(t, func(c *Config) {
		c.Subscriptions = true
		c.Store = failingEventsStore{history.NewMemory(history.Retention{}, nil)}
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	tok := th.accessToken(t, []string{"x"}, []string{"*"})
	s := th.mustSubscribe(t, "match=x", bearer(tok))
	id := th.mustPublish(t, tok, url.Values{"topic": {"x"}, "data": {"still here"}})
	if ev := s.next(t); ev.ID != id {
		t.Fatalf("event = %+v", ev)
	}
	if !strings.Contains(logs.String(), `the history store refused an update: publishes get 503 until it recovers" while="subscription event"`) {
		t.Errorf("no log line for the failed event; logs:\n%s", logs.String())
	}
}
