package client

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/mercurectl/mercurectl/internal/match"
	"github.com/mercurectl/mercurectl/internal/sse"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newTestClient returns a client for hubURL with its own transport, closed
// at the end of the test.
func newTestClient(tb testing.TB, hubURL string, o Options) *Client {
	tb.Helper()
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	o.HubURL = hubURL
	o.HTTPClient = &http.Client{Transport: tr}
	c, err := New(o)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return c
}

// newBubbleClient is newTestClient for a hub of newBubbleFakeHub.
func newBubbleClient(tb testing.TB, tr *http.Transport, o Options) *Client {
	tb.Helper()
	o.HubURL = "http://hub.test:80" + HubPath
	o.HTTPClient = &http.Client{Transport: tr}
	c, err := New(o)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return c
}

// refusedURL returns a hub URL on a port where nothing listens.
func refusedURL(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}

func TestParseHubURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"http://localhost:3000", "http://localhost:3000/.well-known/mercure", false},
		{"http://localhost:3000/", "http://localhost:3000/.well-known/mercure", false},
		{"https://h.example/.well-known/mercure", "https://h.example/.well-known/mercure", false},
		{"https://h.example/custom/hub?x=1#frag", "https://h.example/custom/hub?x=1", false},
		{"", "", true},
		{"localhost:3000", "http://localhost:3000/.well-known/mercure", false},
		{"127.0.0.1:47400", "http://127.0.0.1:47400/.well-known/mercure", false},
		{"[::1]:3000/custom", "http://[::1]:3000/custom", false},
		{"hub.example.com", "", true},
		{"hub.example.com:https", "", true},
		{"127.0.0.1:99999", "", true},
		{"ftp://h.example", "", true},
		{"http://", "", true},
		{"http://user:pass@h.example", "", true},
		{"http://[::1", "", true},
	}
	for _, tt := range tests {
		u, err := ParseHubURL(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("ParseHubURL(%q) error %v, want ErrInvalidRequest", tt.in, err)
			}
			continue
		}
		if err != nil || u.String() != tt.want {
			t.Errorf("ParseHubURL(%q) = %v, %v, want %q", tt.in, u, err, tt.want)
		}
	}
	if _, err := ParseHubURL("hub.example.com"); err == nil || !strings.Contains(err.Error(), `"hub.example.com" has no scheme: write http:// or https:// before it (such as https://hub.example.com)`) {
		t.Errorf("no scheme: %v", err)
	}
	if _, err := New(Options{HubURL: "http://h"}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("New without HTTP client: %v", err)
	}
}

func TestParseProtocol(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Protocol{"": ProtocolAuto, "auto": ProtocolAuto, "7": Protocol07, "draft-07": Protocol07, "08": Protocol08, "8": Protocol08} {
		if got, err := ParseProtocol(in); err != nil || got != want {
			t.Errorf("ParseProtocol(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseProtocol("9"); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("ParseProtocol(9) error %v", err)
	}
}

// docs/protocol.md#metadata.
func TestProtocolDetection(t *testing.T) {
	t.Parallel()
	t.Run("metadata served: draft-08", func(t *testing.T) {
		t.Parallel()
		h := newFakeHub(t)
		h.metadata = true
		c := newTestClient(t, h.url(), Options{})
		for range 3 {
			p, md, err := c.Protocol(t.Context())
			if err != nil || p != Protocol08 || md == nil {
				t.Fatalf("Protocol = %v, %v, %v", p, md, err)
			}
			if md.Resource != "https://hub.example/.well-known/mercure" || !md.MercureSubscriptions ||
				!slices.Equal(md.BearerMethodsSupported, []string{"header"}) || md.AuthorizationServers != nil {
				t.Fatalf("metadata %+v", md)
			}
		}
		if n := len(h.requests()); n != 1 {
			t.Fatalf("%d requests, want 1 (cached)", n)
		}
		if got := h.requests()[0].url.Path; got != "/.well-known/oauth-protected-resource/.well-known/mercure" {
			t.Fatalf("metadata path %q", got)
		}
	})
	t.Run("no metadata: draft-07", func(t *testing.T) {
		t.Parallel()
		h := newFakeHub(t)
		c := newTestClient(t, h.url(), Options{})
		if p, md, err := c.Protocol(t.Context()); err != nil || p != Protocol07 || md != nil {
			t.Fatalf("Protocol = %v, %v, %v", p, md, err)
		}
	})
	t.Run("metadata without resource or not JSON: draft-07", func(t *testing.T) {
		t.Parallel()
		for _, body := range []string{`{"resource": ""}`, `{"bearer_methods_supported": ["header"]}`, `<html>`, `{"resource": 1}`} {
			h := newFakeHub(t)
			h.metadata, h.metadataBody = true, body
			c := newTestClient(t, h.url(), Options{})
			if p, _, err := c.Protocol(t.Context()); err != nil || p != Protocol07 {
				t.Errorf("%s: Protocol = %v, %v", body, p, err)
			}
		}
	})
	t.Run("forced", func(t *testing.T) {
		t.Parallel()
		h := newFakeHub(t)
		h.metadata = true
		c := newTestClient(t, h.url(), Options{Protocol: Protocol07})
		if p, md, err := c.Protocol(t.Context()); err != nil || p != Protocol07 || md != nil {
			t.Fatalf("forced 07: %v, %v, %v", p, md, err)
		}
		if n := len(h.requests()); n != 0 {
			t.Fatalf("forced 07 made %d requests", n)
		}
		h2 := newFakeHub(t)
		c = newTestClient(t, h2.url(), Options{Protocol: Protocol08})
		if p, md, err := c.Protocol(t.Context()); err != nil || p != Protocol08 || md != nil {
			t.Fatalf("forced 08 without metadata: %v, %v, %v", p, md, err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		c := newTestClient(t, refusedURL(t), Options{})
		if _, _, err := c.Protocol(t.Context()); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("error %v, want ErrUnreachable", err)
		}
	})
}

func TestResolveSelectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		proto   Protocol
		in      []Selector
		want    []string // "param=value" in order
		wantErr error
	}{
		{"07 sends everything as topic", Protocol07,
			[]Selector{{Value: "*"}, {Value: "https://e.x/books/{id}"}, {Value: "/b/:id", MatchType: match.TypeURLPattern}, {Value: "x", MatchType: match.TypeTemplate}},
			[]string{"topic=*", "topic=https://e.x/books/{id}", "topic=/b/:id", "topic=x"}, nil},
		{"08 auto", Protocol08,
			[]Selector{{Value: "*"}, {Value: "https://e.x/books/1"}, {Value: "https://e.x/books/:id"}, {Value: "/a/*"}, {Value: "urn:isbn:1"}},
			[]string{"match=*", "match=https://e.x/books/1", "match_urlpattern=https://e.x/books/:id", "match_urlpattern=/a/*", "match=urn:isbn:1"}, nil},
		{"08 forced types", Protocol08,
			[]Selector{{Value: "/b/:id", MatchType: match.TypeExact}, {Value: "/b/1", MatchType: match.TypeURLPattern}, {Value: "*", MatchType: match.TypeURLPattern}, {Value: "/b/{x}", MatchType: match.TypeExact}},
			[]string{"match=/b/:id", "match_urlpattern=/b/1", "match=*", "match=/b/{x}"}, nil},
		{"08 URL pattern groups are not templates", Protocol08,
			[]Selector{{Value: "/books/:id{/}?"}},
			[]string{"match_urlpattern=/books/:id{/}?"}, nil},
		{"08 template auto", Protocol08, []Selector{{Value: "https://e.x/books/{id}"}}, nil, ErrTemplateSelector},
		{"08 template forced", Protocol08, []Selector{{Value: "/b", MatchType: match.TypeTemplate}}, nil, ErrTemplateSelector},
		{"empty", Protocol08, []Selector{{Value: ""}}, nil, ErrInvalidRequest},
		{"none", Protocol07, nil, nil, ErrInvalidRequest},
		{"unknown type", Protocol08, []Selector{{Value: "a", MatchType: "regexp"}}, nil, ErrInvalidRequest},
	}
	for _, tt := range tests {
		got, err := resolveSelectors(tt.proto, tt.in)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("%s: error %v, want %v", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		q := make(map[string][]string)
		selectorParams(q, tt.proto, got)
		var pairs []string
		for _, s := range got { // reconstruct in order from the resolved selectors
			name := "match"
			switch {
			case tt.proto == Protocol07:
				name = "topic"
			case s.MatchType == match.TypeURLPattern:
				name = "match_urlpattern"
			}
			if !slices.Contains(q[name], s.Value) {
				t.Errorf("%s: %s=%s missing from %v", tt.name, name, s.Value, q)
			}
			pairs = append(pairs, name+"="+s.Value)
		}
		if !slices.Equal(pairs, tt.want) {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, pairs, tt.want)
		}
	}
}

func TestTemplateErrorSuggestsPattern(t *testing.T) {
	t.Parallel()
	_, err := resolveSelectors(Protocol08, []Selector{{Value: "https://e.x/books/{id}"}})
	if err == nil || !strings.Contains(err.Error(), `"https://e.x/books/:id"`) {
		t.Fatalf("error %v does not suggest the URL pattern", err)
	}
	for in, want := range map[string]string{
		"/books/{id}":             "/books/:id",
		"/books{/id}":             "/books/:id",
		"/files/{+path}":          "/files/*",
		"/s{?q,lang}":             "/s",
		"/a/{x.y}/{1st}{.format}": "/a/:x_y/:_1st.:format",
		"/no/template":            "/no/template",
	} {
		if got := SuggestURLPattern(in); got != want {
			t.Errorf("SuggestURLPattern(%q) = %q, want %q", in, got, want)
		}
	}
}

// Subscriptions send the selectors and cursor of the generation in use
// (docs/protocol.md#subscribe-topic, #subscribe-match and #subscribe-cursors).
func TestSubscribeRequestShape(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		metadata    bool
		wantKeys    []string
		cursorParam string
	}{
		{false, []string{"topic"}, "lastEventID"},
		{true, []string{"match", "match_urlpattern"}, "last_event_id"},
	} {
		h := newFakeHub(t)
		h.metadata = tc.metadata
		h.publish(fakeUpdate{id: "urn:x:1", topics: []string{"https://e.x/a"}})
		h.publish(fakeUpdate{id: "urn:x:2", topics: []string{"https://e.x/a"}})
		c := newTestClient(t, h.url(), Options{Token: "tok123", UserAgent: "mercurectl-test"})
		var got []string
		err := c.Subscribe(t.Context(), SubscribeRequest{
			Selectors:   []Selector{{Value: "https://e.x/a"}, {Value: "https://e.x/b/:id"}},
			LastEventID: "urn:x:1",
			Reconnect:   true,
			OnEvent:     func(ev sse.Event) error { got = append(got, ev.ID); return ErrStop },
		})
		if err != nil || !slices.Equal(got, []string{"urn:x:2"}) {
			t.Fatalf("metadata %v: Subscribe: %v, events %v", tc.metadata, err, got)
		}
		reqs := h.subscribeRequests()
		if len(reqs) != 1 {
			t.Fatalf("%d subscribe requests", len(reqs))
		}
		r := reqs[0]
		if got := selectorKeys(r); !slices.Equal(got, tc.wantKeys) {
			t.Errorf("metadata %v: selector keys %v, want %v", tc.metadata, got, tc.wantKeys)
		}
		if !hasQuery(r, tc.cursorParam, "urn:x:1") {
			t.Errorf("metadata %v: no %s in %s", tc.metadata, tc.cursorParam, r.url.RawQuery)
		}
		if r.header.Get("Last-Event-ID") != "" {
			t.Errorf("first connection sent a Last-Event-ID header")
		}
		for k, want := range map[string]string{
			"Authorization": "Bearer tok123", "Accept": "text/event-stream",
			"Cache-Control": "no-cache", "User-Agent": "mercurectl-test",
		} {
			if got := r.header.Get(k); got != want {
				t.Errorf("header %s = %q, want %q", k, got, want)
			}
		}
	}
}

func TestPublish(t *testing.T) {
	t.Parallel()
	h := newFakeHub(t)
	c := newTestClient(t, h.url(), Options{Token: "pubtok"})
	retry := uint64(2500)
	id, err := c.Publish(t.Context(), PublishRequest{
		Topics:  []string{"https://e.x/books/1", "alt"},
		Data:    "line1\nline2\r\n  indented\n\nlast",
		Private: true,
		ID:      "urn:my:1",
		Type:    "book",
		Retry:   &retry,
	})
	if err != nil || id != "urn:my:1" {
		t.Fatalf("Publish = %q, %v", id, err)
	}
	r := h.requests()[0]
	if r.method != http.MethodPost || r.url.Path != HubPath {
		t.Fatalf("request %s %s", r.method, r.url)
	}
	if got := r.header.Get("Content-Type"); got != "application/x-www-form-urlencoded" {
		t.Errorf("content type %q", got)
	}
	if got := r.header.Get("Authorization"); got != "Bearer pubtok" {
		t.Errorf("authorization %q", got)
	}
	want := map[string][]string{
		"topic": {"https://e.x/books/1", "alt"}, "data": {"line1\nline2\r\n  indented\n\nlast"},
		"private": {"on"}, "id": {"urn:my:1"}, "type": {"book"}, "retry": {"2500"},
	}
	for k, v := range want {
		if !slices.Equal(r.form[k], v) {
			t.Errorf("form %s = %q, want %q", k, r.form[k], v)
		}
	}
	if len(r.form) != len(want) {
		t.Errorf("form has extra fields: %v", r.form)
	}

	// Optional fields are omitted; the generated id is returned trimmed.
	id, err = c.Publish(t.Context(), PublishRequest{Topics: []string{"t"}})
	if err != nil || id != "urn:fake:2" {
		t.Fatalf("Publish = %q, %v", id, err)
	}
	f := h.requests()[1].form
	for _, k := range []string{"private", "id", "type", "retry"} {
		if f.Has(k) {
			t.Errorf("field %s sent: %v", k, f)
		}
	}

	if _, err := c.Publish(t.Context(), PublishRequest{}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("no topic: %v", err)
	}
}

func TestPublishErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status  int
		body    string
		refused bool
	}{
		{401, "Unauthorized\n", true},
		{403, "forbidden", true},
		{400, `Invalid "retry" parameter`, false},
		{413, "", false},
		{500, "boom", false},
	} {
		h := newFakeHub(t)
		h.publishStatus, h.publishBody = tc.status, tc.body
		c := newTestClient(t, h.url(), Options{})
		_, err := c.Publish(t.Context(), PublishRequest{Topics: []string{"t"}})
		he, ok := errors.AsType[*HTTPError](err)
		if !ok || he.StatusCode != tc.status || he.Body != strings.TrimSpace(tc.body) || he.Op != "publish" {
			t.Errorf("%d: error %#v", tc.status, err)
			continue
		}
		if errors.Is(err, ErrRefused) != tc.refused || he.Unauthorized() != tc.refused {
			t.Errorf("%d: refused = %v, want %v", tc.status, errors.Is(err, ErrRefused), tc.refused)
		}
		if errors.Is(err, ErrUnreachable) {
			t.Errorf("%d: unreachable", tc.status)
		}
	}
	c := newTestClient(t, refusedURL(t), Options{})
	if _, err := c.Publish(t.Context(), PublishRequest{Topics: []string{"t"}}); !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrRefused) {
		t.Errorf("refused port: %v", err)
	}
}

func TestPublishTokenFunc(t *testing.T) {
	t.Parallel()
	for _, metadata := range []bool{false, true} {
		h := newFakeHub(t)
		h.metadata = metadata
		var got []TokenRequest
		c := newTestClient(t, h.url(), Options{TokenFunc: func(_ context.Context, r TokenRequest) (string, error) {
			got = append(got, r)
			return "minted-" + r.Protocol.String(), nil
		}})
		if _, err := c.Publish(t.Context(), PublishRequest{Topics: []string{"/b/:x", "a"}}); err != nil {
			t.Fatal(err)
		}
		wantProto, wantType := Protocol07, MatchAuto
		if metadata {
			wantProto, wantType = Protocol08, match.TypeExact // publish topics are always exact
		}
		if len(got) != 1 || got[0].Protocol != wantProto || got[0].Action != ActionPublish ||
			!slices.Equal(got[0].Selectors, Selectors(wantType, "/b/:x", "a")) || (got[0].Metadata != nil) != metadata {
			t.Fatalf("metadata %v: token requests %+v", metadata, got)
		}
		var auth string
		for _, r := range h.requests() {
			if r.method == http.MethodPost {
				auth = r.header.Get("Authorization")
			}
		}
		if auth != "Bearer minted-"+wantProto.String() {
			t.Fatalf("authorization %q", auth)
		}
	}
	h := newFakeHub(t)
	boom := errors.New("no key")
	c := newTestClient(t, h.url(), Options{TokenFunc: func(context.Context, TokenRequest) (string, error) { return "", boom }})
	if _, err := c.Publish(t.Context(), PublishRequest{Topics: []string{"t"}}); !errors.Is(err, boom) {
		t.Fatalf("error %v", err)
	}
}

// If the first connection fails, Subscribe returns at once with a typed error.
func TestSubscribeFirstConnectionFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(h *fakeHub)
		check func(error) bool
	}{
		{"401", func(h *fakeHub) { h.refuse = func(int) int { return 401 } }, func(err error) bool { return errors.Is(err, ErrRefused) }},
		{"403", func(h *fakeHub) { h.refuse = func(int) int { return 403 } }, func(err error) bool { return errors.Is(err, ErrRefused) }},
		{"503", func(h *fakeHub) { h.refuse = func(int) int { return 503 } }, func(err error) bool {
			he, ok := errors.AsType[*HTTPError](err)
			return ok && he.StatusCode == 503 && !errors.Is(err, ErrRefused)
		}},
		{"not an event stream", func(h *fakeHub) { h.contentType = "text/html" }, func(err error) bool { return errors.Is(err, ErrNotEventStream) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newFakeHub(t)
			tt.setup(h)
			c := newTestClient(t, h.url(), Options{ReconnectDelay: time.Millisecond})
			err := c.Subscribe(t.Context(), SubscribeRequest{Selectors: Selectors("", "t"), Reconnect: true, OnEvent: func(sse.Event) error { return nil }})
			if !tt.check(err) {
				t.Fatalf("error %v", err)
			}
			if n := len(h.subscribeRequests()); n != 1 {
				t.Fatalf("%d attempts, want 1", n)
			}
		})
	}
	t.Run("refused port", func(t *testing.T) {
		t.Parallel()
		c := newTestClient(t, refusedURL(t), Options{Protocol: Protocol07})
		start := time.Now()
		err := c.Subscribe(t.Context(), SubscribeRequest{Selectors: Selectors("", "t"), Reconnect: true, OnEvent: func(sse.Event) error { return nil }})
		if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("error %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("took %v", d)
		}
	})
}

// collector gathers events from a subscription and signals connections.
type collector struct {
	mu       sync.Mutex
	ids      []string
	data     []string
	conns    []ConnInfo
	connCh   chan ConnInfo
	eventCh  chan sse.Event
	stopAt   int
	disconns []time.Duration
}

func newCollector() *collector {
	return &collector{connCh: make(chan ConnInfo, 100), eventCh: make(chan sse.Event, 1000)}
}

func (c *collector) request(sels ...string) SubscribeRequest {
	return SubscribeRequest{
		Selectors: Selectors("", sels...),
		Reconnect: true,
		OnEvent: func(ev sse.Event) error {
			c.mu.Lock()
			c.ids = append(c.ids, ev.ID)
			c.data = append(c.data, ev.Data)
			n := len(c.ids)
			c.mu.Unlock()
			c.eventCh <- ev
			if c.stopAt > 0 && n >= c.stopAt {
				return ErrStop
			}
			return nil
		},
		OnConnect: func(ci ConnInfo) {
			c.mu.Lock()
			c.conns = append(c.conns, ci)
			c.mu.Unlock()
			c.connCh <- ci
		},
		OnDisconnect: func(_ error, d time.Duration) {
			c.mu.Lock()
			c.disconns = append(c.disconns, d)
			c.mu.Unlock()
		},
	}
}

func (c *collector) gotIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ids)
}

// waitConn waits for the next accepted connection.
func waitConn(tb testing.TB, c *collector) ConnInfo {
	tb.Helper()
	select {
	case ci := <-c.connCh:
		return ci
	case <-time.After(10 * time.Second):
		tb.Fatal("no connection")
		return ConnInfo{}
	}
}

// waitEvents waits until n events were received in total.
func waitEvents(tb testing.TB, c *collector, n int) {
	tb.Helper()
	deadline := time.After(10 * time.Second)
	for len(c.gotIDs()) < n {
		select {
		case <-c.eventCh:
		case <-deadline:
			tb.Fatalf("got %d events, want %d: %v", len(c.gotIDs()), n, c.gotIDs())
		}
	}
}

// runSubscribe runs Subscribe in the background; the returned function
// waits for its result.
func runSubscribe(tb testing.TB, ctx context.Context, c *Client, r SubscribeRequest) func() error {
	tb.Helper()
	errc := make(chan error, 1)
	go func() { errc <- c.Subscribe(ctx, r) }()
	return func() error {
		tb.Helper()
		select {
		case err := <-errc:
			return err
		case <-time.After(10 * time.Second):
			tb.Fatal("Subscribe did not return")
			return nil
		}
	}
}

// docs/protocol.md#subscribe-cursors: reconnections carry Last-Event-ID; with
// the hub's history, nothing is lost or duplicated.
func TestSubscribeReconnectResumes(t *testing.T) {
	t.Parallel()
	for _, abort := range []bool{false, true} {
		t.Run(map[bool]string{false: "clean end", true: "broken connection"}[abort], func(t *testing.T) {
			t.Parallel()
			h := newFakeHub(t)
			h.dropAfter, h.abortDrop = 2, abort
			h.retry = 5
			var want []string
			want = append(want, h.publish(fakeUpdate{topics: []string{"t"}, data: "old"}))
			col := newCollector()
			col.stopAt = 9
			c := newTestClient(t, h.url(), Options{})
			req := col.request("t")
			req.LastEventID = Earliest
			wait := runSubscribe(t, t.Context(), c, req)
			waitConn(t, col)
			for i := range 8 {
				want = append(want, h.publish(fakeUpdate{topics: []string{"t"}, data: "d"}))
				if i%3 == 0 {
					h.publish(fakeUpdate{topics: []string{"other"}})
				}
			}
			if err := wait(); err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			if got := col.gotIDs(); !slices.Equal(got, want) {
				t.Fatalf("ids\n got %v\nwant %v", got, want)
			}
			reqs := h.subscribeRequests()
			if len(reqs) < 4 {
				t.Fatalf("%d connections, want at least 4", len(reqs))
			}
			if !hasQuery(reqs[0], "lastEventID", Earliest) {
				t.Errorf("first connection: %s", reqs[0].url.RawQuery)
			}
			for i, r := range reqs[1:] {
				// Each reconnection resumes after the last event of the previous one.
				if got, want := r.header.Get("Last-Event-ID"), want[2*(i+1)-1]; got != want {
					t.Errorf("reconnection %d: Last-Event-ID %q, want %q", i+1, got, want)
				}
				if r.url.Query().Has("lastEventID") {
					t.Errorf("reconnection %d still sends the query cursor", i+1)
				}
			}
			col.mu.Lock()
			defer col.mu.Unlock()
			if !col.conns[1].Reconnect || col.conns[0].Reconnect || col.conns[1].ResponseCursor != want[1] {
				t.Errorf("conn infos %+v", col.conns[:2])
			}
		})
	}
}

// A hub restart: the port refuses connections for a while, then the hub
// comes back with its history; the subscriber resumes without loss or
// duplicate.
func TestSubscribeHubRestart(t *testing.T) {
	t.Parallel()
	h := newFakeHub(t)
	h.metadata = true
	col := newCollector()
	col.stopAt = 6
	c := newTestClient(t, h.url(), Options{ReconnectDelay: 20 * time.Millisecond, MaxReconnectDelay: 100 * time.Millisecond})
	wait := runSubscribe(t, t.Context(), c, col.request("t"))
	waitConn(t, col)
	var want []string
	for range 3 {
		want = append(want, h.publish(fakeUpdate{topics: []string{"t"}}))
	}
	waitEvents(t, col, 3)
	h.stop()
	for range 3 { // published "elsewhere" while this node is down, kept in history
		h.mu.Lock()
		h.nextID++
		id := "urn:down:" + string(rune('a'+h.nextID))
		h.history = append(h.history, fakeUpdate{id: id, topics: []string{"t"}})
		h.mu.Unlock()
		want = append(want, id)
	}
	time.Sleep(300 * time.Millisecond) // several refused reconnection attempts
	h.start(strings.TrimSuffix(strings.TrimPrefix(h.url(), "http://"), HubPath))
	if err := wait(); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if got := col.gotIDs(); !slices.Equal(got, want) {
		t.Fatalf("ids\n got %v\nwant %v", got, want)
	}
	last := h.subscribeRequests()[len(h.subscribeRequests())-1]
	if got := last.header.Get("Last-Event-ID"); got != want[2] {
		t.Fatalf("resumed with %q, want %q", got, want[2])
	}
	if !hasQuery(last, "match", "t") {
		t.Fatalf("reconnection lost the draft-08 selectors: %s", last.url.RawQuery)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.disconns) < 2 {
		t.Fatalf("only %d reconnection attempts while the hub was down", len(col.disconns))
	}
	for i, d := range col.disconns {
		if d < 10*time.Millisecond || d > 100*time.Millisecond {
			t.Errorf("delay %d = %v, outside [base/2, cap]", i, d)
		}
	}
}

// The hub's retry: sets the backoff base, even without an event: the client
// reconnects after the delay it reports, jittered within [retry/2, retry], on
// the clock of a synctest bubble.
func TestSubscribeHonoursRetry(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h, tr := newBubbleFakeHub(t)
		h.retry = 60
		h.dropAfter = 1
		col := newCollector()
		col.stopAt = 2
		// Without the hub's retry, the first reconnection would wait an hour.
		c := newBubbleClient(t, tr, Options{ReconnectDelay: time.Hour, MaxReconnectDelay: 2 * time.Hour})
		wait := runSubscribe(t, t.Context(), c, col.request("t"))
		waitConn(t, col)
		start := time.Now()
		h.publish(fakeUpdate{topics: []string{"t"}})
		waitConn(t, col)
		elapsed := time.Since(start)
		h.publish(fakeUpdate{topics: []string{"t"}})
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		col.mu.Lock()
		defer col.mu.Unlock()
		d := col.disconns[0]
		if d < 30*time.Millisecond || d > 60*time.Millisecond {
			t.Fatalf("delay %v, want in [30ms, 60ms]", d)
		}
		if elapsed != d {
			t.Fatalf("reconnected after %v, want after the %v delay", elapsed, d)
		}
	})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	c, err := New(Options{HubURL: "http://h", HTTPClient: &http.Client{}, ReconnectDelay: 100 * time.Millisecond, MaxReconnectDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s := &subscription{c: c}
	check := func(n int, lo, hi time.Duration) {
		t.Helper()
		for range 200 {
			if d := s.backoff(n); d < lo || d > hi {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, lo, hi)
			}
		}
	}
	check(0, 50*time.Millisecond, 100*time.Millisecond)
	check(1, 100*time.Millisecond, 200*time.Millisecond)
	check(3, 400*time.Millisecond, 800*time.Millisecond)
	check(4, 500*time.Millisecond, time.Second) // capped
	check(1000, 500*time.Millisecond, time.Second)
	s.retry, s.hasRetry = 4000, true // the hub's retry beyond the cap is honoured
	check(0, 2*time.Second, 4*time.Second)
	check(5, 2*time.Second, 4*time.Second)
	s.retry = 0
	check(0, minReconnectDelay/2, minReconnectDelay)
	s.retry = 1 << 62
	check(0, maxRetry/2, maxRetry)
	// Jitter: not always the same value.
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[s.backoff(0)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("backoff has no jitter: %v", seen)
	}
}

// A 401/403 on a reconnection ends Subscribe with the refused error.
func TestSubscribeRefusedOnReconnect(t *testing.T) {
	t.Parallel()
	h := newFakeHub(t)
	h.dropAfter, h.retry = 1, 1
	h.refuse = func(conn int) int {
		if conn >= 2 {
			return http.StatusUnauthorized
		}
		return 0
	}
	col := newCollector()
	c := newTestClient(t, h.url(), Options{})
	wait := runSubscribe(t, t.Context(), c, col.request("t"))
	waitConn(t, col)
	h.publish(fakeUpdate{topics: []string{"t"}})
	waitConn(t, col)
	h.publish(fakeUpdate{topics: []string{"t"}})
	err := wait()
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("error %v, want ErrRefused", err)
	}
	if n := len(h.subscribeRequests()); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
}

// Transient statuses on reconnection are retried.
func TestSubscribeRetriesUnavailable(t *testing.T) {
	t.Parallel()
	h := newFakeHub(t)
	h.dropAfter, h.retry = 1, 1
	h.refuse = func(conn int) int {
		if conn == 1 || conn == 2 {
			return http.StatusServiceUnavailable
		}
		return 0
	}
	col := newCollector()
	col.stopAt = 2
	c := newTestClient(t, h.url(), Options{})
	wait := runSubscribe(t, t.Context(), c, col.request("t"))
	waitConn(t, col)
	h.publish(fakeUpdate{topics: []string{"t"}})
	waitConn(t, col)
	h.publish(fakeUpdate{topics: []string{"t"}})
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if n := len(h.subscribeRequests()); n != 4 {
		t.Fatalf("%d connections, want 4", n)
	}
}

// Cancelling the context ends Subscribe promptly, while streaming and while
// waiting to reconnect.
func TestSubscribeContextCancel(t *testing.T) {
	t.Parallel()
	t.Run("streaming", func(t *testing.T) {
		t.Parallel()
		h := newFakeHub(t)
		col := newCollector()
		ctx, cancel := context.WithCancel(t.Context())
		c := newTestClient(t, h.url(), Options{})
		wait := runSubscribe(t, ctx, c, col.request("t"))
		waitConn(t, col)
		start := time.Now()
		cancel()
		if err := wait(); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("took %v", d)
		}
	})
	t.Run("backing off", func(t *testing.T) {
		t.Parallel()
		h := newFakeHub(t)
		h.dropAfter = 1
		col := newCollector()
		ctx, cancel := context.WithCancel(t.Context())
		c := newTestClient(t, h.url(), Options{ReconnectDelay: time.Hour})
		req := col.request("t")
		req.OnDisconnect = func(error, time.Duration) { cancel() }
		wait := runSubscribe(t, ctx, c, req)
		waitConn(t, col)
		h.publish(fakeUpdate{topics: []string{"t"}})
		if err := wait(); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		h := newFakeHub(t)
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		c := newTestClient(t, h.url(), Options{})
		err := c.Subscribe(ctx, SubscribeRequest{Selectors: Selectors("", "t"), Reconnect: true, OnEvent: func(sse.Event) error { return nil }})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v", err)
		}
	})
}

// A stalled connection (nothing at all for StallTimeout) is replaced.
func TestSubscribeStallTimeout(t *testing.T) {
	t.Parallel()
	h := newFakeHub(t)
	h.silent, h.retry = true, -1
	col := newCollector()
	c := newTestClient(t, h.url(), Options{ReconnectDelay: 10 * time.Millisecond})
	req := col.request("t")
	req.StallTimeout = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	wait := runSubscribe(t, ctx, c, req)
	waitConn(t, col)
	waitConn(t, col) // reconnected after the stall
	cancel()
	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v", err)
	}
}

func TestSubscribeStopsOnCallbackError(t *testing.T) {
	t.Parallel()
	h := newFakeHub(t)
	for range 3 {
		h.publish(fakeUpdate{topics: []string{"t"}, data: "x"})
	}
	c := newTestClient(t, h.url(), Options{})
	boom := errors.New("disk full")
	n := 0
	err := c.Subscribe(t.Context(), SubscribeRequest{Selectors: Selectors("", "t"), LastEventID: Earliest, Reconnect: true,
		OnEvent: func(sse.Event) error {
			n++
			if n == 2 {
				return boom
			}
			return nil
		}})
	if !errors.Is(err, boom) || n != 2 {
		t.Fatalf("error %v after %d events", err, n)
	}
	// Without Reconnect, a clean end of the stream returns nil.
	h.dropAfter = 1
	err = c.Subscribe(t.Context(), SubscribeRequest{Selectors: Selectors("", "t"), LastEventID: Earliest, OnEvent: func(sse.Event) error { return nil }})
	if err != nil {
		t.Fatalf("without Reconnect: %v", err)
	}
	if _, _, err := c.Protocol(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(t.Context(), SubscribeRequest{Selectors: Selectors("", "t")}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("no OnEvent: %v", err)
	}
}

func TestConnInfoGap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ci   ConnInfo
		want bool
	}{
		{ConnInfo{RequestCursor: "a", ResponseCursor: "a", HasResponseCursor: true}, false},
		{ConnInfo{RequestCursor: "a", ResponseCursor: Earliest, HasResponseCursor: true}, true},
		{ConnInfo{RequestCursor: "a", ResponseCursor: "z", HasResponseCursor: true}, true}, // 0.x: newest id
		{ConnInfo{RequestCursor: "a"}, false},                                              // hub says nothing
		{ConnInfo{RequestCursor: Earliest, ResponseCursor: Earliest, HasResponseCursor: true}, false},
		{ConnInfo{ResponseCursor: "x", HasResponseCursor: true}, false},
	}
	for _, tt := range tests {
		if got := tt.ci.Gap(); got != tt.want {
			t.Errorf("%+v: Gap = %v", tt.ci, got)
		}
	}
}

// TLS failures are unreachable too; a redirect that turns the publish into a
// GET is reported instead of reading an event stream forever.
func TestTLSAndRedirects(t *testing.T) {
	t.Parallel()
	h := newFakeHub(t)
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, h.url()+"?"+r.URL.RawQuery, http.StatusFound)
	}))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	c := newTestClient(t, tlsSrv.URL, Options{Protocol: Protocol07}) // the test certificate is not trusted
	if _, err := c.Publish(t.Context(), PublishRequest{Topics: []string{"t"}}); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v", err)
	}
	err := c.Subscribe(t.Context(), SubscribeRequest{Selectors: Selectors("", "t"), OnEvent: func(sse.Event) error { return nil }})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("subscribe, untrusted certificate: %v", err)
	}

	tr := tlsSrv.Client().Transport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	c, err = New(Options{HubURL: tlsSrv.URL, HTTPClient: &http.Client{Transport: tr}, Protocol: Protocol07})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Publish(t.Context(), PublishRequest{Topics: []string{"t"}})
	if err == nil || !strings.Contains(err.Error(), "redirected") {
		t.Fatalf("redirected publish: %v", err)
	}
	// The subscription follows the redirect normally.
	h.publish(fakeUpdate{topics: []string{"t"}, data: "via redirect"})
	var got string
	err = c.Subscribe(t.Context(), SubscribeRequest{Selectors: Selectors("", "t"), LastEventID: Earliest,
		OnEvent: func(ev sse.Event) error { got = ev.Data; return ErrStop }})
	if err != nil || got != "via redirect" {
		t.Fatalf("subscribe through a redirect: %q, %v", got, err)
	}
}

// In auto mode a URI template is sent as a draft-07 topic= even to a
// draft-08 hub, with a legacy token; a hub that serves draft-08 only
// refuses it, and the error says so and suggests the URL pattern.
func TestTemplateInAutoModeUsesDraft07(t *testing.T) {
	t.Parallel()
	const tmpl = "https://e.x/books/{id}"
	h := newFakeHub(t)
	h.metadata = true
	h.publish(fakeUpdate{id: "urn:x:1", topics: []string{"https://e.x/books/{id}"}})
	var protos []Protocol
	c := newTestClient(t, h.url(), Options{TokenFunc: func(_ context.Context, r TokenRequest) (string, error) {
		protos = append(protos, r.Protocol)
		return "tok", nil
	}})
	var got []string
	err := c.Subscribe(t.Context(), SubscribeRequest{
		Selectors:   Selectors(MatchAuto, tmpl, "https://e.x/exact"),
		LastEventID: Earliest,
		OnEvent:     func(ev sse.Event) error { got = append(got, ev.ID); return ErrStop },
	})
	if err != nil || !slices.Equal(got, []string{"urn:x:1"}) {
		t.Fatalf("Subscribe: %v, events %v", err, got)
	}
	r := h.subscribeRequests()[0]
	if keys := selectorKeys(r); !slices.Equal(keys, []string{"topic"}) || !hasQuery(r, "topic", tmpl) || !hasQuery(r, cursorParam07, Earliest) {
		t.Errorf("request %s: want draft-07 topic= and lastEventID", r.url.RawQuery)
	}
	if !slices.Equal(protos, []Protocol{Protocol07}) {
		t.Errorf("tokens requested for %v, want draft-07", protos)
	}

	h.draft08Only = true
	err = c.Subscribe(t.Context(), SubscribeRequest{
		Selectors: Selectors(match.TypeTemplate, "https://e.x/books/{id}"),
		OnEvent:   func(sse.Event) error { return ErrStop },
	})
	if !errors.Is(err, ErrTemplateSelector) || !strings.Contains(err.Error(), "draft-08 only") ||
		!strings.Contains(err.Error(), `"https://e.x/books/:id"`) {
		t.Fatalf("draft-08-only hub: %v", err)
	}

	err = c.Subscribe(t.Context(), SubscribeRequest{
		Selectors: Selectors(MatchAuto, tmpl, "https://e.x/authors/:id"),
		OnEvent:   func(sse.Event) error { return ErrStop },
	})
	if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "cannot mix") {
		t.Fatalf("template and URL pattern: %v", err)
	}

	// Forcing draft-08 keeps the usage error.
	c08 := newTestClient(t, h.url(), Options{Protocol: Protocol08})
	err = c08.Subscribe(t.Context(), SubscribeRequest{Selectors: Selectors(MatchAuto, tmpl), OnEvent: func(sse.Event) error { return ErrStop }})
	if !errors.Is(err, ErrTemplateSelector) {
		t.Fatalf("forced draft-08: %v", err)
	}
}

// Errors from the hub tell the Bearer challenge in words, and a 400 with a
// challenge (a malformed token, in draft-08) is a refusal of the
// credentials like 401 and 403.
func TestHTTPErrorMessage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err     HTTPError
		want    string
		refused bool
	}{
		{HTTPError{Op: "subscribe", StatusCode: 401, Status: "401 Unauthorized", Body: "invalid token: signature is invalid",
			Challenge: `Bearer error="invalid_token", resource_metadata="http://h/.well-known/oauth-protected-resource/.well-known/mercure"`},
			"subscribe: hub answered 401 Unauthorized: invalid token: signature is invalid", true},
		{HTTPError{Op: "subscribe", StatusCode: 401, Status: "401 Unauthorized", Body: "Unauthorized",
			Challenge: `Bearer error="invalid_token", error_description="The access token expired"`},
			"subscribe: hub answered 401 Unauthorized: Unauthorized (The access token expired)", true},
		{HTTPError{Op: "publish", StatusCode: 403, Status: "403 Forbidden", Challenge: `Bearer error="insufficient_scope"`},
			"publish: hub answered 403 Forbidden: the token does not grant this", true},
		{HTTPError{Op: "publish", StatusCode: 400, Status: "400 Bad Request", Body: "malformed authorization",
			Challenge: `Bearer error="invalid_request", resource_metadata="x"`},
			"publish: hub answered 400 Bad Request: malformed authorization", true},
		{HTTPError{Op: "publish", StatusCode: 400, Status: "400 Bad Request", Body: `Invalid "retry" parameter`},
			`publish: hub answered 400 Bad Request: Invalid "retry" parameter`, false},
		{HTTPError{Op: "subscribe", StatusCode: 503}, "subscribe: hub answered 503", false},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if got := errors.Is(&tt.err, ErrRefused); got != tt.refused {
			t.Errorf("%q: refused %v, want %v", tt.want, got, tt.refused)
		}
	}
}

// A 503 ("try again") is published again, up to Attempts times in all;
// other refusals are not.
func TestPublishRetriesUnavailable(t *testing.T) {
	t.Parallel()
	h := newFakeHub(t)
	c := newTestClient(t, h.url(), Options{Token: "tok", Protocol: Protocol07})
	posts := func() int {
		n := 0
		for _, r := range h.requests() {
			if r.method == http.MethodPost {
				n++
			}
		}
		return n
	}
	h.unavailable = 2
	id, err := c.Publish(t.Context(), PublishRequest{Topics: []string{"t"}, ID: "u-1", Attempts: 3, RetryDelay: time.Millisecond})
	if err != nil || id != "u-1" || posts() != 3 {
		t.Fatalf("two 503 then 200: %q, %v after %d requests", id, err, posts())
	}
	h.unavailable = 5
	_, err = c.Publish(t.Context(), PublishRequest{Topics: []string{"t"}, Attempts: 3, RetryDelay: time.Millisecond})
	if he, ok := errors.AsType[*HTTPError](err); !ok || he.StatusCode != 503 || posts() != 6 {
		t.Fatalf("503 three times: %v after %d requests in all", err, posts())
	}
	h.unavailable = 0
	h.publishStatus = http.StatusBadRequest
	if _, err := c.Publish(t.Context(), PublishRequest{Topics: []string{"t"}, Attempts: 3}); err == nil || posts() != 7 {
		t.Fatalf("400: %v after %d requests in all, want one more", err, posts())
	}
}
