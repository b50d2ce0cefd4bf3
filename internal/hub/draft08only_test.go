package hub

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// With Draft08Only, draft-07 requests and tokens are refused
// (docs/protocol.md#draft-08-only): `topic=` gets 400 with a hint to use
// `match`, legacy tokens are invalid, and the draft-07 token sources are not
// read.
func TestDraft08Only(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Draft08Only = true; c.Anonymous = true })
	legacy := legacyToken(t, []string{"*"}, []string{"*"})
	access := th.accessToken(t, []string{"*"}, []string{"*"})

	// topic= is refused with a hint, even anonymously.
	if s, resp := th.subscribe(t, "topic=a", nil); s != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("topic= subscription: got %v, want 400", resp.StatusCode)
	}
	// A legacy token is invalid, on subscribe and publish alike.
	if s, resp := th.subscribe(t, "match=a", bearer(legacy)); s != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("legacy token on subscribe: got %v, want 401", resp.StatusCode)
	}
	resp, body := th.publish(t, legacy, url.Values{"topic": {"a"}, "data": {"x"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("legacy token on publish: %d %q %q", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
	}
	// The draft-07 query parameter is not a token source: anonymous, so a
	// private update stays out of reach.
	anon, _ := th.subscribe(t, "match=a&authorization="+url.QueryEscape(access), nil)
	if anon == nil {
		t.Fatal("anonymous draft-08 subscription refused")
	}
	// Draft-08 keeps working.
	s, resp := th.subscribe(t, "match=a", bearer(access))
	if s == nil {
		t.Fatalf("access token on subscribe: %d", resp.StatusCode)
	}
	th.mustPublish(t, access, url.Values{"topic": {"a"}, "data": {"secret"}, "private": {"on"}})
	th.mustPublish(t, access, url.Values{"topic": {"a"}, "data": {"public"}})
	if ev := s.next(t); ev.Data != "secret" {
		t.Fatalf("authorised subscriber got %+v", ev)
	}
	if ev := anon.next(t); ev.Data != "public" {
		t.Fatalf("query-parameter subscriber got %+v, want only the public update", ev)
	}
}
