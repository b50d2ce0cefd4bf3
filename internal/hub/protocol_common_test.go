package hub

// Protocol conformance tests shared by both generations, over real HTTP.
// Each test cites the docs/protocol.md section it checks. The helpers here (prefixed
// "conf") serve protocol07_test.go, protocol08_test.go, interop_test.go and
// fuzz_test.go too.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/sse"
	"github.com/mercurectl/mercurectl/internal/token"
)

// confURL is the hub URL with a raw query ("" for none).
func confURL(th *testHub, query string) string {
	if query == "" {
		return th.url
	}
	return th.url + "?" + query
}

// confRequest builds a request to the hub. A non-empty body is sent as a
// form unless hdr says otherwise; hdr is copied as is (so two values of a
// header make two header lines).
func confRequest(tb testing.TB, ctx context.Context, th *testHub, method, query string, hdr http.Header, body string) *http.Request {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, confURL(th, query), rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	return req
}

// confDo sends one request and returns the response and its body. A
// successful subscription (200 text/event-stream) is closed at once and its
// body is reported as "".
func confDo(tb testing.TB, th *testHub, method, query string, hdr http.Header, body string) (*http.Response, string) {
	tb.Helper()
	ctx, cancel := context.WithCancel(tb.Context())
	defer cancel()
	resp, err := th.httpClient().Do(confRequest(tb, ctx, th, method, query, hdr, body))
	if err != nil {
		tb.Fatalf("%s %s: %v", method, query, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Type") == "text/event-stream" {
		return resp, ""
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, query, err)
	}
	return resp, string(b)
}

// confPublishRaw posts a raw form body with the given headers.
func confPublishRaw(tb testing.TB, th *testHub, hdr http.Header, body string) (*http.Response, string) {
	tb.Helper()
	return confDo(tb, th, http.MethodPost, "", hdr, body)
}

// confStatus fails the test unless resp has the wanted status.
func confStatus(tb testing.TB, what string, resp *http.Response, body string, want int) {
	tb.Helper()
	if resp.StatusCode != want {
		tb.Errorf("%s: status %d (%q), want %d", what, resp.StatusCode, strings.TrimSpace(body), want)
	}
}

// confMetadataURL is the RFC 9728 metadata address of a test hub.
func confMetadataURL(th *testHub) string { return strings.TrimSuffix(th.url, Path) + MetadataPath }

// confChallenge checks the WWW-Authenticate header of a draft-08 reply:
// code "" wants the bare challenge, "-" wants no header at all.
func confChallenge(tb testing.TB, what string, th *testHub, resp *http.Response, code string) {
	tb.Helper()
	got := resp.Header.Values("WWW-Authenticate")
	var want []string
	switch code {
	case "-":
	case "":
		want = []string{`Bearer resource_metadata="` + confMetadataURL(th) + `"`}
	default:
		// The reason is checked by TestRefusalReasons; here only that
		// there is one, in the RFC 6750 character set.
		want = []string{`Bearer error="` + code + `", error_description="DESC", resource_metadata="` + confMetadataURL(th) + `"`}
		if len(got) == 1 {
			if m := confDescription.FindStringSubmatch(got[0]); m != nil {
				got = []string{strings.Replace(got[0], m[0], `error_description="DESC"`, 1)}
			}
		}
	}
	if !slices.Equal(got, want) {
		tb.Errorf("%s: WWW-Authenticate = %q, want %q", what, got, want)
	}
}

// confDescription matches a non-empty RFC 6750 error_description.
var confDescription = regexp.MustCompile(`error_description="[\x20\x21\x23-\x5b\x5d-\x7e]+"`)

// confRaw is an open subscription whose body is kept byte for byte.
type confRaw struct {
	resp *http.Response
	mu   sync.Mutex
	buf  []byte
	end  error // set when the body ended
	wake chan struct{}
}

// confOpen opens a subscription and fails the test unless it is 200. It
// returns once the response headers are in: the subscription is live.
func confOpen(tb testing.TB, th *testHub, method, query string, hdr http.Header, body string) *confRaw {
	tb.Helper()
	ctx, cancel := context.WithCancel(tb.Context())
	resp, err := th.httpClient().Do(confRequest(tb, ctx, th, method, query, hdr, body))
	if err != nil {
		cancel()
		tb.Fatalf("subscribe %s: %v", query, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		cancel()
		tb.Fatalf("subscribe %s %s: %d %s", method, query, resp.StatusCode, b)
	}
	r := &confRaw{resp: resp, wake: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(p)
			r.mu.Lock()
			r.buf = append(r.buf, p[:n]...)
			if err != nil {
				r.end = err
			}
			r.mu.Unlock()
			select {
			case r.wake <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	tb.Cleanup(func() {
		cancel()
		_ = resp.Body.Close()
		<-done
	})
	return r
}

// snapshot returns the bytes received so far and whether the body ended.
func (r *confRaw) snapshot() (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.buf), r.end != nil
}

// waitUntil waits until ok accepts the bytes received so far.
func (r *confRaw) waitUntil(tb testing.TB, what string, within time.Duration, ok func(string) bool) string {
	tb.Helper()
	deadline := time.After(within)
	for {
		s, ended := r.snapshot()
		if ok(s) {
			return s
		}
		if ended {
			tb.Fatalf("stream ended before %s; got %q", what, s)
		}
		select {
		case <-r.wake:
		case <-deadline:
			tb.Fatalf("no %s within %v; got %q", what, within, s)
		}
	}
}

// waitFor waits until the stream holds substr and returns everything so far.
func (r *confRaw) waitFor(tb testing.TB, substr string) string {
	tb.Helper()
	return r.waitUntil(tb, fmt.Sprintf("%q", substr), 5*time.Second, func(s string) bool { return strings.Contains(s, substr) })
}

// confParse parses the complete events of a wire capture.
func confParse(tb testing.TB, wire string) []sse.Event {
	tb.Helper()
	rd := sse.NewReader(strings.NewReader(wire), sse.ReaderOptions{})
	var out []sse.Event
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatalf("parse %q: %v", wire, err)
		}
		out = append(out, ev)
	}
}

// events waits for at least n events and returns all received so far.
func (r *confRaw) events(tb testing.TB, n int) []sse.Event {
	tb.Helper()
	var evs []sse.Event
	r.waitUntil(tb, fmt.Sprintf("%d events", n), 5*time.Second, func(s string) bool {
		evs = confParse(tb, s)
		return len(evs) >= n
	})
	return evs
}

// ids returns the ids of evs.
func confIDs(evs []sse.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// closedWithin waits for the hub to end the stream.
func (r *confRaw) closedWithin(tb testing.TB, within time.Duration) {
	tb.Helper()
	deadline := time.After(within)
	for {
		if _, ended := r.snapshot(); ended {
			return
		}
		select {
		case <-r.wake:
		case <-deadline:
			tb.Fatalf("stream still open after %v", within)
		}
	}
}

// confSign signs claims with HMAC key under the given header. A header value
// of nil removes that header member (e.g. "typ").
func confSign(tb testing.TB, alg string, header, claims map[string]any, key []byte) string {
	tb.Helper()
	m := jwt.GetSigningMethod(alg)
	if m == nil {
		tb.Fatalf("unknown alg %q", alg)
	}
	t := jwt.NewWithClaims(m, jwt.MapClaims(claims))
	for k, v := range header {
		if v == nil {
			delete(t.Header, k)
		} else {
			t.Header[k] = v
		}
	}
	var signKey any = key
	if alg == "none" {
		signKey = jwt.UnsafeAllowNoneSignatureType
	}
	s, err := t.SignedString(signKey)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// confTopic is one topic of an authorization detail.
func confTopic(match, matchType string) map[string]any {
	t := map[string]any{"match": match}
	if matchType != "" {
		t["match_type"] = matchType
	}
	return t
}

// confDetail is a Mercure authorization detail.
func confDetail(actions []string, topics ...any) map[string]any {
	return map[string]any{"type": token.DetailType, "actions": actions, "topics": topics}
}

// confAccessClaims are the claims of a valid access token for th, with the
// given details.
func confAccessClaims(th *testHub, details ...any) map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"iss": "mercurectl", "aud": th.url, "sub": "tester", "client_id": "tests",
		"iat": now, "exp": now + 3600, "jti": "j1",
		"authorization_details": details,
	}
}

// confAccess signs access-token claims with the test key.
func confAccess(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	return confSign(tb, "HS256", map[string]any{"typ": "at+jwt"}, claims, testKey)
}

// confStored returns the update with the given Seq from the hub's store.
func confStored(tb testing.TB, th *testHub) []*history.Update {
	tb.Helper()
	var out []*history.Update
	err := th.store.Scan(tb.Context(), 0, th.store.LastSeq(), func(u *history.Update) error {
		out = append(out, u)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// tokenKind builds, for a test table, a publisher token of each generation.
type confGen struct {
	name string
	gen  generation
	// pub returns a token that may publish on the given selectors.
	pub func(tb testing.TB, th *testHub, topics ...string) string
	// sub returns a token that may subscribe on the given selectors.
	sub func(tb testing.TB, th *testHub, topics ...string) string
	// query is the subscription query for one selector.
	query func(sel string) string
	// cursor is the name of the query cursor parameter; header is the
	// response cursor header.
	cursor, header string
}

var confGens = []confGen{
	{
		name: "draft07", gen: gen07,
		pub:    func(tb testing.TB, _ *testHub, t ...string) string { return legacyToken(tb, t, nil) },
		sub:    func(tb testing.TB, _ *testHub, t ...string) string { return legacyToken(tb, nil, t) },
		query:  func(sel string) string { return "topic=" + url.QueryEscape(sel) },
		cursor: "lastEventID", header: "Last-Event-ID",
	},
	{
		name: "draft08", gen: gen08,
		pub:    func(tb testing.TB, th *testHub, t ...string) string { return th.accessToken(tb, t, nil) },
		sub:    func(tb testing.TB, th *testHub, t ...string) string { return th.accessToken(tb, nil, t) },
		query:  func(sel string) string { return "match=" + url.QueryEscape(sel) },
		cursor: "last_event_id", header: "Mercure-Last-Event-ID",
	},
}

// docs/protocol.md#subscribe-methods: HEAD answers like a subscription but
// registers nothing; methods other than GET, HEAD, POST, QUERY and OPTIONS
// get 405.
func TestHeadAndOtherMethods(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := th.accessToken(t, nil, []string{"*"})

	resp, body := confDo(t, th, http.MethodHead, "match=a", bearer(tok), "")
	confStatus(t, "HEAD", resp, body, http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("HEAD Content-Type = %q", ct)
	}
	if n := th.h.Subscribers(); n != 0 {
		t.Errorf("HEAD registered %d subscribers", n)
	}
	// HEAD is validated like GET.
	resp, body = confDo(t, th, http.MethodHead, "", bearer(tok), "")
	confStatus(t, "HEAD without matcher", resp, body, http.StatusBadRequest)
	resp, body = confDo(t, th, http.MethodHead, "match=a", nil, "")
	confStatus(t, "HEAD without token", resp, body, http.StatusUnauthorized)

	// OPTIONS (outside CORS) answers with the methods that Allow lists.
	resp, body = confDo(t, th, http.MethodOptions, "", nil, "")
	confStatus(t, "OPTIONS", resp, body, http.StatusNoContent)
	if got := resp.Header.Get("Allow"); got != "GET, HEAD, POST, QUERY, OPTIONS" {
		t.Errorf("OPTIONS: Allow = %q", got)
	}
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch, "PROPFIND", "query"} {
		resp, body := confDo(t, th, m, "match=a", bearer(tok), "")
		confStatus(t, m, resp, body, http.StatusMethodNotAllowed)
		allow := resp.Header.Get("Allow")
		for _, want := range []string{"GET", "HEAD", "POST", "QUERY"} {
			if !strings.Contains(allow, want) {
				t.Errorf("%s: Allow = %q lacks %s", m, allow, want)
			}
		}
	}
}

// docs/protocol.md#subscribe-methods and #subscribe-cursors: QUERY carries a
// form body that is unioned with the query; for the cursor the query beats
// the body and the Last-Event-ID header beats both. GET bodies are not read.
func TestQueryMethodUnionsBodyAndQuery(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := th.accessToken(t, []string{"*"}, []string{"*"})
	for _, id := range []string{"q1", "q2", "q3", "q4"} {
		th.mustPublish(t, tok, url.Values{"topic": {"t"}, "id": {id}})
	}
	cases := []struct {
		name, query, body string
		header            string
		want              string // response cursor
		events            []string
	}{
		{"body cursor", "match=t", "last_event_id=q1", "", "q1", []string{"q2", "q3", "q4"}},
		{"matcher in body", "last_event_id=q1", "match=t", "", "q1", []string{"q2", "q3", "q4"}},
		{"query beats body", "match=t&last_event_id=q2", "last_event_id=q1", "", "q2", []string{"q3", "q4"}},
		{"header beats both", "match=t&last_event_id=q2", "last_event_id=q1", "q3", "q3", []string{"q4"}},
	}
	for _, c := range cases {
		hdr := bearer(tok)
		if c.header != "" {
			hdr.Set("Last-Event-ID", c.header)
		}
		s := confOpen(t, th, methodQuery, c.query, hdr, c.body)
		if got := s.resp.Header.Get("Mercure-Last-Event-ID"); got != c.want {
			t.Errorf("%s: Mercure-Last-Event-ID = %q, want %q", c.name, got, c.want)
		}
		if got := confIDs(s.events(t, len(c.events))); !slices.Equal(got, c.events) {
			t.Errorf("%s: replayed %q, want %q", c.name, got, c.events)
		}
	}

	// Matchers of the query and of the body add up.
	s := confOpen(t, th, methodQuery, "match=a", bearer(tok), "match=b&foo=1")
	a := th.mustPublish(t, tok, url.Values{"topic": {"a"}})
	th.mustPublish(t, tok, url.Values{"topic": {"c"}})
	b := th.mustPublish(t, tok, url.Values{"topic": {"b"}})
	if got := confIDs(s.events(t, 2)); !slices.Equal(got, []string{a, b}) {
		t.Errorf("union of query and body matchers: got %q, want %q", got, []string{a, b})
	}

	// A draft-07 subscription may use QUERY too (the hub's choice).
	s7 := confOpen(t, th, methodQuery, "", bearer(legacyToken(t, nil, []string{"*"})), "topic=t&lastEventID=q3")
	if got := s7.resp.Header.Get("Last-Event-ID"); got != "q3" {
		t.Errorf("draft-07 QUERY: Last-Event-ID = %q, want q3", got)
	}
	if got := confIDs(s7.events(t, 1)); got[0] != "q4" {
		t.Errorf("draft-07 QUERY replayed %q", got)
	}

	// GET never reads a body: its cursor there is not a cursor.
	sg := confOpen(t, th, http.MethodGet, "match=t", bearer(tok), "last_event_id=q1")
	if got := sg.resp.Header.Values("Mercure-Last-Event-ID"); got != nil {
		t.Errorf("GET with a body cursor: Mercure-Last-Event-ID = %q, want none", got)
	}
}

// docs/protocol.md#subscribe-methods and #publish-limits: a QUERY body above
// the body cap gets 413.
func TestQueryBodyTooLarge(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.MaxBodySize = 64 })
	tok := th.accessToken(t, nil, []string{"*"})
	resp, body := confDo(t, th, methodQuery, "", bearer(tok), "match=a&foo="+strings.Repeat("x", 100))
	confStatus(t, "QUERY with a large body", resp, body, http.StatusRequestEntityTooLarge)
	resp, body = confDo(t, th, methodQuery, "", bearer(tok), "match=a&foo="+strings.Repeat("x", 64-len("match=a&foo=")))
	confStatus(t, "QUERY with a body at the cap", resp, body, http.StatusOK)
}

// docs/protocol.md#event-stream: updates go out as text/event-stream with
// every SSE field, for both generations.
func TestEventStreamCarriesEveryField(t *testing.T) {
	t.Parallel()
	for _, g := range confGens {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			th := newTestHub(t, nil)
			s := confOpen(t, th, http.MethodGet, g.query("t"), bearer(g.sub(t, th, "*")), "")
			if ct := s.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Errorf("Content-Type = %q, want text/event-stream without charset", ct)
			}
			th.mustPublish(t, g.pub(t, th, "*"), url.Values{"topic": {"t"}, "id": {"e1"}, "type": {"kind"}, "retry": {"42"}, "data": {"d"}})
			ev := s.events(t, 1)[0]
			if ev.ID != "e1" || ev.Type != "kind" || !ev.HasRetry || ev.Retry != 42 || ev.Data != "d" {
				t.Errorf("event = %+v", ev)
			}
		})
	}
}

// docs/protocol.md#event-stream: data is one `data:` line per input line,
// split on CR, LF and CRLF, blank lines and indentation kept; checked on the
// wire.
func TestDataSplitIntoLinesOnTheWire(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := th.accessToken(t, []string{"*"}, []string{"*"})
	s := confOpen(t, th, http.MethodGet, "match=t", bearer(tok), "")
	cases := []struct{ data, wire, parsed string }{
		{"line1\nline2\r\nline3\n\nline5",
			"data: line1\ndata: line2\ndata: line3\ndata: \ndata: line5\n",
			"line1\nline2\nline3\n\nline5"},
		{"{\n  \"a\": 1,\r\n\t\"b\": [\r\r    2\n  ]\n}",
			"data: {\ndata:   \"a\": 1,\ndata: \t\"b\": [\ndata: \ndata:     2\ndata:   ]\ndata: }\n",
			"{\n  \"a\": 1,\n\t\"b\": [\n\n    2\n  ]\n}"},
		{"trailing\n", "data: trailing\ndata: \n", "trailing\n"},
		{"\r\n", "data: \ndata: \n", "\n"},
		{" leading space", "data:  leading space\n", " leading space"},
		{"", "data: \n", ""},
		{"a\n\n\nb", "data: a\ndata: \ndata: \ndata: b\n", "a\n\n\nb"},
	}
	var want strings.Builder
	want.WriteString(":\n")
	for i, c := range cases {
		id := fmt.Sprint("d", i)
		th.mustPublish(t, tok, url.Values{"topic": {"t"}, "id": {id}, "data": {c.data}})
		want.WriteString("id: " + id + "\n" + c.wire + "\n")
	}
	wire := s.waitUntil(t, "every event", 5*time.Second, func(s string) bool { return len(s) >= want.Len() })
	if wire != want.String() {
		t.Errorf("wire:\n%q\nwant:\n%q", wire, want.String())
	}
	evs := confParse(t, wire)
	for i, c := range cases {
		if i < len(evs) && evs[i].Data != c.parsed {
			t.Errorf("case %d: receiver gets %q, want %q", i, evs[i].Data, c.parsed)
		}
	}
}

// docs/protocol.md#event-stream: every event carries an id, and the fields
// come in the order event, retry, id, data.
func TestFieldOrderOnTheWire(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := th.accessToken(t, []string{"*"}, []string{"*"})
	s := confOpen(t, th, http.MethodGet, "match=t", bearer(tok), "")
	th.mustPublish(t, tok, url.Values{"data": {"hello"}, "retry": {"2500"}, "id": {"o1"}, "type": {"greet"}, "topic": {"t"}})
	th.mustPublish(t, tok, url.Values{"topic": {"t"}, "id": {"o2"}})
	th.mustPublish(t, tok, url.Values{"topic": {"t"}, "retry": {"0"}, "id": {"o3"}, "data": {"x"}})
	gen := th.mustPublish(t, tok, url.Values{"topic": {"t"}, "type": {"only-type"}, "data": {"y"}})
	want := ":\n" +
		"event: greet\nretry: 2500\nid: o1\ndata: hello\n\n" +
		"id: o2\ndata: \n\n" +
		"retry: 0\nid: o3\ndata: x\n\n" +
		"event: only-type\nid: " + gen + "\ndata: y\n\n"
	if wire := s.waitFor(t, "data: y\n\n"); wire != want {
		t.Errorf("wire:\n%q\nwant:\n%q", wire, want)
	}
	if !regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(gen) {
		t.Errorf("generated id %q is not urn:uuid: + a UUIDv7", gen)
	}
}

// docs/protocol.md#heartbeats: ":\n" right after the headers. The timing of
// the comments that follow is checked on a fake clock in clock_test.go.
func TestHeartbeats(t *testing.T) {
	t.Parallel()
	t.Run("flush comment with the default heartbeat", func(t *testing.T) {
		t.Parallel()
		th := newTestHub(t, nil)
		for _, g := range confGens {
			s := confOpen(t, th, http.MethodGet, g.query("t"), bearer(g.sub(t, th, "*")), "")
			s.waitUntil(t, "the first comment", time.Second, func(s string) bool { return s != "" })
			wire := s.waitUntil(t, "the first comment", time.Second, func(s string) bool { return len(s) >= 2 })
			if wire != ":\n" {
				t.Errorf("%s: stream starts with %q, want %q", g.name, wire, ":\n")
			}
		}
	})
}

// docs/protocol.md#cors: CORS. Preflight 204 with the allowed methods and
// headers; "*" without credentials; named origins (and wildcards) echoed
// with credentials; other origins get no CORS headers.
func TestCORS(t *testing.T) {
	t.Parallel()
	preflight := func(t *testing.T, th *testHub, origin string) *http.Response {
		t.Helper()
		resp, _ := confDo(t, th, http.MethodOptions, "", http.Header{
			"Origin":                         {origin},
			"Access-Control-Request-Method":  {"GET"},
			"Access-Control-Request-Headers": {"authorization, last-event-id"},
		}, "")
		return resp
	}
	checkAllowed := func(t *testing.T, resp *http.Response) {
		t.Helper()
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("preflight status %d, want 204", resp.StatusCode)
		}
		methods := resp.Header.Get("Access-Control-Allow-Methods")
		for _, m := range []string{"GET", "HEAD", "POST", "QUERY"} {
			if !strings.Contains(methods, m) {
				t.Errorf("Access-Control-Allow-Methods = %q lacks %s", methods, m)
			}
		}
		headers := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
		for _, h := range []string{"authorization", "cache-control", "last-event-id"} {
			if !strings.Contains(headers, h) {
				t.Errorf("Access-Control-Allow-Headers = %q lacks %s", headers, h)
			}
		}
	}

	t.Run("star", func(t *testing.T) {
		t.Parallel()
		th := newTestHub(t, func(c *Config) { c.CORSOrigins = []string{"*"}; c.Anonymous = true })
		resp := preflight(t, th, "https://app.example")
		checkAllowed(t, resp)
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
		}
		if got := resp.Header.Values("Access-Control-Allow-Credentials"); got != nil {
			t.Errorf("credentials allowed with *: %q", got)
		}
		// A simple request: the subscription exposes the cursor headers.
		resp, _ = confDo(t, th, http.MethodGet, "match=t", http.Header{"Origin": {"https://app.example"}}, "")
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("GET: Access-Control-Allow-Origin = %q", got)
		}
		expose := resp.Header.Get("Access-Control-Expose-Headers")
		for _, h := range []string{"Link", "Last-Event-ID", "Mercure-Last-Event-ID"} {
			if !strings.Contains(expose, h) {
				t.Errorf("Access-Control-Expose-Headers = %q lacks %s", expose, h)
			}
		}
	})

	t.Run("named origins", func(t *testing.T) {
		t.Parallel()
		th := newTestHub(t, func(c *Config) {
			c.CORSOrigins = []string{"https://app.example", "https://*.example.org"}
			c.Anonymous = true
		})
		for _, origin := range []string{"https://app.example", "https://a.example.org"} {
			resp := preflight(t, th, origin)
			checkAllowed(t, resp)
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != origin {
				t.Errorf("%s: Access-Control-Allow-Origin = %q", origin, got)
			}
			if got := resp.Header.Get("Access-Control-Allow-Credentials"); got != "true" {
				t.Errorf("%s: Access-Control-Allow-Credentials = %q, want true", origin, got)
			}
			if !slices.Contains(resp.Header.Values("Vary"), "Origin") {
				t.Errorf("%s: Vary = %q lacks Origin", origin, resp.Header.Values("Vary"))
			}
		}
		for _, origin := range []string{"https://evil.example", "http://app.example", "https://example.org", "https://app.example.evil", "null"} {
			resp := preflight(t, th, origin)
			if got := resp.Header.Values("Access-Control-Allow-Origin"); got != nil {
				t.Errorf("%s: Access-Control-Allow-Origin = %q", origin, got)
			}
		}
		resp, _ := confDo(t, th, http.MethodGet, "match=t", nil, "")
		if got := resp.Header.Values("Access-Control-Allow-Origin"); got != nil {
			t.Errorf("no Origin: Access-Control-Allow-Origin = %q", got)
		}
	})

	// The answer depends on Origin whenever CORS is configured, so caches
	// (the metadata is cacheable) must key on it, also when the origin is
	// refused or absent: otherwise a cached reply without CORS headers
	// would be served to an allowed origin.
	t.Run("vary", func(t *testing.T) {
		t.Parallel()
		for _, origins := range [][]string{{"*"}, {"https://app.example"}} {
			th := newTestHub(t, func(c *Config) { c.CORSOrigins = origins })
			for _, origin := range []string{"", "https://evil.example", "https://app.example"} {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, confMetadataURL(th), nil)
				if err != nil {
					t.Fatal(err)
				}
				if origin != "" {
					req.Header.Set("Origin", origin)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
				if got := resp.Header.Values("Vary"); !slices.Contains(got, "Origin") {
					t.Errorf("CORS %q, Origin %q: Vary = %q, want Origin", origins, origin, got)
				}
			}
		}
	})

	// The development mode answers every origin as a named one: a
	// credentialed request (a cookie, EventSource withCredentials) from any
	// page gets its Origin back with credentials allowed, never "*", which
	// browsers refuse with credentials. An explicit list still decides.
	t.Run("any origin with credentials", func(t *testing.T) {
		t.Parallel()
		th := newTestHub(t, func(c *Config) { c.CORSAnyOriginWithCredentials = true; c.Anonymous = true })
		for _, origin := range []string{"http://localhost:8000", "https://app.example", "null"} {
			resp := preflight(t, th, origin)
			checkAllowed(t, resp)
			for name, want := range map[string]string{"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true"} {
				if got := resp.Header.Get(name); got != want {
					t.Errorf("preflight from %s: %s = %q, want %q", origin, name, got, want)
				}
			}
			resp, _ = confDo(t, th, http.MethodGet, "topic=t", http.Header{
				"Origin": {origin},
				"Cookie": {"mercureAuthorization=" + legacyToken(t, nil, []string{"t"})},
			}, "")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("credentialed GET from %s: %d", origin, resp.StatusCode)
			}
			for name, want := range map[string]string{"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true"} {
				if got := resp.Header.Get(name); got != want {
					t.Errorf("credentialed GET from %s: %s = %q, want %q", origin, name, got, want)
				}
			}
			if !slices.Contains(resp.Header.Values("Vary"), "Origin") {
				t.Errorf("%s: Vary = %q lacks Origin", origin, resp.Header.Values("Vary"))
			}
			if expose := resp.Header.Get("Access-Control-Expose-Headers"); !strings.Contains(expose, "Last-Event-ID") {
				t.Errorf("%s: Access-Control-Expose-Headers = %q", origin, expose)
			}
		}
		listed := newTestHub(t, func(c *Config) {
			c.CORSAnyOriginWithCredentials = true
			c.CORSOrigins = []string{"https://app.example"}
		})
		if got := preflight(t, listed, "https://evil.example").Header.Values("Access-Control-Allow-Origin"); got != nil {
			t.Errorf("with a list, an unlisted origin got Access-Control-Allow-Origin %q", got)
		}
		if got := preflight(t, listed, "https://app.example").Header.Get("Access-Control-Allow-Origin"); got != "https://app.example" {
			t.Errorf("with a list, a listed origin got Access-Control-Allow-Origin %q", got)
		}
	})

	t.Run("off", func(t *testing.T) {
		t.Parallel()
		th := newTestHub(t, nil)
		resp := preflight(t, th, "https://app.example")
		for _, h := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Credentials"} {
			if got := resp.Header.Values(h); got != nil {
				t.Errorf("CORS off: %s = %q", h, got)
			}
		}
	})
}

// confSecurityHeaders are sent on every response
// (docs/protocol.md#response-headers).
var confSecurityHeaders = map[string]string{
	"X-Frame-Options":         "DENY",
	"X-Content-Type-Options":  "nosniff",
	"X-Xss-Protection":        "1; mode=block",
	"Content-Security-Policy": "default-src 'self'",
}

// docs/protocol.md#response-headers: the headers of a subscription, and the
// security headers on every response.
func TestResponseHeaders(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := th.accessToken(t, []string{"*"}, []string{"*"})
	s := confOpen(t, th, http.MethodGet, "match=t", bearer(tok), "")
	want := map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "private, no-cache, no-store, must-revalidate, max-age=0",
		"Connection":        "keep-alive",
		"Pragma":            "no-cache",
		"Expire":            "0",
		"X-Accel-Buffering": "no",
	}
	if testParking.Load() {
		// A parked stream ends with its connection, so the client must
		// not pool it (docs/protocol.md#parked-streams). Go's client
		// consumes "Connection: close" into resp.Close.
		delete(want, "Connection")
		if !s.resp.Close {
			t.Error("a parked stream's response does not tell the client to close the connection")
		}
	}
	for k, v := range confSecurityHeaders {
		want[k] = v
	}
	for k, v := range want {
		if got := s.resp.Header.Values(k); !slices.Equal(got, []string{v}) {
			t.Errorf("subscription header %s = %q, want %q", k, got, v)
		}
	}

	checks := []struct {
		name                string
		method, query, body string
		hdr                 http.Header
	}{
		{"publish", http.MethodPost, "", "topic=t", bearer(tok)},
		{"publish error", http.MethodPost, "", "", bearer(tok)},
		{"subscribe error", http.MethodGet, "", "", nil},
		{"unauthorised", http.MethodGet, "match=t", "", nil},
		{"method", http.MethodPut, "", "", nil},
		{"metadata", http.MethodGet, "", "", nil},
	}
	for _, c := range checks {
		var resp *http.Response
		if c.name == "metadata" {
			r, err := http.Get(confMetadataURL(th))
			if err != nil {
				t.Fatal(err)
			}
			_ = r.Body.Close()
			resp = r
		} else {
			resp, _ = confDo(t, th, c.method, c.query, c.hdr, c.body)
		}
		for k, v := range confSecurityHeaders {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s (%d): %s = %q, want %q", c.name, resp.StatusCode, k, got, v)
			}
		}
	}
}

// docs/protocol.md#publish-fields: topic is repeatable (the first is
// canonical), the other fields are optional, and unknown fields are ignored.
func TestPublishFields(t *testing.T) {
	t.Parallel()
	for _, g := range confGens {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			th := newTestHub(t, nil)
			tok := g.pub(t, th, "*")
			id := th.mustPublish(t, tok, url.Values{"topic": {"https://example.com/a", "b", "c"}, "unknown": {"x"}, "Data": {"y"}, "TOPIC": {"z"}})
			// Only topic is required.
			resp, body := confPublishRaw(t, th, bearer(tok), "topic=solo")
			confStatus(t, "topic only", resp, body, http.StatusOK)
			ups := confStored(t, th)
			if len(ups) != 2 || ups[0].ID != id {
				t.Fatalf("stored %d updates", len(ups))
			}
			if !slices.Equal(ups[0].Topics, []string{"https://example.com/a", "b", "c"}) || ups[0].Data != "" {
				t.Errorf("stored %+v", ups[0])
			}
			if ups[1].Topics[0] != "solo" || ups[1].Private || ups[1].Type != "" || ups[1].HasRetry {
				t.Errorf("stored %+v", ups[1])
			}
		})
	}
}

// docs/protocol.md#publish-fields: a missing topic is 400, but authorization
// is checked first, so without a token the answer is 401.
func TestMissingTopicAfterAuthorization(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	resp, body := confPublishRaw(t, th, nil, "data=x")
	confStatus(t, "no token, no topic", resp, body, http.StatusUnauthorized)
	confChallenge(t, "no token, no topic", th, resp, "")
	resp, body = confPublishRaw(t, th, bearer("not-a-token-but-long-enough-to-pass-the-length-check"), "data=x")
	confStatus(t, "bad token, no topic", resp, body, http.StatusUnauthorized)
	for _, g := range confGens {
		resp, body := confPublishRaw(t, th, bearer(g.pub(t, th, "*")), "data=x&topics=a&Topic=b")
		confStatus(t, g.name, resp, body, http.StatusBadRequest)
		if strings.TrimSpace(body) != `Missing "topic" parameter` {
			t.Errorf("%s: body %q", g.name, body)
		}
		confChallenge(t, g.name+" missing topic", th, resp, "-")
	}
	if n := len(confStored(t, th)); n != 0 {
		t.Errorf("%d updates stored", n)
	}
}

// docs/protocol.md#alternate-topics: an update goes to subscribers of any of
// its topics, once, whichever topic matched.
func TestAlternateTopicsDeliverOnce(t *testing.T) {
	t.Parallel()
	for _, g := range confGens {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			th := newTestHub(t, nil)
			sub := bearer(g.sub(t, th, "*"))
			alt := confOpen(t, th, http.MethodGet, g.query("https://example.com/alt"), sub, "")
			both := confOpen(t, th, http.MethodGet, g.query("https://example.com/main")+"&"+g.query("https://example.com/alt"), sub, "")
			wild := confOpen(t, th, http.MethodGet, g.query("*"), sub, "")
			none := confOpen(t, th, http.MethodGet, g.query("https://example.com/other"), sub, "")
			tok := g.pub(t, th, "*")
			id := th.mustPublish(t, tok, url.Values{"topic": {"https://example.com/main", "https://example.com/alt"}})
			fence := th.mustPublish(t, tok, url.Values{"topic": {"https://example.com/main", "https://example.com/alt", "https://example.com/other"}})
			for name, s := range map[string]*confRaw{"alt": alt, "both": both, "wild": wild} {
				if got := confIDs(s.events(t, 2)); !slices.Equal(got, []string{id, fence}) {
					t.Errorf("%s got %q, want %q", name, got, []string{id, fence})
				}
			}
			if got := confIDs(none.events(t, 1)); !slices.Equal(got, []string{fence}) {
				t.Errorf("non-matching subscriber got %q", got)
			}
		})
	}
}

// docs/protocol.md#private-updates: the presence of `private`, whatever its
// value, makes an update private.
func TestPrivateByPresence(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Anonymous = true })
	tok := th.accessToken(t, []string{"*"}, []string{"*"})
	anon := confOpen(t, th, http.MethodGet, "match=t", nil, "")
	authed := confOpen(t, th, http.MethodGet, "match=t", bearer(tok), "")
	var private []string
	for _, body := range []string{"private", "private=", "private=on", "private=off", "private=false", "private=0"} {
		resp, id := confPublishRaw(t, th, bearer(tok), "topic=t&"+body)
		confStatus(t, body, resp, id, http.StatusOK)
		private = append(private, id)
	}
	fence := th.mustPublish(t, tok, url.Values{"topic": {"t"}, "Private": {"on"}, "privat": {"on"}})
	if got := confIDs(anon.events(t, 1)); !slices.Equal(got, []string{fence}) {
		t.Errorf("anonymous subscriber got %q, want only the public %q", got, fence)
	}
	if got := confIDs(authed.events(t, 7)); !slices.Equal(got, append(private, fence)) {
		t.Errorf("authorised subscriber got %q", got)
	}
	for _, u := range confStored(t, th) {
		if u.Private != (u.ID != fence) {
			t.Errorf("update %s: Private = %v", u.ID, u.Private)
		}
	}
}

// docs/protocol.md#publish-id, both generations: an id starting with "#" is
// refused; without an id the hub generates urn:uuid: + a UUIDv7; client ids
// are honoured.
func TestGeneratedAndClientIDs(t *testing.T) {
	t.Parallel()
	uuid7 := regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for _, g := range confGens {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			th := newTestHub(t, nil)
			tok := g.pub(t, th, "*")
			for _, id := range []string{"#frag", "#", "earliest"} {
				resp, body := th.publish(t, tok, url.Values{"topic": {"t"}, "id": {id}})
				confStatus(t, "id "+id, resp, body, http.StatusBadRequest)
			}
			var prev string
			for range 3 {
				id := th.mustPublish(t, tok, url.Values{"topic": {"t"}})
				if !uuid7.MatchString(id) {
					t.Errorf("generated id %q", id)
				}
				if id <= prev {
					t.Errorf("generated ids not time-ordered: %q then %q", prev, id)
				}
				prev = id
			}
			// An empty id counts as none (the hub's choice).
			if id := th.mustPublish(t, tok, url.Values{"topic": {"t"}, "id": {""}}); !uuid7.MatchString(id) {
				t.Errorf("empty id gave %q", id)
			}
			for _, id := range []string{"https://example.com/updates/1", "a#b", "urn:uuid:not-checked", "ÿ-ünïcödé"} {
				if got := th.mustPublish(t, tok, url.Values{"topic": {"t"}, "id": {id}}); got != id {
					t.Errorf("client id %q answered as %q", id, got)
				}
			}
			if n := len(confStored(t, th)); n != 8 {
				t.Errorf("%d updates stored, want 8", n)
			}
		})
	}
}

// docs/protocol.md#publish-retry: retry is ASCII digits only.
func TestRetryDigitsOnly(t *testing.T) {
	t.Parallel()
	for _, g := range confGens {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			th := newTestHub(t, nil)
			tok := g.pub(t, th, "*")
			for _, r := range []string{"-5", "+5", " 5", "5 ", "1.5", "1e3", "0x10", "5a", "\u0663", "18446744073709551616", "1_000"} {
				resp, body := th.publish(t, tok, url.Values{"topic": {"t"}, "retry": {r}})
				confStatus(t, fmt.Sprintf("retry %q", r), resp, body, http.StatusBadRequest)
				if strings.TrimSpace(body) != `Invalid "retry" parameter` {
					t.Errorf("retry %q: body %q", r, body)
				}
			}
			s := confOpen(t, th, http.MethodGet, g.query("t"), bearer(g.sub(t, th, "*")), "")
			for _, r := range []string{"0", "007", "18446744073709551615", ""} {
				th.mustPublish(t, tok, url.Values{"topic": {"t"}, "retry": {r}, "id": {"r" + r}})
			}
			wire := s.waitFor(t, "id: r\n")
			for _, w := range []string{"retry: 0\nid: r0\n", "retry: 7\nid: r007\n", "retry: 18446744073709551615\nid: r18446744073709551615\n", "\n\nid: r\n"} {
				if !strings.Contains(wire, w) {
					t.Errorf("wire %q lacks %q", wire, w)
				}
			}
		})
	}
}

// docs/protocol.md#publish-reply: success is 200 text/plain; charset=utf-8
// with the id as the whole body.
func TestPublishReplyIsTheID(t *testing.T) {
	t.Parallel()
	for _, g := range confGens {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			th := newTestHub(t, nil)
			tok := g.pub(t, th, "*")
			for _, id := range []string{"client-id", ""} {
				resp, body := th.publish(t, tok, url.Values{"topic": {"t"}, "id": {id}})
				confStatus(t, "publish", resp, body, http.StatusOK)
				if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
					t.Errorf("Content-Type = %q", ct)
				}
				if id != "" && body != id {
					t.Errorf("body %q, want exactly %q", body, id)
				}
				if ups := confStored(t, th); body != ups[len(ups)-1].ID {
					t.Errorf("body %q, stored id %q", body, ups[len(ups)-1].ID)
				}
			}
		})
	}
}

// docs/protocol.md#publish-limits: a body above the cap gets 413 (1 MiB by
// default); more than 1000 topics gets 400.
func TestPublishSizeLimits(t *testing.T) {
	t.Parallel()
	t.Run("configured cap", func(t *testing.T) {
		t.Parallel()
		th := newTestHub(t, func(c *Config) { c.MaxBodySize = 1024 })
		tok := legacyToken(t, []string{"*"}, nil)
		at := "topic=t&data=" + strings.Repeat("x", 1024-len("topic=t&data="))
		resp, body := confPublishRaw(t, th, bearer(tok), at)
		confStatus(t, "body at the cap", resp, body, http.StatusOK)
		resp, body = confPublishRaw(t, th, bearer(tok), at+"x")
		confStatus(t, "body one byte above the cap", resp, body, http.StatusRequestEntityTooLarge)
		if n := len(confStored(t, th)); n != 1 {
			t.Errorf("%d updates stored, want 1", n)
		}
	})
	t.Run("default cap", func(t *testing.T) {
		t.Parallel()
		th := newTestHub(t, nil)
		tok := th.accessToken(t, []string{"*"}, nil)
		resp, body := confPublishRaw(t, th, bearer(tok), "topic=t&data="+strings.Repeat("x", 1_100_000))
		confStatus(t, "1.1 MB body", resp, body, http.StatusRequestEntityTooLarge)
		resp, body = confPublishRaw(t, th, bearer(tok), "topic=t&data="+strings.Repeat("x", 1_000_000))
		confStatus(t, "1.0 MB body", resp, body, http.StatusOK)
	})
	t.Run("topics", func(t *testing.T) {
		t.Parallel()
		th := newTestHub(t, nil)
		for _, g := range confGens {
			tok := g.pub(t, th, "*")
			topics := make([]string, 1001)
			for i := range topics {
				topics[i] = fmt.Sprint("https://example.com/", i)
			}
			resp, body := th.publish(t, tok, url.Values{"topic": topics})
			confStatus(t, g.name+" 1001 topics", resp, body, http.StatusBadRequest)
			resp, body = th.publish(t, tok, url.Values{"topic": topics[:1000]})
			confStatus(t, g.name+" 1000 topics", resp, body, http.StatusOK)
		}
	})
}

// docs/protocol.md#publish-authorization: every topic must be granted;
// otherwise 403 (with insufficient_scope for draft-08), no dispatch and
// nothing in history. Draft-07: the hub answers 403 as the spec says (the reference 0.x hub
// sends 401), and has no "compat mode" letting public updates through to
// ungranted topics.
func TestUngrantedTopicIs403AndNotDispatched(t *testing.T) {
	t.Parallel()
	for _, g := range confGens {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			th := newTestHub(t, nil)
			s := confOpen(t, th, http.MethodGet, g.query("*"), bearer(g.sub(t, th, "*")), "")
			// The template grants books in draft-07; draft-08 has no
			// templates, so there it is an exact grant of that string.
			tok := g.pub(t, th, "foo", "https://example.com/books/{id}")
			code := "-"
			if g.gen == gen08 {
				code = "insufficient_scope"
			}
			for _, topics := range [][]string{{"foo", "bar"}, {"bar", "foo"}, {"bar"}, {"foo", "https://example.com/books/1/x"}} {
				resp, body := th.publish(t, tok, url.Values{"topic": topics, "data": {"leak"}, "private": {"on"}})
				confStatus(t, fmt.Sprint(topics), resp, body, http.StatusForbidden)
				confChallenge(t, fmt.Sprint(topics), th, resp, code)
			}
			var want []string
			resp, body := th.publish(t, tok, url.Values{"topic": {"foo", "https://example.com/books/1"}, "data": {"template"}})
			if g.gen == gen07 {
				confStatus(t, "template grant", resp, body, http.StatusOK)
				want = append(want, body)
			} else {
				confStatus(t, "template grant", resp, body, http.StatusForbidden)
			}
			// A token that grants nothing to publish.
			resp, body = th.publish(t, g.sub(t, th, "*"), url.Values{"topic": {"foo"}, "data": {"leak"}})
			confStatus(t, "subscribe-only token", resp, body, http.StatusForbidden)

			fence := th.mustPublish(t, tok, url.Values{"topic": {"foo"}, "data": {"fence"}})
			want = append(want, fence)
			if got := confIDs(s.events(t, len(want))); !slices.Equal(got, want) {
				t.Errorf("subscriber got %q, want %q", got, want)
			}
			var stored []string
			for _, u := range confStored(t, th) {
				stored = append(stored, u.ID)
			}
			if !slices.Equal(stored, want) {
				t.Errorf("history holds %q, want %q", stored, want)
			}
		})
	}
}

// docs/protocol.md#csrf: a publish authorised by the cookie needs an allowed
// Origin, else an allowed Referer; neither → [08] 400 invalid_request,
// [07] 401. Allowed origins accept "*" and "*" wildcards. A token from the
// header is not subject to the check, and a subscription (a safe method)
// never is.
func TestCookiePublishCSRF(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) {
		c.PublishOrigins = []string{"https://app.example", "https://*.example.org"}
	})
	accepted := 0
	for _, g := range confGens {
		cookie, refused, code := cookie08, http.StatusBadRequest, "invalid_request"
		if g.gen == gen07 {
			cookie, refused, code = cookie07, http.StatusUnauthorized, "-"
		}
		tok := g.pub(t, th, "*")
		cases := []struct {
			origin, referer string
			ok              bool
		}{
			{"", "", false},
			{"https://app.example", "", true},
			{"https://a.example.org", "", true},
			{"https://a.b.example.org", "", true}, // the hub's choice: "*" spans dots
			{"https://example.org", "", false},
			{"https://evil.example", "", false},
			{"http://app.example", "", false},
			{"https://app.example.evil", "", false},
			{"https://evil.example/.example.org", "", false},
			{"null", "", false},
			{"", "https://app.example/page?x=1", true},
			{"", "https://x.example.org/", true},
			{"", "https://evil.example/https://app.example", false},
			{"", "not a url", false},
			{"https://evil.example", "https://app.example/", false}, // Origin is checked first
			{"https://app.example", "https://evil.example/", true},
		}
		for _, c := range cases {
			hdr := http.Header{"Cookie": {cookie + "=" + tok}}
			if c.origin != "" {
				hdr.Set("Origin", c.origin)
			}
			if c.referer != "" {
				hdr.Set("Referer", c.referer)
			}
			resp, body := confPublishRaw(t, th, hdr, "topic=t&data="+url.QueryEscape(c.origin+" "+c.referer))
			what := fmt.Sprintf("%s cookie, Origin %q, Referer %q", g.name, c.origin, c.referer)
			if c.ok {
				accepted++
				confStatus(t, what, resp, body, http.StatusOK)
			} else {
				confStatus(t, what, resp, body, refused)
				confChallenge(t, what, th, resp, code)
			}
		}
		// The header wins: no CSRF check, even with a cookie and a foreign origin.
		hdr := bearer(tok)
		hdr.Set("Cookie", cookie+"="+tok)
		hdr.Set("Origin", "https://evil.example")
		resp, body := confPublishRaw(t, th, hdr, "topic=t")
		confStatus(t, g.name+" header token with a foreign origin", resp, body, http.StatusOK)
		accepted++
		// Subscriptions are not checked.
		resp, body = confDo(t, th, http.MethodGet, g.query("t"), http.Header{"Cookie": {cookie + "=" + g.sub(t, th, "*")}}, "")
		confStatus(t, g.name+" cookie subscription without Origin", resp, body, http.StatusOK)
	}
	if got := len(confStored(t, th)); got != accepted {
		t.Errorf("%d updates stored, want the %d accepted", got, accepted)
	}

	star := newTestHub(t, func(c *Config) { c.PublishOrigins = []string{"*"} })
	none := newTestHub(t, nil)
	tok := legacyToken(t, []string{"*"}, nil)
	ck := func(origin string) http.Header {
		h := http.Header{"Cookie": {cookie07 + "=" + tok}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		return h
	}
	resp, body := confPublishRaw(t, star, ck("https://anything.example"), "topic=t")
	confStatus(t, `"*": any origin`, resp, body, http.StatusOK)
	resp, body = confPublishRaw(t, star, ck(""), "topic=t")
	confStatus(t, `"*": no Origin nor Referer`, resp, body, http.StatusUnauthorized)
	resp, body = confPublishRaw(t, none, ck("https://app.example"), "topic=t")
	confStatus(t, "no publish origins", resp, body, http.StatusUnauthorized)
}

// docs/protocol.md#token-presentation: the Authorization header wins and the
// rest is then ignored; two headers, a header too short to hold a JWS or
// another scheme are malformed: 400 invalid_request ([07] subscriptions: a
// plain 401, the hub's choice, as errors there never carry a challenge).
func TestHeaderPrecedenceAndMalformedHeaders(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	for _, g := range confGens {
		cookie := cookie08
		if g.gen == gen07 {
			cookie = cookie07
		}
		good, bad := g.sub(t, th, "*"), g.sub(t, th, "*")+"x"
		hdr := bearer(good)
		hdr.Set("Cookie", cookie+"="+bad)
		resp, body := confDo(t, th, http.MethodGet, g.query("t"), hdr, "")
		confStatus(t, g.name+" good header, bad cookie", resp, body, http.StatusOK)
		hdr = bearer(bad)
		hdr.Set("Cookie", cookie+"="+good)
		resp, body = confDo(t, th, http.MethodGet, g.query("t"), hdr, "")
		confStatus(t, g.name+" bad header, good cookie", resp, body, http.StatusUnauthorized)

		for _, scheme := range []string{"Bearer ", "bearer ", "BEARER ", "Bearer  "} {
			resp, body := confDo(t, th, http.MethodGet, g.query("t"), http.Header{"Authorization": {scheme + good}}, "")
			confStatus(t, fmt.Sprintf("%s scheme %q", g.name, scheme), resp, body, http.StatusOK)
		}

		malformed := map[string][]string{
			"two headers":        {"Bearer " + good, "Bearer " + good},
			"short header":       {"Bearer abc.def.ghi"},
			"other scheme":       {"Basic " + good},
			"no scheme":          {good},
			"bearer without jws": {"Bearer " + strings.Repeat(" ", 60)},
		}
		for name, vals := range malformed {
			what := g.name + " subscribe, " + name
			resp, body := confDo(t, th, http.MethodGet, g.query("t"), http.Header{"Authorization": vals}, "")
			if g.gen == gen07 {
				confStatus(t, what, resp, body, http.StatusUnauthorized)
				confChallenge(t, what, th, resp, "-")
			} else {
				confStatus(t, what, resp, body, http.StatusBadRequest)
				confChallenge(t, what, th, resp, "invalid_request")
			}
			// Publish: the generation is unknown before a token is read,
			// so the reply takes the draft-08 form.
			what = g.name + " publish, " + name
			resp, body = confPublishRaw(t, th, http.Header{"Authorization": vals}, "topic=t")
			confStatus(t, what, resp, body, http.StatusBadRequest)
			confChallenge(t, what, th, resp, "invalid_request")
		}
	}
	if n := len(confStored(t, th)); n != 0 {
		t.Errorf("%d updates stored", n)
	}
}

// docs/protocol.md#private-delivery and #privacy: a private update reaches a
// subscriber only when a subscribe grant matches one of its topics, canonical
// or alternate (the audience is the union over all topics); the
// subscription's own matchers never widen access; public updates ignore the
// token; anonymous subscribers get public updates only.
// docs/protocol.md#private-delivery: a replay applies the same checks to the
// current token.
func TestPrivateDelivery(t *testing.T) {
	t.Parallel()
	for _, g := range confGens {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			th := newTestHub(t, func(c *Config) { c.Anonymous = true })
			pub := g.pub(t, th, "*")
			subs := map[string]*confRaw{
				"grant a":   confOpen(t, th, http.MethodGet, g.query("*"), bearer(g.sub(t, th, "https://example.com/a")), ""),
				"grant alt": confOpen(t, th, http.MethodGet, g.query("https://example.com/b"), bearer(g.sub(t, th, "https://example.com/alt")), ""),
				"grant c":   confOpen(t, th, http.MethodGet, g.query("*"), bearer(g.sub(t, th, "https://example.com/c")), ""),
				"anonymous": confOpen(t, th, http.MethodGet, g.query("*"), nil, ""),
			}
			pa := th.mustPublish(t, pub, url.Values{"topic": {"https://example.com/a"}, "private": {"on"}})
			pb := th.mustPublish(t, pub, url.Values{"topic": {"https://example.com/b"}, "private": {"on"}})
			pbAlt := th.mustPublish(t, pub, url.Values{"topic": {"https://example.com/b", "https://example.com/alt"}, "private": {"on"}})
			public := th.mustPublish(t, pub, url.Values{"topic": {"https://example.com/b"}})
			want := map[string][]string{
				"grant a":   {pa, public},
				"grant alt": {pbAlt, public},
				"grant c":   {public},
				"anonymous": {public},
			}
			for name, s := range subs {
				if got := confIDs(s.events(t, len(want[name]))); !slices.Equal(got, want[name]) {
					t.Errorf("%s: got %q, want %q", name, got, want[name])
				}
			}
			// Replay re-checks the token that connects now.
			for name, tok := range map[string]string{"grant a": g.sub(t, th, "https://example.com/a"), "grant b": g.sub(t, th, "https://example.com/b"), "anonymous": ""} {
				var hdr http.Header
				if tok != "" {
					hdr = bearer(tok)
				}
				s := confOpen(t, th, http.MethodGet, g.query("*")+"&"+g.cursor+"=earliest", hdr, "")
				s.waitFor(t, ":"+sse.ReplayDoneComment+"\n")
				got := confIDs(s.events(t, 0))
				wantReplay := map[string][]string{"grant a": {pa, public}, "grant b": {pb, pbAlt, public}, "anonymous": {public}}[name]
				if !slices.Equal(got, wantReplay) {
					t.Errorf("replay for %s: got %q, want %q", name, got, wantReplay)
				}
			}
		})
	}
}

// confExpiry reads the exp of a token.
func confExpiry(tb testing.TB, raw string) time.Time {
	tb.Helper()
	_, claims, err := token.Inspect(raw)
	if err != nil {
		tb.Fatal(err)
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(claims, &c); err != nil || c.Exp == 0 {
		tb.Fatalf("token has no exp: %s", claims)
	}
	return time.Unix(c.Exp, 0)
}

// docs/protocol.md#subscribe-cursors: the query cursor, the Last-Event-ID
// header winning over it, "earliest", unknown and evicted ids, the empty
// cursor, and the response cursor header of each generation.
func TestCursors(t *testing.T) {
	t.Parallel()
	for _, g := range confGens {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			th := newTestHub(t, nil)
			sub := g.sub(t, th, "*")
			other := "Mercure-Last-Event-ID"
			if g.gen == gen08 {
				other = "Last-Event-ID"
			}
			open := func(query, header string) *confRaw {
				t.Helper()
				hdr := bearer(sub)
				if header != "-" {
					hdr.Set("Last-Event-ID", header)
				}
				s := confOpen(t, th, http.MethodGet, query, hdr, "")
				if got := s.resp.Header.Values(other); got != nil {
					t.Errorf("%s: the other generation's header %s = %q", query, other, got)
				}
				return s
			}
			check := func(name string, s *confRaw, cursor string, replay []string) {
				t.Helper()
				got := s.resp.Header.Values(g.header)
				if cursor == "-" && got != nil || cursor != "-" && !slices.Equal(got, []string{cursor}) {
					t.Errorf("%s: %s = %q, want %q", name, g.header, got, cursor)
				}
				// A replay (a non-empty cursor) is announced by a header and
				// marked by a comment at its end.
				if marked := s.resp.Header.Get(sse.ReplayMarkerHeader) != ""; marked {
					s.waitFor(t, ":"+sse.ReplayDoneComment+"\n")
				} else if len(replay) > 0 {
					t.Errorf("%s: a replay without %s", name, sse.ReplayMarkerHeader)
				}
				if ids := confIDs(s.events(t, len(replay))); !slices.Equal(ids, replay) && (len(ids) != 0 || len(replay) != 0) {
					t.Errorf("%s: replayed %q, want %q", name, ids, replay)
				}
			}

			// An empty history: the empty cursor answers "earliest".
			check("empty history, empty cursor", open(g.query("t")+"&"+g.cursor+"=", "-"), "earliest", nil)
			check("empty history, earliest", open(g.query("t")+"&"+g.cursor+"=earliest", "-"), "earliest", nil)

			pub := g.pub(t, th, "*")
			var ids []string
			for i := range 3 {
				ids = append(ids, th.mustPublish(t, pub, url.Values{"topic": {"t"}, "id": {fmt.Sprint("c", i)}}))
			}
			th.mustPublish(t, pub, url.Values{"topic": {"elsewhere"}, "id": {"c-other"}})

			check("query cursor", open(g.query("t")+"&"+g.cursor+"=c0", "-"), "c0", ids[1:])
			check("header beats query", open(g.query("t")+"&"+g.cursor+"=c0", "c1"), "c1", ids[2:])
			check("header alone", open(g.query("t"), "c0"), "c0", ids[1:])
			check("newest id", open(g.query("t")+"&"+g.cursor+"=c2", "-"), "c2", nil)
			check("earliest", open(g.query("t")+"&"+g.cursor+"=earliest", "-"), "earliest", ids)
			// An unknown id: "earliest", and (the hub's choice, where the reference 1.0 hub
			// replays nothing) everything retained is replayed, so that a
			// client whose cursor was lost misses nothing.
			check("unknown", open(g.query("t")+"&"+g.cursor+"=nope", "-"), "earliest", ids)
			// The empty cursor: the newest dispatched id, nothing replayed.
			s := open(g.query("t")+"&"+g.cursor+"=", "-")
			check("empty cursor", s, "c-other", nil)
			live := th.mustPublish(t, pub, url.Values{"topic": {"t"}})
			if got := confIDs(s.events(t, 1)); !slices.Equal(got, []string{live}) {
				t.Errorf("empty cursor then live: %q", got)
			}
			check("empty header", open(g.query("t"), ""), live, nil)
			check("no cursor", open(g.query("t"), "-"), "-", nil)
			// The other generation's query cursor is not a cursor.
			wrong := "last_event_id"
			if g.gen == gen08 {
				wrong = "lastEventID"
			}
			check("other generation's parameter", open(g.query("t")+"&"+wrong+"=c0", "-"), "-", nil)
		})
	}
}

// docs/protocol.md#subscribe-cursors: an id evicted from history is unknown.
func TestEvictedCursorAnswersEarliest(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Store = history.NewMemory(history.Retention{MaxUpdates: 2}, nil) })
	tok := th.accessToken(t, []string{"*"}, []string{"*"})
	for _, id := range []string{"e1", "e2", "e3", "e4"} {
		th.mustPublish(t, tok, url.Values{"topic": {"t"}, "id": {id}})
	}
	s := confOpen(t, th, http.MethodGet, "match=t&last_event_id=e1", bearer(tok), "")
	if got := s.resp.Header.Get("Mercure-Last-Event-ID"); got != "earliest" {
		t.Errorf("evicted cursor: Mercure-Last-Event-ID = %q, want earliest", got)
	}
	if got := confIDs(s.events(t, 2)); !slices.Equal(got, []string{"e3", "e4"}) {
		t.Errorf("replayed %q", got)
	}
}

// docs/protocol.md#duplicate-ids: a duplicated id resolves to its earliest
// entry, and everything after it is replayed.
func TestDuplicateIDResolvesToEarliest(t *testing.T) {
	t.Parallel()
	for _, g := range confGens {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			th := newTestHub(t, nil)
			pub := g.pub(t, th, "*")
			for _, p := range [][2]string{{"dup", "1"}, {"x", "2"}, {"dup", "3"}, {"y", "4"}} {
				th.mustPublish(t, pub, url.Values{"topic": {"t"}, "id": {p[0]}, "data": {p[1]}})
			}
			s := confOpen(t, th, http.MethodGet, g.query("t")+"&"+g.cursor+"=dup", bearer(g.sub(t, th, "*")), "")
			if got := s.resp.Header.Get(g.header); got != "dup" {
				t.Errorf("%s = %q, want dup", g.header, got)
			}
			s.waitFor(t, ":"+sse.ReplayDoneComment+"\n")
			var data []string
			for _, ev := range s.events(t, 3) {
				data = append(data, ev.Data)
			}
			if !slices.Equal(data, []string{"2", "3", "4"}) {
				t.Errorf("replayed data %q, want 2, 3, 4", data)
			}
		})
	}
}

// confBlockingStore holds Append until released, to catch a publish in flight.
type confBlockingStore struct {
	history.Store
	entered chan struct{}
	release chan struct{}
}

func (s *confBlockingStore) Append(ctx context.Context, u *history.Update) error {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.release
	return s.Store.Append(ctx, u)
}

// Shutdown (SIGTERM in `serve`) ends open streams promptly and refuses new
// subscriptions and publishes with 503, while a publish already in flight
// finishes and is delivered to history.
func TestShutdownEndsStreamsAndLetsPublishesFinish(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var bs *confBlockingStore
		th := newBubbleHub(t, func(c *Config) {
			bs = &confBlockingStore{Store: c.Store, entered: make(chan struct{}, 1), release: make(chan struct{})}
			c.Store = bs
			c.Anonymous = true
		})
		tok := th.accessToken(t, []string{"*"}, []string{"*"})
		streams := []*confRaw{
			confOpen(t, th, http.MethodGet, "match=t", bearer(tok), ""),
			confOpen(t, th, http.MethodGet, "topic=t", bearer(legacyToken(t, nil, []string{"*"})), ""),
			confOpen(t, th, http.MethodGet, "match=t&last_event_id=earliest", nil, ""),
		}
		for _, s := range streams {
			s.waitFor(t, ":\n")
		}

		type result struct {
			status int
			body   string
			err    error
		}
		inflight := make(chan result, 1)
		go func() {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, th.url, strings.NewReader("topic=t&id=inflight"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := th.httpClient().Do(req)
			if err != nil {
				inflight <- result{err: err}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			inflight <- result{status: resp.StatusCode, body: string(b)}
		}()
		<-bs.entered

		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		start := time.Now()
		if err := th.h.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Shutdown took %v on the bubble's clock, want no time at all", d)
		}
		for _, s := range streams {
			s.closedWithin(t, time.Second)
		}

		close(bs.release)
		if r := <-inflight; r.err != nil || r.status != http.StatusOK || r.body != "inflight" {
			t.Errorf("in-flight publish: %d %q %v", r.status, r.body, r.err)
		}
		if ups := confStored(t, th); len(ups) != 1 || ups[0].ID != "inflight" {
			t.Errorf("history after shutdown: %d updates", len(ups))
		}

		resp, body := th.publish(t, tok, url.Values{"topic": {"t"}})
		confStatus(t, "publish after Shutdown", resp, body, http.StatusServiceUnavailable)
		for _, m := range []string{http.MethodGet, http.MethodHead, methodQuery} {
			resp, body = confDo(t, th, m, "match=t", bearer(tok), "")
			confStatus(t, m+" subscribe after Shutdown", resp, body, http.StatusServiceUnavailable)
		}
	})
}

// The ordering guarantee (docs/protocol.md#ordering): once a publish got its
// 200, every connected matching subscriber already has the update, so an
// update acknowledged before another publish starts is received first, by
// every subscriber, whatever the topics and publishers involved.
func TestOrderingFollowsAcknowledgements(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := th.accessToken(t, []string{"*"}, []string{"*"})
	const publishers, each = 4, 40
	var query []string
	for p := range publishers {
		query = append(query, "match="+url.QueryEscape(fmt.Sprint("https://example.com/t", p)))
	}
	subs := []*confRaw{
		confOpen(t, th, http.MethodGet, strings.Join(query, "&"), bearer(tok), ""),                                      // exact index
		confOpen(t, th, http.MethodGet, "match_urlpattern="+url.QueryEscape("https://example.com/:n"), bearer(tok), ""), // wildcard path
		confOpen(t, th, http.MethodGet, "topic=*", bearer(legacyToken(t, nil, []string{"*"})), ""),
	}

	// seen[id] is how many publishes were acknowledged before this one began;
	// acked[k] is the id of the k-th acknowledgement.
	var (
		mu    sync.Mutex
		seen  = map[string]int64{}
		acked []string
		count atomic.Int64
		wg    sync.WaitGroup
	)
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				before := count.Load()
				id := fmt.Sprintf("p%d-%d", p, i)
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, th.url,
					strings.NewReader(url.Values{"topic": {fmt.Sprint("https://example.com/t", p)}, "id": {id}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("publish %s: %d", id, resp.StatusCode)
					return
				}
				mu.Lock()
				seen[id] = before
				acked = append(acked, id)
				count.Add(1)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for n, s := range subs {
		evs := s.events(t, publishers*each)
		pos := map[string]int{}
		for i, ev := range evs {
			pos[ev.ID] = i
		}
		for id, before := range seen {
			for _, earlier := range acked[:before] {
				if pos[earlier] > pos[id] {
					t.Errorf("subscriber %d: %s was acknowledged before %s was published, but came after it", n, earlier, id)
				}
			}
		}
	}
}

// docs/protocol.md#encryption: the hub is not involved in encryption: a JWE in
// `data` passes through byte for byte.
func TestEncryptedDataPassesThrough(t *testing.T) {
	t.Parallel()
	const jwe = "eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIn0." +
		"OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGe." +
		"48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6ji." +
		"XFBoMYUZodetZdvTiFvSkQ"
	for _, g := range confGens {
		th := newTestHub(t, nil)
		s := confOpen(t, th, http.MethodGet, g.query("t"), bearer(g.sub(t, th, "*")), "")
		th.mustPublish(t, g.pub(t, th, "*"), url.Values{"topic": {"t"}, "data": {jwe}})
		if ev := s.events(t, 1)[0]; ev.Data != jwe {
			t.Errorf("%s: data %q", g.name, ev.Data)
		}
	}
}

// docs/protocol.md#tls-and-cookies: like the reference hub, the hub accepts
// tokens over plain HTTP (every test here does), and it never sets a cookie
// itself: cookies are the application's to issue.
func TestHubSetsNoCookies(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := th.accessToken(t, []string{"*"}, []string{"*"})
	s := confOpen(t, th, http.MethodGet, "match=t", bearer(tok), "")
	resp, _ := th.publish(t, tok, url.Values{"topic": {"t"}})
	for name, h := range map[string]http.Header{"subscribe": s.resp.Header, "publish": resp.Header} {
		if got := h.Values("Set-Cookie"); got != nil {
			t.Errorf("%s sets cookies: %q", name, got)
		}
	}
}
