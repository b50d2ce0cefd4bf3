package hub

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/mercurectl/mercurectl/internal/match"
	"github.com/mercurectl/mercurectl/internal/token"
)

// oracleTopics are the topics updates are published to: absolute and
// relative URLs, URNs, and strings that look like selectors.
var oracleTopics = []string{
	"https://example.com/books/1", "https://example.com/books/2", "https://example.com/books/12",
	"https://example.com/books/1/chapters/3", "https://example.com/authors/1", "https://example.com/books/",
	"https://www.example.com/books/1", "https://example.org/books/1", "urn:books:1", "urn:authors:2",
	"/books/1", "/books/2/chapters/1", "books/1", "https://example.com/books/{id}", "https://EXAMPLE.com/books/2",
	"https://example.com/books?page=2",
}

var oracleSelectors07 = []string{
	"*", "https://example.com/books/1", "https://example.com/books/12", "urn:books:1", "/books/1",
	"https://example.com/books/{id}", "https://example.com/books/{id}/chapters/{c}", "https://example.com/{+path}",
	"https://example.com/authors/{id}", "urn:books:{id}", "{+any}", "https://example.com/books/1{/x}",
	"https://example.com/books{?page}", "/books/{id}", "https://example.com/books/{id", "https://{host}/books/1",
}

var oracleSelectors08 = []string{
	"*", "exact https://example.com/books/1", "exact urn:books:1", "exact /books/1", "exact https://example.com/books/{id}",
	"https://example.com/books/:id", "https://example.com/books/*", "/books/:id", "/books/*", `urn\:books\:*`, "urn:*",
	"https://*.example.com/*", "https://example.com/books/(\\d+)", "https://example.com/books/:id/chapters/:c",
	"https://example.com/books/:id?", "*://*/books/:id", "https://example.com/authors/:id",
}

// oracleSelector is a draft-08 selector of the pools above: "exact X" is an
// exact matcher, anything else a URL pattern.
func oracleSelector(s string) (typ, value string) {
	if v, ok := strings.CutPrefix(s, "exact "); ok {
		return match.TypeExact, v
	}
	return match.TypeURLPattern, s
}

type oracleSub struct {
	query  string
	sels   []*match.Selector
	grants []*match.Selector // nil: anonymous
	tok    string
	st     *stream
}

// TestDeliveryMatchesBruteForceOracle subscribes many clients with random
// mixes of exact topics, templates or URL patterns and "*", with random
// grants or none, publishes random public and private updates with
// alternate topics, and checks that each subscriber gets exactly the updates
// that trying every one of its selectors and grants says it should, in
// publication order.
func TestDeliveryMatchesBruteForceOracle(t *testing.T) {
	t.Parallel()
	for _, gen := range []generation{gen07, gen08} {
		t.Run(fmt.Sprint(gen), func(t *testing.T) {
			t.Parallel()
			th := newTestHub(t, func(c *Config) { c.Anonymous = true })
			base, err := url.Parse(th.url)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(15, uint64(gen)))
			pool := oracleSelectors07
			if gen == gen08 {
				pool = oracleSelectors08
			}
			compile := func(s string) *match.Selector {
				if gen == gen07 {
					return match.Compile07(s)
				}
				typ, v := oracleSelector(s)
				sel, err := match.Compile08(typ, v, base)
				if err != nil {
					t.Fatalf("compile %q: %v", s, err)
				}
				return sel
			}
			const sentinel = "https://sentinel.test/end"
			subs := make([]*oracleSub, 48)
			for i := range subs {
				sub := &oracleSub{}
				q := url.Values{}
				for range 1 + rng.IntN(4) {
					s := pool[rng.IntN(len(pool))]
					sub.sels = append(sub.sels, compile(s))
					if gen == gen07 {
						q.Add("topic", s)
					} else if typ, v := oracleSelector(s); typ == match.TypeExact {
						q.Add("match", v)
					} else {
						q.Add("match_urlpattern", v)
					}
				}
				if gen == gen07 {
					q.Add("topic", sentinel)
				} else {
					q.Add("match", sentinel)
				}
				sub.query = q.Encode()
				if rng.IntN(4) > 0 { // a quarter subscribe anonymously
					var grants []string
					types := map[string]string{}
					for range rng.IntN(3) {
						s := pool[rng.IntN(len(pool))]
						sub.grants = append(sub.grants, compile(s))
						typ, v := oracleSelector(s)
						if gen == gen07 {
							v = s
						}
						grants = append(grants, v)
						types[v] = typ
					}
					sub.grants = append(sub.grants, compile("https://unrelated.test/{x}"))
					grants = append(grants, "https://unrelated.test/{x}")
					if gen == gen07 {
						sub.tok = legacyToken(t, nil, grants)
					} else {
						types["https://unrelated.test/{x}"] = match.TypeExact
						sub.tok = mint(t, token.MintOptions{Format: token.FormatAccessToken, Subscribe: grants, MatchTypes: types, Audience: th.url})
					}
				}
				var hdr http.Header
				if sub.tok != "" {
					hdr = bearer(sub.tok)
				}
				st, resp := th.subscribe(t, sub.query, hdr)
				if st == nil {
					t.Fatalf("subscribe %s: %s", sub.query, resp.Status)
				}
				sub.st = st
				subs[i] = sub
			}

			pubTok := legacyToken(t, []string{"*"}, nil)
			if gen == gen08 {
				pubTok = th.accessToken(t, []string{"*"}, nil)
			}
			type update struct {
				id      string
				topics  []string
				private bool
			}
			var updates []update
			for range 120 {
				u := update{private: rng.IntN(3) == 0}
				for range 1 + rng.IntN(3) {
					u.topics = append(u.topics, oracleTopics[rng.IntN(len(oracleTopics))])
				}
				form := url.Values{"topic": u.topics, "data": {"x"}}
				if u.private {
					form.Set("private", "on")
				}
				u.id = th.mustPublish(t, pubTok, form)
				updates = append(updates, u)
			}
			th.mustPublish(t, pubTok, url.Values{"topic": {sentinel}, "data": {"end"}})

			anyMatch := func(sels []*match.Selector, topics []string) bool {
				for _, s := range sels {
					for _, topic := range topics {
						if s.Match(topic) {
							return true
						}
					}
				}
				return false
			}
			for i, sub := range subs {
				var want []string
				for _, u := range updates {
					if anyMatch(sub.sels, u.topics) && (!u.private || anyMatch(sub.grants, u.topics)) {
						want = append(want, u.id)
					}
				}
				var got []string
				for {
					ev := sub.st.next(t)
					if ev.Data == "end" {
						break
					}
					got = append(got, ev.ID)
				}
				if !slices.Equal(got, want) {
					t.Errorf("subscriber %d (%s, token %v): got %d updates, want %d\ngot  %q\nwant %q", i, sub.query, sub.tok != "", len(got), len(want), got, want)
				}
			}
		})
	}
}

// TestSelectorsAreReleasedWithTheirSubscribers checks that compiled
// selectors, grant sets, index entries and cached match results all go away
// once the subscriptions that used them are closed.
func TestSelectorsAreReleasedWithTheirSubscribers(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Anonymous = true })
	tok := legacyToken(t, []string{"*"}, []string{"https://example.com/private/{id}"})
	var streams []*stream
	for i := range 30 {
		q := url.Values{"topic": {
			"https://example.com/shared/{id}",                 // one selector for all
			fmt.Sprintf("https://example.com/own/%d/{id}", i), // one each
			fmt.Sprintf("https://example.com/exact/%d", i),
			"*",
		}}
		var hdr http.Header
		if i%2 == 0 {
			hdr = bearer(tok)
		}
		st, resp := th.subscribe(t, q.Encode(), hdr)
		if st == nil {
			t.Fatalf("subscribe: %s", resp.Status)
		}
		streams = append(streams, st)
	}
	th.mustPublish(t, tok, url.Values{"topic": {"https://example.com/own/3/x", "https://example.com/shared/1"}, "data": {"x"}})
	for _, st := range streams {
		st.next(t)
	}
	reg := th.h.selectors
	// 1 shared + 30 own templates + 30 exact + "*" + the grant template.
	if n := reg.len(); n != 63 {
		t.Errorf("%d selectors registered, want 63", n)
	}
	if n := indexed(th.h); n != 62 {
		t.Errorf("%d selectors indexed, want 62", n)
	}
	if th.h.cache.Len() == 0 {
		t.Errorf("no match result cached")
	}
	for _, st := range streams {
		st.cancel()
	}
	eventually(t, "subscribers gone", func() bool { return th.h.Subscribers() == 0 })
	eventually(t, "selectors released", func() bool { return reg.len() == 0 })
	th.h.cache.Purge()
	if n := indexed(th.h); n != 0 {
		t.Errorf("%d selectors still indexed", n)
	}
	if n := th.h.cache.Len(); n != 0 {
		t.Errorf("%d match results still cached", n)
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if len(reg.grants) != 0 {
		t.Errorf("%d grant sets still held", len(reg.grants))
	}
}

// TestSubscriptionBudget checks the per-request caps: each gets 400 with a
// reason that names the limit, and a request just within them is accepted.
func TestSubscriptionBudget(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Anonymous = true })
	repeat := func(name string, n int, f func(i int) string) string {
		q := url.Values{}
		for i := range n {
			q.Add(name, f(i))
		}
		return q.Encode()
	}
	template := func(i int) string { return fmt.Sprintf("https://example.com/%d/{id}", i) }
	pattern := func(i int) string { return fmt.Sprintf("https://example.com/%d/:id", i) }
	expressions := func(n int) string { return "https://example.com" + strings.Repeat("/{x}", n) }
	general := func(i, n int) string {
		p := fmt.Sprintf("/g%d/(\\d+)/", i)
		return p + strings.Repeat("a", n-len(p))
	}
	tests := []struct {
		name, query string
		status      int
		reason      string
	}{
		{"100 templates", repeat("topic", 100, template), http.StatusOK, ""},
		{"101 templates", repeat("topic", 101, template), http.StatusBadRequest, "at most 100"},
		{"1000 exact topics do not count as templates", repeat("topic", 1000, func(i int) string { return fmt.Sprint("urn:x:", i) }), http.StatusOK, ""},
		{"100 URL patterns", repeat("match_urlpattern", 100, pattern), http.StatusOK, ""},
		{"32 expressions", "topic=" + url.QueryEscape(expressions(32)), http.StatusOK, ""},
		{"33 expressions", "topic=" + url.QueryEscape(expressions(33)), http.StatusBadRequest, "at most 32"},
		{"an invalid template is exact and not capped", "topic=" + url.QueryEscape(expressions(40)+"{"), http.StatusOK, ""},
		{"64 KiB of selectors", repeat("topic", 16, func(i int) string { return fmt.Sprintf("%04d", i) + strings.Repeat("a", 4092) }), http.StatusOK, ""},
		{"one byte more", repeat("topic", 17, func(i int) string {
			if i == 16 {
				return "b"
			}
			return fmt.Sprintf("%04d", i) + strings.Repeat("a", 4092)
		}), http.StatusBadRequest, "at most 65536 bytes"},
		{"2 KiB of general URL patterns", repeat("match_urlpattern", 2, func(i int) string { return general(i, 1024) }), http.StatusOK, ""},
		{"more general URL patterns", repeat("match_urlpattern", 3, func(i int) string { return general(i, 1024) }), http.StatusBadRequest, "at most 2048 bytes"},
		{"16 simple URL patterns of 4000 bytes", repeat("match_urlpattern", 16, func(i int) string {
			return fmt.Sprintf("https://example.com/%02d/", i) + strings.Repeat("a", 3970) + "/:id"
		}), http.StatusOK, ""},
		{"draft-08 bytes too", repeat("match", 17, func(i int) string { return fmt.Sprintf("%04d", i) + strings.Repeat("a", 4000) }), http.StatusBadRequest, "at most 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodHead, th.url+"?"+tt.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.status != http.StatusOK {
				req.Method = http.MethodGet
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.reason) {
				t.Errorf("%d %q, want %d with %q", resp.StatusCode, body, tt.status, tt.reason)
			}
		})
	}
}

// indexed returns the number of selectors in h's index, read under the
// broadcaster's lock as streams may be ending.
func indexed(h *Hub) int {
	h.bc.mu.RLock()
	defer h.bc.mu.RUnlock()
	return h.bc.idx.Len()
}
