package hub

// Protocol conformance tests for draft-08 (RFC 9068 access tokens,
// `match=` matchers, RFC 9728 metadata, RFC 6750 challenges), over real
// HTTP. Helpers are in protocol_common_test.go.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/token"
)

// confMetadata fetches the metadata document of th with the given method.
func confMetadata(tb testing.TB, th *testHub, method string) (*http.Response, map[string]any) {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), method, confMetadataURL(th), nil)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	if resp.StatusCode == http.StatusOK && method == http.MethodGet {
		if err := json.Unmarshal(b, &doc); err != nil {
			tb.Fatalf("metadata is not JSON: %v: %s", err, b)
		}
	}
	return resp, doc
}

// docs/protocol.md#metadata and #error-replies: RFC 9728 metadata at
// /.well-known/oauth-protected-resource/.well-known/mercure, with `resource`
// and the optional members; the challenges point at it; a purely anonymous
// hub serves none.
func TestProtectedResourceMetadata(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Subscriptions = true })
	resp, doc := confMetadata(t, th, http.MethodGet)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metadata: %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	want := map[string]any{
		"resource":                              th.url,
		"authorization_details_types_supported": []any{token.DetailType},
		"bearer_methods_supported":              []any{"header"},
		"mercure_cookie":                        cookie08,
		"mercure_subscriptions":                 true,
	}
	for k, v := range want {
		if got, _ := json.Marshal(doc[k]); string(got) != mustJSON(t, v) {
			t.Errorf("%s = %s, want %s", k, got, mustJSON(t, v))
		}
	}
	types, _ := doc["mercure_matcher_types_supported"].([]any)
	if !slices.Contains(types, any("exact")) || !slices.Contains(types, any("urlpattern")) {
		t.Errorf("mercure_matcher_types_supported = %v", doc["mercure_matcher_types_supported"])
	}
	resp, _ = confMetadata(t, th, http.MethodHead)
	confStatus(t, "HEAD metadata", resp, "", http.StatusOK)
	resp, _ = confMetadata(t, th, http.MethodPost)
	confStatus(t, "POST metadata", resp, "", http.StatusMethodNotAllowed)

	// Without the subscriptions feature it says so.
	off := newTestHub(t, nil)
	if _, doc := confMetadata(t, off, http.MethodGet); doc["mercure_subscriptions"] != false {
		t.Errorf("mercure_subscriptions = %v, want false", doc["mercure_subscriptions"])
	}

	// A pinned resource identifier is the resource, the audience, and the
	// origin of resource_metadata.
	const pinned = "https://hub.example/.well-known/mercure"
	p := newTestHub(t, func(c *Config) { c.ResourceIdentifier = pinned })
	if _, doc := confMetadata(t, p, http.MethodGet); doc["resource"] != pinned {
		t.Errorf("pinned: resource = %v", doc["resource"])
	}
	resp, body := confDo(t, p, http.MethodGet, "match=t", nil, "")
	confStatus(t, "pinned, no token", resp, body, http.StatusUnauthorized)
	if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer resource_metadata="https://hub.example/.well-known/oauth-protected-resource/.well-known/mercure"` {
		t.Errorf("pinned challenge %q", got)
	}
	resp, body = confDo(t, p, http.MethodGet, "match=t", bearer(p.accessToken(t, nil, []string{"*"})), "")
	confStatus(t, "pinned, token for the request origin", resp, body, http.StatusUnauthorized)
	tok := mint(t, token.MintOptions{Format: token.FormatAccessToken, Subscribe: []string{"*"}, Audience: pinned})
	resp, body = confDo(t, p, http.MethodGet, "match=t", bearer(tok), "")
	confStatus(t, "pinned, token for the pinned resource", resp, body, http.StatusOK)

	// A purely anonymous hub (no keys) serves no metadata.
	anon := newTestHub(t, func(c *Config) {
		c.PublisherVerifier, c.SubscriberVerifier, c.Anonymous = nil, nil, true
	})
	resp, _ = confMetadata(t, anon, http.MethodGet)
	confStatus(t, "anonymous hub metadata", resp, "", http.StatusNotFound)
	resp, body = confDo(t, anon, http.MethodGet, "match=t", nil, "")
	confStatus(t, "anonymous hub, no token", resp, body, http.StatusOK)
	// Its challenges point at no metadata document.
	resp, body = confDo(t, anon, http.MethodGet, "match=t", bearer(tok), "")
	confStatus(t, "anonymous hub, a token", resp, body, http.StatusUnauthorized)
	if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token", error_description="invalid token: this hub has no subscriber key, so it accepts anonymous subscribers only"` {
		t.Errorf("anonymous hub, a token: WWW-Authenticate = %q", got)
	}
	resp, body = confPublishRaw(t, anon, nil, "topic=t")
	confStatus(t, "anonymous hub, publish", resp, body, http.StatusUnauthorized)
	if got := resp.Header.Get("WWW-Authenticate"); got != "Bearer" {
		t.Errorf("anonymous hub, publish: WWW-Authenticate = %q", got)
	}
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// docs/protocol.md#error-replies: the audience of access tokens comes from
// the configuration, never from the request. A token minted for the Host a
// client sends is refused; a hub without a resource identifier refuses
// every access token (its metadata and challenges, which carry no
// authority, still follow the request).
func TestAudienceNeverComesFromTheRequest(t *testing.T) {
	t.Parallel()
	evil := mint(t, token.MintOptions{Format: token.FormatAccessToken, Publish: []string{"*"}, Subscribe: []string{"*"}, Audience: "http://evil.example/.well-known/mercure"})
	for name, mod := range map[string]func(*Config){
		"pinned":     nil,
		"not pinned": func(c *Config) { c.ResourceIdentifier = "" },
	} {
		th := newTestHub(t, mod)
		req := confRequest(t, t.Context(), th, http.MethodPost, "", bearer(evil), url.Values{"topic": {"https://example.com/x"}}.Encode())
		req.Host = "evil.example"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		confStatus(t, name+": publish with the Host's audience", resp, "", http.StatusUnauthorized)
		if n := len(confStored(t, th)); n != 0 {
			t.Errorf("%s: %d updates stored", name, n)
		}
		if mod == nil {
			continue
		}
		// Not even a token for the hub's own URL passes.
		own := th.accessToken(t, []string{"*"}, nil)
		resp, body := th.publish(t, own, url.Values{"topic": {"https://example.com/x"}})
		confStatus(t, name+": publish with the hub URL's audience", resp, body, http.StatusUnauthorized)
		req = confRequest(t, t.Context(), th, http.MethodGet, "match=t", nil, "")
		req.Host = "hub.example:8443"
		if resp, err = http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer resource_metadata="http://hub.example:8443/.well-known/oauth-protected-resource/.well-known/mercure"` {
			t.Errorf("challenge %q", got)
		}
	}
}

// docs/protocol.md#subscribe-match: draft-08 matcher parameters and their limits.
func TestMatcherParameters(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	hdr := bearer(th.accessToken(t, nil, []string{"*"}))
	long := "https://example.com/" + strings.Repeat("x", 4096-len("https://example.com/"))
	var hundred []string
	for i := range 101 {
		hundred = append(hundred, fmt.Sprint("match=", i))
	}
	cases := []struct {
		name, query string
		want        int
	}{
		{"no matcher", "", 400},
		{"unrelated only", "foo=1", 400},
		{"Match", "Match=a", 400},
		{"MATCH", "MATCH=a", 400},
		{"match_regexp", "match_regexp=a", 400},
		{"matching", "matching=a", 400},
		{"Match_Exact", "Match_Exact=a", 400},
		{"reserved prefix next to a valid matcher", "match=a&match_regexp=b", 400},
		{"unrelated parameters are ignored", "foo=1&match=a&bar", 200},
		{"match_exact", "match_exact=a", 200},
		{"match_urlpattern", "match_urlpattern=" + url.QueryEscape("https://example.com/:id"), 200},
		{"invalid URL pattern", "match_urlpattern=" + url.QueryEscape("https://example.com/("), 400},
		{"name without value (empty matcher)", "match", 400},
		{"empty matcher", "match=", 400},
		{"100 matchers", strings.Join(hundred[:100], "&"), 200},
		{"101 matchers", strings.Join(hundred, "&"), 400},
		{"4096-byte pattern", "match=" + url.QueryEscape(long), 200},
		{"4097-byte pattern", "match=" + url.QueryEscape(long+"x"), 400},
		{"4097-byte URL pattern", "match_urlpattern=" + url.QueryEscape(long+"x"), 400},
		{"C0 control", "match=a%01b", 400},
		{"tab", "match=a%09b", 400},
		{"DEL", "match=a%7Fb", 400},
		{"C1 control", "match=a%C2%85b", 400},
		{"Cf zero-width space", "match=a%E2%80%8Bb", 400},
		{"Cf BOM", "match=%EF%BB%BFa", 400},
		{"invalid UTF-8", "match=a%FFb", 400},
		{"topic and match", "match=a&topic=b", 400},
		{"match_urlpattern and topic", "topic=b&match_urlpattern=a", 400},
	}
	for _, c := range cases {
		resp, body := confDo(t, th, http.MethodGet, c.query, hdr, "")
		confStatus(t, c.name, resp, body, c.want)
		if c.want == 400 {
			confChallenge(t, c.name, th, resp, "-")
		}
	}
	_, body := confDo(t, th, http.MethodGet, "", hdr, "")
	if !strings.HasPrefix(body, `missing "match" subscription parameter`) {
		t.Errorf("no matcher: body %q", body)
	}
	// The invalid pattern gets a generic message, not a parser dump.
	_, body = confDo(t, th, http.MethodGet, "match_urlpattern="+url.QueryEscape("https://example.com/("), hdr, "")
	if strings.Contains(body, "tokenizer") || strings.Contains(body, "example.com") || len(body) > 100 {
		t.Errorf("invalid pattern: body %q", body)
	}
	// Parameter errors come before authorization; a pattern is only
	// compiled for an authorised subscriber (the hub's choice).
	resp, body := confDo(t, th, http.MethodGet, "Match=a", nil, "")
	confStatus(t, "reserved name without a token", resp, body, http.StatusBadRequest)
	resp, body = confDo(t, th, http.MethodGet, "match_urlpattern="+url.QueryEscape("https://example.com/("), nil, "")
	confStatus(t, "invalid pattern without a token", resp, body, http.StatusUnauthorized)
}

// docs/protocol.md#matching-08: exact is a byte comparison without
// normalisation or resolution; URL patterns follow the standard without
// ignoreCase; relative patterns and topics resolve against the hub URL; "*"
// matches everything whatever the type.
func TestDraft08Matching(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	hdr := bearer(th.accessToken(t, nil, []string{"*"}))
	origin := th.srv.URL
	subs := map[string]string{
		"exact":            "match=" + url.QueryEscape("https://example.com/a%2Fb"),
		"exact relative":   "match_exact=books%2F1",
		"pattern":          "match_urlpattern=" + url.QueryEscape("https://example.com/books/:id"),
		"relative pattern": "match_urlpattern=" + url.QueryEscape("/books/:id"),
		"exact star":       "match=*",
		"pattern star":     "match_urlpattern=*",
	}
	open := map[string]*confRaw{}
	for name, q := range subs {
		open[name] = confOpen(t, th, http.MethodGet, q, hdr, "")
	}
	topics := []string{
		"https://example.com/a%2Fb",       // 0
		"https://example.com/a/b",         // 1
		"https://EXAMPLE.com/a%2Fb",       // 2
		"books/1",                         // 3
		origin + "/.well-known/books/1",   // 4: books/1 resolved
		"https://example.com/books/1",     // 5
		"https://example.com/books/1/x",   // 6
		"https://example.com/Books/1",     // 7
		origin + "/books/2",               // 8
		"/books/3",                        // 9: relative to the hub URL
		"urn:uuid:4d1a-not-a-url-pattern", // 10
	}
	want := map[string][]int{
		"exact":            {0},
		"exact relative":   {3},
		"pattern":          {5},
		"relative pattern": {8, 9},
		"exact star":       {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		"pattern star":     {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
	}
	pub := th.accessToken(t, []string{"*"}, nil)
	var ids []string
	for _, topic := range topics {
		ids = append(ids, th.mustPublish(t, pub, url.Values{"topic": {topic}}))
	}
	fence := th.mustPublish(t, pub, url.Values{"topic": {"https://example.com/a%2Fb", "books/1", "https://example.com/books/1", "/books/3"}})
	for name, s := range open {
		var wantIDs []string
		for _, i := range want[name] {
			wantIDs = append(wantIDs, ids[i])
		}
		wantIDs = append(wantIDs, fence)
		if got := confIDs(s.events(t, len(wantIDs))); !slices.Equal(got, wantIDs) {
			t.Errorf("%s: got %q, want %q", name, got, wantIDs)
		}
	}
}

// docs/protocol.md#publish-id, draft-08: besides "#" and "earliest", an id
// must not contain C0, DEL, C1 or Cf characters (nor invalid UTF-8).
func TestDraft08IDRefusesControlAndFormatCharacters(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := th.accessToken(t, []string{"*"}, nil)
	for _, id := range []string{"a\rb", "a\nb", "a\x00b", "a\x01b", "tab\there", "del\x7f", "c1\u0085", "zwsp\u200b", "bom\ufeff", "rlo\u202e", "bad\xffutf8"} {
		resp, body := th.publish(t, tok, url.Values{"topic": {"t"}, "id": {id}})
		confStatus(t, fmt.Sprintf("id %q", id), resp, body, http.StatusBadRequest)
		confChallenge(t, fmt.Sprintf("id %q", id), th, resp, "-")
	}
	for _, id := range []string{"ls\u2028", "ünïcödé", "a b", "urn:uuid:0190e9e3-6c8f-7000-8000-000000000000"} {
		if got := th.mustPublish(t, tok, url.Values{"topic": {"t"}, "id": {id}}); got != id {
			t.Errorf("id %q answered as %q", id, got)
		}
	}
}

// docs/protocol.md#publish-type, draft-08: a type without control or Cf
// characters, and never "mercure" (compared case-sensitively: "Mercure"
// passes, the hub's reading of the rule).
func TestDraft08TypeRules(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := th.accessToken(t, []string{"*"}, []string{"*"})
	for _, typ := range []string{"mercure", "a\rb", "a\nb", "a\x00b", "a\x01b", "del\x7f", "zwsp\u200b", "c1\u0085", "bad\xff"} {
		resp, body := th.publish(t, tok, url.Values{"topic": {"t"}, "type": {typ}})
		confStatus(t, fmt.Sprintf("type %q", typ), resp, body, http.StatusBadRequest)
	}
	s := confOpen(t, th, http.MethodGet, "match=t", bearer(tok), "")
	for _, typ := range []string{"Mercure", "message", "a b"} {
		th.mustPublish(t, tok, url.Values{"topic": {"t"}, "type": {typ}})
	}
	var got []string
	for _, ev := range s.events(t, 3) {
		got = append(got, ev.Type)
	}
	if !slices.Equal(got, []string{"Mercure", "message", "a b"}) {
		t.Errorf("types %q", got)
	}
}

// docs/protocol.md#publish-topics, draft-08: topics are UTF-8 without control
// or Cf characters, "*" is not a topic, and the hub's own namespace (after
// resolution, dot-segment removal and decoding of unreserved characters) is
// reserved: all 400, for canonical and alternate topics alike.
func TestDraft08TopicRulesAndReservedNamespace(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := th.accessToken(t, []string{"*"}, []string{"*"})
	refused := []string{
		"*",
		"a\x01b",
		"a\x7fb",
		"zwsp\u200b",
		"bad\xffutf8",
		"https://x.example/.well-known/mercure/subscriptions/x",
		"/.well-known/%6Dercure/x",
		"/.well-known/mercure",
		"/.well-known/mercure/",
		"mercure/x",
		"/.well-known/./mercure/x",
		"/a/../.well-known/mercure/x",
		th.srv.URL + "/.well-known/mercure/subscriptions",
		"//evil.example/.well-known/mercure/x",
	}
	for _, topic := range refused {
		for _, topics := range [][]string{{topic}, {"ok", topic}} {
			resp, body := th.publish(t, tok, url.Values{"topic": topics})
			confStatus(t, fmt.Sprintf("topics %q", topics), resp, body, http.StatusBadRequest)
			confChallenge(t, fmt.Sprintf("topics %q", topics), th, resp, "-")
		}
	}
	for _, topic := range []string{"/.well-known/mercurex", "/.well-known/mercure-ish/x", "/.well-known/Mercure/x", "https://example.com/a b", "urn:x:.well-known/mercure", "urn:x:/.well-known/mercure/x"} {
		resp, body := th.publish(t, tok, url.Values{"topic": {topic}})
		confStatus(t, fmt.Sprintf("topic %q", topic), resp, body, http.StatusOK)
	}
}

// docs/protocol.md#publish-data: draft-08 data must be valid UTF-8.
func TestDraft08DataMustBeUTF8(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := th.accessToken(t, []string{"*"}, []string{"*"})
	for _, data := range []string{"%FF", "a%C3%28", "%ED%A0%80", "%C0%AF", "x%F4%90%80%80"} {
		resp, body := confPublishRaw(t, th, bearer(tok), "topic=t&data="+data)
		confStatus(t, "data "+data, resp, body, http.StatusBadRequest)
	}
	s := confOpen(t, th, http.MethodGet, "match=t", bearer(tok), "")
	th.mustPublish(t, tok, url.Values{"topic": {"t"}, "data": {"ünï\x00cödé 😀"}})
	if ev := s.events(t, 1)[0]; ev.Data != "ünï\x00cödé 😀" {
		t.Errorf("data %q", ev.Data)
	}
	if n := len(confStored(t, th)); n != 1 {
		t.Errorf("%d updates stored", n)
	}
}

// docs/protocol.md#token-presentation and #anonymous-subscribers, draft-08:
// the __Secure-mercure_access_token cookie; no query parameter and no
// draft-07 cookie; without any token and anonymous off, a 401 with the bare
// challenge.
func TestDraft08TokenSources(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := th.accessToken(t, nil, []string{"*"})
	cases := []struct {
		name, query string
		hdr         http.Header
		want        int
		challenge   string
	}{
		{"cookie", "match=t", http.Header{"Cookie": {cookie08 + "=" + tok}}, 200, "-"},
		{"draft-07 cookie is not read", "match=t", http.Header{"Cookie": {cookie07 + "=" + tok}}, 401, ""},
		{"query parameter is not read", "match=t&authorization=" + url.QueryEscape(tok), nil, 401, ""},
		{"nothing", "match=t", nil, 401, ""},
		{"empty cookie", "match=t", http.Header{"Cookie": {cookie08 + "="}}, 401, ""},
		{"bad cookie", "match=t", http.Header{"Cookie": {cookie08 + "=" + tok + "x"}}, 401, "invalid_token"},
	}
	for _, c := range cases {
		resp, body := confDo(t, th, http.MethodGet, c.query, c.hdr, "")
		confStatus(t, c.name, resp, body, c.want)
		confChallenge(t, c.name, th, resp, c.challenge)
	}
}

// confInvalidAccessTokens are access tokens that a hub must refuse with 401
// invalid_token (docs/protocol.md#access-tokens and #authorization-details),
// keyed by what is wrong.
func confInvalidAccessTokens(tb testing.TB, th *testHub) map[string]string {
	tb.Helper()
	all := []string{"publish", "subscribe"}
	good := func() map[string]any {
		return confAccessClaims(th, confDetail(all, confTopic("*", "")))
	}
	with := func(k string, v any) map[string]any {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	withDetails := func(details ...any) map[string]any { return with("authorization_details", details) }
	sign := func(c map[string]any) string { return confAccess(tb, c) }
	now := time.Now().Unix()

	otherKey := []byte("another-secret-another-secret-!!")
	jwk := map[string]any{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString(otherKey)}
	manyDetails := make([]any, 101)
	for i := range manyDetails {
		manyDetails[i] = confDetail(all, confTopic(fmt.Sprint("t", i), ""))
	}
	var topics51, topics50 []any
	for i := range 51 {
		topics51 = append(topics51, confTopic(fmt.Sprint("a", i), ""))
	}
	for i := range 50 {
		topics50 = append(topics50, confTopic(fmt.Sprint("b", i), ""))
	}

	return map[string]string{
		"expired":                 sign(with("exp", now-10)),
		"no exp":                  sign(with("exp", nil)),
		"exp is a string":         sign(with("exp", fmt.Sprint(now+3600))),
		"nbf in the future":       sign(with("nbf", now+3600)),
		"wrong aud":               sign(with("aud", "https://other.example/.well-known/mercure")),
		"aud array without us":    sign(with("aud", []string{"https://other.example/.well-known/mercure"})),
		"no aud":                  sign(with("aud", nil)),
		"no typ":                  confSign(tb, "HS256", map[string]any{"typ": nil}, good(), testKey),
		"typ JWT":                 confSign(tb, "HS256", map[string]any{"typ": "JWT"}, good(), testKey),
		"legacy mercure token":    legacyToken(tb, []string{"*"}, []string{"*"}),
		"alg none":                confSign(tb, "none", map[string]any{"typ": "at+jwt"}, good(), nil),
		"alg HS512":               confSign(tb, "HS512", map[string]any{"typ": "at+jwt"}, good(), testKey),
		"wrong key":               confSign(tb, "HS256", map[string]any{"typ": "at+jwt"}, good(), otherKey),
		"key from the jwk header": confSign(tb, "HS256", map[string]any{"typ": "at+jwt", "jwk": jwk}, good(), otherKey),
		"key from jku":            confSign(tb, "HS256", map[string]any{"typ": "at+jwt", "jku": th.srv.URL + "/jwks.json"}, good(), otherKey),
		"crit header":             confSign(tb, "HS256", map[string]any{"typ": "at+jwt", "crit": []string{"exp"}}, good(), testKey),
		"bad signature":           sign(good()) + "A",
		"not a JWT":               "this-is-not-a-jwt-this-is-not-a-jwt-this-is-not-a-jwt",
		"details not an array":    sign(with("authorization_details", map[string]any{"type": token.DetailType})),
		"bare string topics":      sign(withDetails(map[string]any{"type": token.DetailType, "actions": all, "topics": []string{"*"}})),
		"null topic":              sign(withDetails(map[string]any{"type": token.DetailType, "actions": all, "topics": []any{nil}})),
		"topic without match":     sign(withDetails(confDetail(all, map[string]any{"match_type": "exact"}))),
		"empty pattern":           sign(withDetails(confDetail(all, confTopic("", "exact")))),
		"unknown match_type":      sign(withDetails(confDetail(all, confTopic("*", "regexp")))),
		"match_type Exact":        sign(withDetails(confDetail(all, confTopic("*", "Exact")))),
		"empty topics":            sign(withDetails(confDetail(all))),
		"no topics":               sign(withDetails(map[string]any{"type": token.DetailType, "actions": all})),
		"empty actions":           sign(withDetails(confDetail([]string{}, confTopic("*", "")))),
		"non-string action":       sign(withDetails(map[string]any{"type": token.DetailType, "actions": []any{"publish", 1}, "topics": []any{confTopic("*", "")}})),
		"detail without type":     sign(withDetails(map[string]any{"actions": all, "topics": []any{confTopic("*", "")}})),
		"bad detail next to good": sign(withDetails(confDetail(all, confTopic("*", "")), confDetail(all, "bare"))),
		"101 details":             sign(withDetails(manyDetails...)),
		"101 topics in all":       sign(withDetails(confDetail(all, topics51...), confDetail(all, topics50...))),
		"payload not an object":   sign(withDetails(map[string]any{"type": token.DetailType, "actions": all, "topics": []any{confTopic("*", "")}, "payload": "x"})),
	}
}

// docs/protocol.md#access-tokens, #authorization-details, #error-replies and
// #anonymous-subscribers: every access-token failure is 401 with `Bearer
// error="invalid_token", resource_metadata="…"`, for subscribers (anonymous
// allowed or not) and publishers.
func TestInvalidAccessTokensAre401(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Anonymous = true })
	closed := newTestHub(t, nil)
	for name, tok := range confInvalidAccessTokens(t, th) {
		for _, h := range []*testHub{th, closed} {
			resp, body := confDo(t, h, http.MethodGet, "match=t", bearer(tok), "")
			confStatus(t, name+" (subscribe)", resp, body, http.StatusUnauthorized)
			confChallenge(t, name+" (subscribe)", h, resp, "invalid_token")
		}
		switch name {
		case "no typ", "typ JWT", "legacy mercure token":
			// Legacy tokens: valid for publishing (draft-07 publishers).
			continue
		}
		resp, body := confPublishRaw(t, th, bearer(tok), "topic=t")
		confStatus(t, name+" (publish)", resp, body, http.StatusUnauthorized)
		confChallenge(t, name+" (publish)", th, resp, "invalid_token")
	}
	if n := len(confStored(t, th)); n != 0 {
		t.Errorf("%d updates stored", n)
	}
}

// docs/protocol.md#access-tokens and #authorization-details: what valid
// access tokens may look like.
func TestValidAccessTokenShapes(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	all := []string{"publish", "subscribe"}
	now := time.Now().Unix()
	claims := func(mod func(map[string]any), details ...any) string {
		c := confAccessClaims(th, details...)
		if mod != nil {
			mod(c)
		}
		return confAccess(t, c)
	}
	star := confDetail(all, confTopic("*", ""))
	cases := map[string]string{
		"minimal":                claims(nil, star),
		"typ application/at+jwt": confSign(t, "HS256", map[string]any{"typ": "application/at+jwt"}, confAccessClaims(th, star), testKey),
		"typ AT+JWT":             confSign(t, "HS256", map[string]any{"typ": "AT+JWT"}, confAccessClaims(th, star), testKey),
		"aud array":              claims(func(c map[string]any) { c["aud"] = []string{"https://other.example", th.url} }, star),
		"nbf in the past":        claims(func(c map[string]any) { c["nbf"] = now - 10 }, star),
		"no sub, client_id, iat, jti": claims(func(c map[string]any) {
			delete(c, "sub")
			delete(c, "client_id")
			delete(c, "iat")
			delete(c, "jti")
		}, star),
		"foreign details are ignored": claims(nil, map[string]any{"type": "https://other.example/detail", "actions": "whatever", "topics": []string{"bare"}}, star),
		"unknown action":              claims(nil, confDetail([]string{"frobnicate", "publish", "subscribe"}, confTopic("*", ""))),
		"100 topics":                  claims(nil, confDetail(all, hundredTopics()...)),
	}
	for name, tok := range cases {
		resp, body := confDo(t, th, http.MethodGet, "match=t", bearer(tok), "")
		confStatus(t, name+" (subscribe)", resp, body, http.StatusOK)
		resp, body = confPublishRaw(t, th, bearer(tok), "topic=t0") // "100 topics" grants t0 to t99
		confStatus(t, name+" (publish)", resp, body, http.StatusOK)
	}
}

func hundredTopics() []any {
	var out []any
	for i := range 100 {
		out = append(out, confTopic(fmt.Sprint("t", i), ""))
	}
	return out
}

// docs/protocol.md#access-tokens: with trusted issuers configured, `iss` must
// equal one of them exactly.
func TestTrustedIssuersMatchExactly(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) {
		v, err := token.NewVerifier(token.VerifierConfig{Key: testKey, Issuers: []string{"https://issuer.example"}})
		if err != nil {
			t.Fatal(err)
		}
		c.PublisherVerifier, c.SubscriberVerifier = v, v
	})
	for iss, want := range map[string]int{
		"https://issuer.example":  200,
		"https://issuer.example/": 401,
		"https://ISSUER.example":  401,
		"mercurectl":              401,
		"":                        401,
	} {
		c := confAccessClaims(th, confDetail([]string{"subscribe"}, confTopic("*", "")))
		if iss == "" {
			delete(c, "iss")
		} else {
			c["iss"] = iss
		}
		resp, body := confDo(t, th, http.MethodGet, "match=t", bearer(confAccess(t, c)), "")
		confStatus(t, "iss "+iss, resp, body, want)
		if want == 401 {
			confChallenge(t, "iss "+iss, th, resp, "invalid_token")
		}
	}
}

// docs/protocol.md#authorization-details: grants from authorization_details:
// actions, exact by default (case-sensitive types), URL patterns, and unknown
// actions that grant nothing.
func TestAuthorizationDetailsGrants(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := func(details ...any) string { return confAccess(t, confAccessClaims(th, details...)) }
	pubOnly := []string{"publish"}
	// detailsClaim sets authorization_details to v (nil: no such claim).
	detailsClaim := func(v any) string {
		c := confAccessClaims(th)
		if v == nil {
			delete(c, "authorization_details")
		} else {
			c["authorization_details"] = v
		}
		return confAccess(t, c)
	}
	cases := []struct {
		name   string
		tok    string
		topics []string
		want   int
	}{
		{"exact by default", tok(confDetail(pubOnly, confTopic("https://example.com/:id", ""))), []string{"https://example.com/1"}, 403},
		{"exact by default, literal", tok(confDetail(pubOnly, confTopic("https://example.com/:id", ""))), []string{"https://example.com/:id"}, 200},
		{"urlpattern", tok(confDetail(pubOnly, confTopic("https://example.com/:id", "urlpattern"))), []string{"https://example.com/1"}, 200},
		{"urlpattern, not below", tok(confDetail(pubOnly, confTopic("https://example.com/:id", "urlpattern"))), []string{"https://example.com/1/2"}, 403},
		{"relative urlpattern", tok(confDetail(pubOnly, confTopic("/books/:id", "urlpattern"))), []string{th.srv.URL + "/books/1"}, 200},
		{"subscribe only", tok(confDetail([]string{"subscribe"}, confTopic("*", ""))), []string{"t"}, 403},
		{"unknown action only", tok(confDetail([]string{"frobnicate"}, confTopic("*", ""))), []string{"t"}, 403},
		{"grants add up", tok(confDetail(pubOnly, confTopic("a", "")), confDetail(pubOnly, confTopic("b", "exact"))), []string{"a", "b"}, 200},
		{"publish detail on one topic", tok(confDetail(pubOnly, confTopic("a", "")), confDetail([]string{"subscribe"}, confTopic("b", ""))), []string{"a", "b"}, 403},
		{"empty details", detailsClaim([]any{}), []string{"t"}, 403},
		{"no details claim", detailsClaim(nil), []string{"t"}, 403},
	}
	for _, c := range cases {
		resp, body := th.publish(t, c.tok, url.Values{"topic": c.topics})
		confStatus(t, c.name, resp, body, c.want)
		if c.want == 403 {
			confChallenge(t, c.name, th, resp, "insufficient_scope")
		}
	}
}

// docs/protocol.md#anonymous-subscribers: a hub that allows anonymous
// subscribers never downgrades an invalid token to anonymous; without a token
// the subscriber gets public updates only.
func TestInvalidTokenIsNeverAnonymous(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Anonymous = true })
	for name, tok := range map[string]string{
		"legacy token on a draft-08 subscription": legacyToken(t, nil, []string{"*"}),
		"expired": confAccess(t, func() map[string]any {
			c := confAccessClaims(th, confDetail([]string{"subscribe"}, confTopic("*", "")))
			c["exp"] = time.Now().Unix() - 1
			return c
		}()),
	} {
		resp, body := confDo(t, th, http.MethodGet, "match=t", bearer(tok), "")
		confStatus(t, name, resp, body, http.StatusUnauthorized)
		confChallenge(t, name, th, resp, "invalid_token")
	}
	anon := confOpen(t, th, http.MethodGet, "match=t", nil, "")
	pub := th.accessToken(t, []string{"*"}, nil)
	th.mustPublish(t, pub, url.Values{"topic": {"t"}, "private": {"on"}, "data": {"secret"}})
	public := th.mustPublish(t, pub, url.Values{"topic": {"t"}})
	if got := confIDs(anon.events(t, 1)); !slices.Equal(got, []string{public}) {
		t.Errorf("anonymous subscriber got %q", got)
	}
	anon2 := confOpen(t, th, http.MethodGet, "match=t&last_event_id=earliest", nil, "")
	if got := confIDs(anon2.events(t, 1)); !slices.Equal(got, []string{public}) {
		t.Errorf("anonymous replay got %q", got)
	}
}

// docs/protocol.md#error-replies: the challenge of each error class; 400s
// other than a malformed token presentation carry none.
func TestDraft08Challenges(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := th.accessToken(t, []string{"a"}, []string{"*"})
	cases := []struct {
		name, method, query, body string
		hdr                       http.Header
		want                      int
		challenge                 string
	}{
		{"subscribe without token", http.MethodGet, "match=t", "", nil, 401, ""},
		{"publish without token", http.MethodPost, "", "topic=a", nil, 401, ""},
		{"bad token", http.MethodGet, "match=t", "", bearer(tok + "x"), 401, "invalid_token"},
		{"no grant", http.MethodPost, "", "topic=b", bearer(tok), 403, "insufficient_scope"},
		{"malformed presentation", http.MethodGet, "match=t", "", http.Header{"Authorization": {"Bearer x"}}, 400, "invalid_request"},
		{"bad matcher", http.MethodGet, "Match=t", "", bearer(tok), 400, "-"},
		{"bad id", http.MethodPost, "", "topic=a&id=%23x", bearer(tok), 400, "-"},
		{"bad topic", http.MethodPost, "", "topic=*", bearer(tok), 400, "-"},
		{"bad retry", http.MethodPost, "", "topic=a&retry=x", bearer(tok), 400, "-"},
	}
	for _, c := range cases {
		resp, body := confDo(t, th, c.method, c.query, c.hdr, c.body)
		confStatus(t, c.name, resp, body, c.want)
		confChallenge(t, c.name, th, resp, c.challenge)
		if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" || strings.TrimSpace(body) == "" {
			t.Errorf("%s: %q reason %q, want a short plain-text reason", c.name, ct, body)
		}
	}
}

// docs/protocol.md#duplicate-ids with retention: the earliest *retained*
// duplicate wins once the first one is evicted.
func TestDuplicateIDResolvesToEarliestRetained(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Store = history.NewMemory(history.Retention{MaxUpdates: 3}, nil) })
	tok := th.accessToken(t, []string{"*"}, []string{"*"})
	for _, p := range [][2]string{{"dup", "1"}, {"x", "2"}, {"dup", "3"}, {"y", "4"}} {
		th.mustPublish(t, tok, url.Values{"topic": {"t"}, "id": {p[0]}, "data": {p[1]}})
	}
	s := confOpen(t, th, http.MethodGet, "match=t&last_event_id=dup", bearer(tok), "")
	if got := s.resp.Header.Get("Mercure-Last-Event-ID"); got != "dup" {
		t.Errorf("Mercure-Last-Event-ID = %q", got)
	}
	if ev := s.events(t, 1); ev[0].Data != "4" {
		t.Errorf("replayed %+v, want the update after the retained dup", ev)
	}
}
