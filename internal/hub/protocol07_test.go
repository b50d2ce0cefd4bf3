package hub

// Protocol conformance tests for draft-07 (legacy `mercure`-claim tokens,
// `topic=` selectors), over real HTTP. Helpers are in protocol_common_test.go.

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// confLegacy signs a draft-07 token with the given `mercure` claim (nil: no
// claim) and extra claims.
func confLegacy(tb testing.TB, mercure any, extra map[string]any) string {
	tb.Helper()
	claims := map[string]any{"iat": time.Now().Unix()}
	if mercure != nil {
		claims["mercure"] = mercure
	}
	for k, v := range extra {
		claims[k] = v
	}
	return confSign(tb, "HS256", map[string]any{"typ": "JWT"}, claims, testKey)
}

// docs/protocol.md#hub-path: the hub is served at /.well-known/mercure only.
func TestHubServedOnlyAtWellKnownPath(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := legacyToken(t, []string{"*"}, []string{"*"})
	for _, p := range []string{"/", "/.well-known/mercure/", "/.well-known/mercurex", "/.well-known/Mercure", "/mercure", "/.well-known/mercure/x"} {
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			req, err := http.NewRequestWithContext(t.Context(), m, th.srv.URL+p+"?topic=t", strings.NewReader("topic=t"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s: %d, want 404", m, p, resp.StatusCode)
			}
		}
	}
	if n := len(confStored(t, th)); n != 0 {
		t.Errorf("%d updates stored", n)
	}
}

// docs/protocol.md#subscribe-topic: draft-07 selectors are repeated `topic=`
// parameters; none → 400; at most 1000.
func TestTopicParametersSelectDraft07(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	hdr := bearer(legacyToken(t, []string{"*"}, []string{"*"}))
	for _, q := range []string{"", "Topic=a", "topics=a", "lastEventID=x", "foo=1"} {
		resp, body := confDo(t, th, http.MethodGet, q, hdr, "")
		confStatus(t, "query "+q, resp, body, http.StatusBadRequest)
		if !strings.Contains(body, `"topic"`) {
			t.Errorf("query %q: body %q does not mention topic", q, body)
		}
		confChallenge(t, "query "+q, th, resp, "-")
	}
	var q []string
	for i := range 1001 {
		q = append(q, fmt.Sprint("topic=https%3A%2F%2Fexample.com%2F", i))
	}
	resp, body := confDo(t, th, http.MethodGet, strings.Join(q[:1000], "&"), hdr, "")
	confStatus(t, "1000 topics", resp, body, http.StatusOK)
	resp, body = confDo(t, th, http.MethodGet, strings.Join(q, "&"), hdr, "")
	confStatus(t, "1001 topics", resp, body, http.StatusBadRequest)

	// Unrelated parameters are ignored; repeated topics all count.
	s := confOpen(t, th, http.MethodGet, "foo=1&topic=a&Topic=b&topic=c", hdr, "")
	pub := legacyToken(t, []string{"*"}, nil)
	a := th.mustPublish(t, pub, url.Values{"topic": {"a"}})
	th.mustPublish(t, pub, url.Values{"topic": {"b"}})
	c := th.mustPublish(t, pub, url.Values{"topic": {"c"}})
	if got := confIDs(s.events(t, 2)); !slices.Equal(got, []string{a, c}) {
		t.Errorf("got %q, want %q", got, []string{a, c})
	}
}

// docs/protocol.md#matching-07: "*" matches every topic, a string matches
// itself (so a URI template matches its own text), a template matches what it
// expands to, and nothing else matches.
func TestDraft07SelectorMatching(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	hdr := bearer(legacyToken(t, nil, []string{"*"}))
	const tmpl = "https://example.com/books/{id}"
	subs := map[string]*confRaw{
		"star":     confOpen(t, th, http.MethodGet, "topic=*", hdr, ""),
		"template": confOpen(t, th, http.MethodGet, "topic="+url.QueryEscape(tmpl), hdr, ""),
		"exact":    confOpen(t, th, http.MethodGet, "topic="+url.QueryEscape("https://example.com/books/1"), hdr, ""),
		"relative": confOpen(t, th, http.MethodGet, "topic=books%2F1", hdr, ""),
	}
	pub := legacyToken(t, []string{"*"}, nil)
	topics := []string{"https://example.com/books/1", tmpl, "https://example.com/books/1/reviews", "https://example.com/authors/1", "books/1", "https://example.com/BOOKS/1"}
	ids := map[string]string{}
	for _, topic := range topics {
		ids[topic] = th.mustPublish(t, pub, url.Values{"topic": {topic}})
	}
	want := map[string][]string{
		"star":     topics,
		"template": {"https://example.com/books/1", tmpl},
		"exact":    {"https://example.com/books/1"},
		"relative": {"books/1"},
	}
	fence := th.mustPublish(t, pub, url.Values{"topic": {"*", tmpl, "https://example.com/books/1", "books/1"}})
	for name, s := range subs {
		var wantIDs []string
		for _, topic := range want[name] {
			wantIDs = append(wantIDs, ids[topic])
		}
		wantIDs = append(wantIDs, fence)
		if got := confIDs(s.events(t, len(wantIDs))); !slices.Equal(got, wantIDs) {
			t.Errorf("%s: got %q, want %q", name, got, wantIDs)
		}
	}
}

// docs/protocol.md#publish-id, draft-07: like the reference 0.x hub, only CR,
// LF and NUL are refused in an id (besides the leading "#" and "earliest" of
// every generation); other characters pass and reach the wire unchanged.
func TestDraft07IDRefusesOnlyLineBreaksAndNUL(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := legacyToken(t, []string{"*"}, []string{"*"})
	for _, id := range []string{"a\rb", "a\nb", "a\x00b", "\r\n", "x\r\nid: injected"} {
		resp, body := th.publish(t, tok, url.Values{"topic": {"t"}, "id": {id}})
		confStatus(t, fmt.Sprintf("id %q", id), resp, body, http.StatusBadRequest)
	}
	s := confOpen(t, th, http.MethodGet, "topic=t", bearer(tok), "")
	accepted := []string{"a\x01b", "tab\there", "del\x7f", "c1\u0085", "zwsp\u200b", "bom\ufeff", "ls\u2028"}
	for _, id := range accepted {
		if got := th.mustPublish(t, tok, url.Values{"topic": {"t"}, "id": {id}}); got != id {
			t.Errorf("id %q answered as %q", id, got)
		}
	}
	wire := s.waitFor(t, "id: ls\u2028\ndata: \n\n")
	for _, id := range accepted {
		if !strings.Contains(wire, "\n\nid: "+id+"\ndata: \n\n") && !strings.HasPrefix(wire, ":\nid: "+id+"\n") {
			t.Errorf("wire %q lacks the id %q", wire, id)
		}
	}
	if got := confIDs(confParse(t, wire)); !slices.Equal(got, accepted) {
		t.Errorf("parsed ids %q", got)
	}
}

// docs/protocol.md#publish-type, draft-07: CR, LF and NUL are refused in a type;
// "mercure" is only reserved in draft-08.
func TestDraft07TypeRules(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := legacyToken(t, []string{"*"}, []string{"*"})
	for _, typ := range []string{"a\rb", "a\nb", "a\x00b", "x\ndata: injected"} {
		resp, body := th.publish(t, tok, url.Values{"topic": {"t"}, "type": {typ}})
		confStatus(t, fmt.Sprintf("type %q", typ), resp, body, http.StatusBadRequest)
	}
	s := confOpen(t, th, http.MethodGet, "topic=t", bearer(tok), "")
	for _, typ := range []string{"mercure", "a\x01b", "zwsp\u200b"} {
		th.mustPublish(t, tok, url.Values{"topic": {"t"}, "type": {typ}})
	}
	evs := s.events(t, 3)
	for i, typ := range []string{"mercure", "a\x01b", "zwsp\u200b"} {
		if evs[i].Type != typ {
			t.Errorf("event %d type %q, want %q", i, evs[i].Type, typ)
		}
	}
}

// docs/protocol.md#publish-topics, draft-07: like the reference 0.x hub, a
// topic containing "/.well-known/mercure" anywhere gets 403, and so does one
// that draft-08's rule reserves (its resolved path is under the hub path, as
// "/.well-known/%6Dercure/x" is), so that no draft-07 publisher reaches what
// draft-08 subscribers see as the hub's own namespace. Other topics, "*"
// included, are not checked.
func TestDraft07ReservedTopicIs403(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := legacyToken(t, []string{"*"}, []string{"*"})
	for _, topics := range [][]string{
		{"https://example.com/.well-known/mercure/subscriptions/x"},
		{"/.well-known/mercure"},
		{"x/.well-known/mercurey"},
		{"ok", "/.well-known/mercure/subscriptions"},
		{"/.well-known/%6Dercure/x"},
	} {
		resp, body := th.publish(t, tok, url.Values{"topic": topics})
		confStatus(t, fmt.Sprint(topics), resp, body, http.StatusForbidden)
		confChallenge(t, fmt.Sprint(topics), th, resp, "-")
	}
	for _, topic := range []string{"*", "a\x01b", "/.well-known/Mercure/x"} {
		resp, body := th.publish(t, tok, url.Values{"topic": {topic}})
		confStatus(t, fmt.Sprintf("%q", topic), resp, body, http.StatusOK)
	}
}

// docs/protocol.md#publish-data is draft-08 only: a draft-07 publisher's data
// is not checked for UTF-8 and reaches the wire byte for byte.
func TestDraft07DataPassesByteForByte(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := legacyToken(t, []string{"*"}, []string{"*"})
	s := confOpen(t, th, http.MethodGet, "topic=t", bearer(tok), "")
	resp, body := confPublishRaw(t, th, bearer(tok), "topic=t&id=bin&data=%FF%FEx%C3")
	confStatus(t, "invalid UTF-8 data", resp, body, http.StatusOK)
	s.waitFor(t, "id: bin\ndata: \xff\xfex\xc3\n\n")
}

// docs/protocol.md#token-presentation, draft-07: the cookie
// mercureAuthorization and the `authorization` query parameter; the header
// beats the query, which beats the cookie.
func TestDraft07TokenSources(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	good := legacyToken(t, []string{"*"}, []string{"*"})
	bad := good + "x"
	q := func(tok string) string { return "topic=t&authorization=" + url.QueryEscape(tok) }
	cookie := func(name, tok string) http.Header { return http.Header{"Cookie": {name + "=" + tok}} }
	with := func(h http.Header, k, v string) http.Header { h = h.Clone(); h.Set(k, v); return h }
	cases := []struct {
		name  string
		query string
		hdr   http.Header
		want  int
	}{
		{"cookie", "topic=t", cookie(cookie07, good), http.StatusOK},
		{"draft-08 cookie is not read", "topic=t", cookie(cookie08, good), http.StatusUnauthorized},
		{"query", q(good), nil, http.StatusOK},
		{"query beats cookie", q(good), cookie(cookie07, bad), http.StatusOK},
		{"query beats cookie (bad query)", q(bad), cookie(cookie07, good), http.StatusUnauthorized},
		{"header beats query", q(bad), bearer(good), http.StatusOK},
		{"header beats query (bad header)", q(good), bearer(bad), http.StatusUnauthorized},
		{"header beats everything", q(bad), with(bearer(good), "Cookie", cookie07+"="+bad), http.StatusOK},
	}
	for _, c := range cases {
		resp, body := confDo(t, th, http.MethodGet, c.query, c.hdr, "")
		confStatus(t, c.name, resp, body, c.want)
		confChallenge(t, c.name, th, resp, "-")
	}
	// Publishing with the query parameter (the hub's choice: draft-07
	// publishers may use it too; it is not a cookie, so no CSRF check).
	resp, body := confDo(t, th, http.MethodPost, "authorization="+url.QueryEscape(good), nil, "topic=t")
	confStatus(t, "publish with the query parameter", resp, body, http.StatusOK)
}

// docs/protocol.md#legacy-tokens: the `mercure` claim of legacy tokens.
func TestLegacyMercureClaim(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprint("t", i)
	}
	hour := time.Now().Add(time.Hour).Unix()
	cases := []struct {
		name      string
		tok       string
		sub, pub  int
		pubTopics []string
	}{
		{"no mercure claim", confLegacy(t, nil, nil), 200, 403, nil},
		{"null mercure claim", confSign(t, "HS256", map[string]any{"typ": "JWT"}, map[string]any{"mercure": nil}, testKey), 200, 403, nil},
		{"no publish", confLegacy(t, map[string]any{"subscribe": []string{"*"}}, nil), 200, 403, nil},
		{"empty publish", confLegacy(t, map[string]any{"publish": []string{}}, nil), 200, 403, nil},
		{"publish granted", confLegacy(t, map[string]any{"publish": []string{"t"}, "payload": map[string]any{"free": []any{1, "json"}}}, nil), 200, 200, nil},
		{"1000 selectors", confLegacy(t, map[string]any{"publish": many[:1000], "subscribe": many[:1000]}, nil), 200, 200, []string{"t999"}},
		{"1001 publish selectors", confLegacy(t, map[string]any{"publish": many}, nil), 401, 401, nil},
		{"1001 subscribe selectors", confLegacy(t, map[string]any{"subscribe": many, "publish": []string{"*"}}, nil), 401, 401, nil},
		{"publish is a string", confLegacy(t, map[string]any{"publish": "*"}, nil), 401, 401, nil},
		{"publish holds a number", confLegacy(t, map[string]any{"publish": []any{"t", 1}}, nil), 401, 401, nil},
		{"mercure is a string", confLegacy(t, "publish", nil), 401, 401, nil},
		{"expired", confLegacy(t, map[string]any{"publish": []string{"*"}}, map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}), 401, 401, nil},
		{"not yet valid", confLegacy(t, map[string]any{"publish": []string{"*"}}, map[string]any{"nbf": hour}), 401, 401, nil},
		{"no exp", confLegacy(t, map[string]any{"publish": []string{"*"}}, nil), 200, 200, nil},
		{"aud and iss are ignored", confLegacy(t, map[string]any{"publish": []string{"*"}}, map[string]any{"aud": "https://elsewhere.example", "iss": "anyone"}), 200, 200, nil},
		{"alg none", confSign(t, "none", map[string]any{"typ": "JWT"}, map[string]any{"mercure": map[string]any{"publish": []string{"*"}}}, nil), 401, 401, nil},
		{"HS512 is not on the allowlist", confSign(t, "HS512", map[string]any{"typ": "JWT"}, map[string]any{"mercure": map[string]any{"publish": []string{"*"}}}, testKey), 401, 401, nil},
		{"wrong key", confSign(t, "HS256", map[string]any{"typ": "JWT"}, map[string]any{"mercure": map[string]any{"publish": []string{"*"}}}, []byte("another-secret-another-secret-!!")), 401, 401, nil},
	}
	for _, c := range cases {
		resp, body := confDo(t, th, http.MethodGet, "topic=t", bearer(c.tok), "")
		confStatus(t, c.name+" (subscribe)", resp, body, c.sub)
		confChallenge(t, c.name+" (subscribe)", th, resp, "-")
		topics := c.pubTopics
		if topics == nil {
			topics = []string{"t"}
		}
		resp, body = th.publish(t, c.tok, url.Values{"topic": topics})
		confStatus(t, c.name+" (publish)", resp, body, c.pub)
		if c.pub == http.StatusForbidden {
			confChallenge(t, c.name+" (publish)", th, resp, "-")
		}
	}
}

// docs/protocol.md#error-replies and #anonymous-subscribers, draft-07: errors
// are plain statuses without WWW-Authenticate; a hub that allows anonymous
// subscribers still refuses an invalid token, and anonymous subscribers get
// public updates only.
func TestDraft07ErrorsAndAnonymousSubscribers(t *testing.T) {
	t.Parallel()
	closed := newTestHub(t, nil)
	resp, body := confDo(t, closed, http.MethodGet, "topic=t", nil, "")
	confStatus(t, "no token, anonymous off", resp, body, http.StatusUnauthorized)
	confChallenge(t, "no token, anonymous off", closed, resp, "-")

	th := newTestHub(t, func(c *Config) { c.Anonymous = true })
	for name, tok := range map[string]string{
		"garbage": "x.y.z-but-long-enough-to-look-like-a-token-0123456789",
		"expired": confLegacy(t, map[string]any{"subscribe": []string{"*"}}, map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}),
		"bad sig": legacyToken(t, nil, []string{"*"}) + "x",
	} {
		resp, body := confDo(t, th, http.MethodGet, "topic=t", bearer(tok), "")
		confStatus(t, name, resp, body, http.StatusUnauthorized)
		confChallenge(t, name, th, resp, "-")
	}
	anon := confOpen(t, th, http.MethodGet, "topic=t", nil, "")
	noGrant := confOpen(t, th, http.MethodGet, "topic=t", bearer(confLegacy(t, nil, nil)), "")
	pub := legacyToken(t, []string{"*"}, nil)
	th.mustPublish(t, pub, url.Values{"topic": {"t"}, "private": {"on"}})
	public := th.mustPublish(t, pub, url.Values{"topic": {"t"}})
	for name, s := range map[string]*confRaw{"anonymous": anon, "token without grants": noGrant} {
		if got := confIDs(s.events(t, 1)); !slices.Equal(got, []string{public}) {
			t.Errorf("%s got %q, want only %q", name, got, public)
		}
	}
}

// The generation of a subscription comes from its parameters, not from its
// token (the hub's choice): an access token may subscribe with `topic=`,
// and its draft-08 grants decide which private updates it receives.
func TestAccessTokenOnDraft07Subscription(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := th.accessToken(t, nil, []string{"https://example.com/:id"})
	s := confOpen(t, th, http.MethodGet, "topic=*&lastEventID=", bearer(tok), "")
	if got := s.resp.Header.Values("Last-Event-ID"); !slices.Equal(got, []string{"earliest"}) {
		t.Errorf("Last-Event-ID = %q (a draft-07 subscription answers with the draft-07 header)", got)
	}
	pub := legacyToken(t, []string{"*"}, nil)
	granted := th.mustPublish(t, pub, url.Values{"topic": {"https://example.com/1"}, "private": {"on"}})
	th.mustPublish(t, pub, url.Values{"topic": {"https://example.org/1"}, "private": {"on"}})
	public := th.mustPublish(t, pub, url.Values{"topic": {"https://example.com/2"}})
	if got := confIDs(s.events(t, 2)); !slices.Equal(got, []string{granted, public}) {
		t.Errorf("got %q, want %q", got, []string{granted, public})
	}
}
