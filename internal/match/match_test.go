package match

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

const hubURL = "https://example.com/.well-known/mercure"

func mustParse(tb testing.TB, s string) *url.URL {
	tb.Helper()
	u, err := url.Parse(s)
	if err != nil {
		tb.Fatalf("parse %q: %v", s, err)
	}
	return u
}

func mustCompile08(tb testing.TB, matchType, pattern string, base *url.URL) *Selector {
	tb.Helper()
	s, err := Compile08(matchType, pattern, base)
	if err != nil {
		tb.Fatalf("Compile08(%q, %q): %v", matchType, pattern, err)
	}
	return s
}

// manyVarsTemplate is a valid RFC 6570 template whose regexp exceeds RE2's
// repeat limit ({0,1001}).
var manyVarsTemplate = func() string {
	names := make([]string, 1002)
	for i := range names {
		names[i] = "v"
	}
	return "https://example.com/{" + strings.Join(names, ",") + "}"
}()

func TestCompile07Kind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, sel string
		kind      Kind
		matchType string
	}{
		{"matching-07: star", "*", KindAny, TypeAny},
		{"matching-07: plain IRI", "https://example.com/books/1", KindExact, TypeExact},
		{"matching-07: template", "https://example.com/books/{id}", KindTemplate, TypeTemplate},
		{"matching-07: reserved expansion", "https://example.com/{+path}", KindTemplate, TypeTemplate},
		{"matching-07: invalid template (unclosed)", "https://example.com/books/{id", KindExact, TypeExact},
		{"matching-07: invalid template (empty expression)", "https://example.com/{}", KindExact, TypeExact},
		{"matching-07: invalid template (space)", "a b/{id}", KindExact, TypeExact},
		{"star inside a string is not any", "https://example.com/*", KindExact, TypeExact},
		{"empty", "", KindExact, TypeExact},
		{"template beyond RE2 limits degrades to exact", manyVarsTemplate, KindExact, TypeExact},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := Compile07(tt.sel)
			if s.Kind() != tt.kind {
				t.Errorf("Kind() = %v, want %v", s.Kind(), tt.kind)
			}
			if s.MatchType() != tt.matchType {
				t.Errorf("MatchType() = %q, want %q", s.MatchType(), tt.matchType)
			}
			if s.String() != tt.sel {
				t.Errorf("String() = %q, want %q", s.String(), tt.sel)
			}
			lit, ok := s.Exact()
			if ok != (tt.kind == KindExact) || (ok && lit != tt.sel) {
				t.Errorf("Exact() = %q, %v", lit, ok)
			}
			if !s.Match(tt.sel) {
				t.Errorf("matching-07: a selector must match its own literal string")
			}
		})
	}
}

func TestCompile07Match(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, sel, topic string
		want             bool
	}{
		{"matching-07: star matches an IRI", "*", "https://example.com/books/1", true},
		{"matching-07: star matches anything", "*", "not a URL at all", true},
		{"matching-07: star matches empty", "*", "", true},
		{"matching-07: identical strings", "https://example.com/books/1", "https://example.com/books/1", true},
		{"matching-07: exact is not a prefix", "https://example.com/books/1", "https://example.com/books/1/x", false},
		{"matching-07: exact is case-sensitive", "https://example.com/books/1", "https://EXAMPLE.com/books/1", false},
		{"matching-07: template matches itself", "https://example.com/books/{id}", "https://example.com/books/{id}", true},
		{"matching-07: template matches an expansion", "https://example.com/books/{id}", "https://example.com/books/1", true},
		{"matching-07: template does not match an extra segment", "https://example.com/books/{id}", "https://example.com/books/1/x", false},
		{"matching-07: template does not match another prefix", "https://example.com/books/{id}", "https://example.com/authors/1", false},
		{"matching-07: template matches an empty value", "https://example.com/books/{id}", "https://example.com/books/", true},
		{"matching-07: template requires its literal", "https://example.com/books/{id}", "https://example.com/books", false},
		{"matching-07: template matches percent-encoding", "https://example.com/books/{id}", "https://example.com/books/a%20b", true},
		{"matching-07: template anchors at the end", "https://example.com/books/{id}", "https://example.com/books/1\n", false},
		{"matching-07: reserved expansion spans segments", "https://example.com/{+path}", "https://example.com/a/b/c", true},
		{"matching-07: query expansion", "https://example.com/books{?page}", "https://example.com/books?page=2", true},
		{"matching-07: path expansion", "https://example.com{/a,b}", "https://example.com/x/y", true},
		{"matching-07: invalid template is exact", "https://example.com/books/{id", "https://example.com/books/1", false},
		{"matching-07: invalid template matches itself", "https://example.com/books/{id", "https://example.com/books/{id", true},
		{"subscription-topics: draft-07 subscription events", "/.well-known/mercure/subscriptions/{topic}/{subscriber}",
			"/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2Fbooks%2F1/urn%3Auuid%3A5e94c686-2c0b-4f9b-958c-92ccc3bbb4eb", true},
		{"subscription-topics: draft-07 subscription events need both variables", "/.well-known/mercure/subscriptions/{topic}/{subscriber}",
			"/.well-known/mercure/subscriptions/https://example.com/books/1/urn:uuid:x", false},
		{"degraded template matches only itself", manyVarsTemplate, manyVarsTemplate, true},
		{"degraded template matches no expansion", manyVarsTemplate, "https://example.com/a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Compile07(tt.sel).Match(tt.topic); got != tt.want {
				t.Errorf("Compile07(%q).Match(%q) = %v, want %v", tt.sel, tt.topic, got, tt.want)
			}
		})
	}
}

func TestCompile08Match(t *testing.T) {
	t.Parallel()
	base := mustParse(t, hubURL)
	tests := []struct {
		name, matchType, pattern, topic string
		want                            bool
	}{
		{"matching-08: star, exact type", "exact", "*", "https://example.com/books/1", true},
		{"matching-08: star, urlpattern type", "urlpattern", "*", "anything at all", true},
		{"matching-08: star, default type", "", "*", "", true},
		{"matching-08: exact, identical", "exact", "https://example.com/books/1", "https://example.com/books/1", true},
		{"matching-08: exact, default type", "", "https://example.com/books/1", "https://example.com/books/1", true},
		{"matching-08: exact, no normalisation of case", "exact", "https://example.com/books/1", "HTTPS://example.com/books/1", false},
		{"matching-08: exact, no percent-decoding", "exact", "https://example.com/books/1", "https://example.com/books/%31", false},
		{"matching-08: exact, no dot-segment removal", "exact", "https://example.com/books/1", "https://example.com/x/../books/1", false},
		{"matching-08: exact, trailing slash differs", "exact", "https://example.com/books/1", "https://example.com/books/1/", false},
		{"matching-08: exact, no relative resolution", "exact", "/books/1", "https://example.com/books/1", false},
		{"matching-08: exact, relative matches itself", "exact", "/books/1", "/books/1", true},
		{"matching-08: exact, a template is just a string", "exact", "https://example.com/books/{id}", "https://example.com/books/1", false},
		{"matching-08: urlpattern, named group", "urlpattern", "https://example.com/books/:id", "https://example.com/books/8", true},
		{"matching-08: urlpattern, one segment only", "urlpattern", "https://example.com/books/:id", "https://example.com/books/8/x", false},
		{"matching-08: urlpattern, other host", "urlpattern", "https://example.com/books/:id", "https://example.org/books/8", false},
		{"matching-08: urlpattern, other scheme", "urlpattern", "https://example.com/books/:id", "http://example.com/books/8", false},
		{"matching-08: urlpattern, no ignoreCase", "urlpattern", "https://example.com/Books/:id", "https://example.com/books/8", false},
		{"matching-08: urlpattern, host is canonicalised by URL parsing", "urlpattern", "https://example.com/books/:id", "https://EXAMPLE.com/books/8", true},
		{"matching-08: urlpattern, wildcard", "urlpattern", "https://example.com/books/*", "https://example.com/books/8/chapters/2", true},
		{"matching-08: urlpattern, relative pattern, absolute topic", "urlpattern", "/books/:id", "https://example.com/books/1", true},
		{"matching-08: urlpattern, relative pattern, relative topic", "urlpattern", "/books/:id", "/books/1", true},
		{"matching-08: urlpattern, relative pattern takes the hub host", "urlpattern", "/books/:id", "https://example.org/books/1", false},
		{"matching-08: urlpattern, absolute pattern, relative topic", "urlpattern", "https://example.com/books/:id", "/books/1", true},
		{"matching-08: urlpattern, path-relative topic resolves against the hub path", "urlpattern", "/.well-known/books/:id", "books/1", true},
		{"matching-08: urlpattern, same-scheme relative topic", "urlpattern", "https://example.com/.well-known/books/:id", "https:books/1", true},
		{"matching-08: urlpattern, scheme-relative topic", "urlpattern", "https://example.org/books/:id", "//example.org/books/1", true},
		{"matching-08: urlpattern, other-scheme absolute topic", "urlpattern", "http://example.com/books/:id", "http:/books/1", false},
		{"matching-08: unparsable topic never matches", "urlpattern", "https://example.com/*", "https://[::1/x", false},
		{"matching-08: unparsable host never matches", "urlpattern", "https://*/books/:id", "https://exa mple.com/books/1", false},
		{"matching-08: topic with a control character never matches", "urlpattern", "https://example.com/books/:id", "https://example.com/bo\noks/1", false},
		{"matching-08: topic with a format character never matches", "urlpattern", "https://example.com/books/:id", "https://example.com/books/1\u200b", false},
		{"matching-08: topic with surrounding spaces never matches", "urlpattern", "https://example.com/books/:id", " https://example.com/books/1", false},
		{"matching-08: empty topic never matches a pattern", "urlpattern", "https://example.com/*", "", false},
		{"matching-08: urn pattern, escaped colons", "urlpattern", `urn\:books\:*`, "urn:books:1", true},
		{"matching-08: urn pattern, other namespace", "urlpattern", `urn\:books\:*`, "urn:authors:1", false},
		{"matching-08: urn pattern, protocol only", "urlpattern", "urn:*", "urn:books:1", true},
		{"matching-08: urn pattern, not an https topic", "urlpattern", "urn:*", "https://example.com/urn:books:1", false},
		{"matching-08: non-special scheme pattern", "urlpattern", "foo://example.com/books/:id", "foo://example.com/books/1", true},
		{"alternate-topics: urlpattern with an alternate topic", "urlpattern", "https://example.com/b/:id", "https://example.com/b/8", true},
		{"subscription-topics: draft-08 subscription events", "urlpattern", "/.well-known/mercure/subscriptions/:type/:match/:subscriber",
			"/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fexample.com%2F%3Aselector/urn%3Auuid%3A5e94c686-2c0b-4f9b-958c-92ccc3bbb4eb", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustCompile08(t, tt.matchType, tt.pattern, base)
			if got := s.Match(tt.topic); got != tt.want {
				t.Errorf("Compile08(%q, %q).Match(%q) = %v, want %v", tt.matchType, tt.pattern, tt.topic, got, tt.want)
			}
		})
	}
}

func TestCompile08Kind(t *testing.T) {
	t.Parallel()
	base := mustParse(t, hubURL)
	tests := []struct {
		matchType, pattern string
		kind               Kind
		wantType           string
	}{
		{"", "https://example.com/a", KindExact, TypeExact},
		{"exact", "https://example.com/a", KindExact, TypeExact},
		{"exact", "*", KindAny, TypeExact},
		{"urlpattern", "*", KindAny, TypeURLPattern},
		{"urlpattern", "/books/:id", KindURLPattern, TypeURLPattern},
	}
	for _, tt := range tests {
		s := mustCompile08(t, tt.matchType, tt.pattern, base)
		if s.Kind() != tt.kind || s.MatchType() != tt.wantType || s.String() != tt.pattern {
			t.Errorf("Compile08(%q, %q): Kind %v MatchType %q String %q; want %v %q %q",
				tt.matchType, tt.pattern, s.Kind(), s.MatchType(), s.String(), tt.kind, tt.wantType, tt.pattern)
		}
		lit, ok := s.Exact()
		if ok != (tt.kind == KindExact) || (ok && lit != tt.pattern) {
			t.Errorf("Compile08(%q, %q).Exact() = %q, %v", tt.matchType, tt.pattern, lit, ok)
		}
	}
}

func TestCompile08Errors(t *testing.T) {
	t.Parallel()
	base := mustParse(t, hubURL)
	tests := []struct {
		name, matchType, pattern string
		base                     *url.URL
		want                     error
	}{
		{"authorization-details: match type is case-sensitive", "Exact", "https://example.com/a", base, ErrUnknownMatchType},
		{"authorization-details: unknown match type", "regexp", "https://example.com/a", base, ErrUnknownMatchType},
		{"authorization-details: template is not a draft-08 type", "template", "https://example.com/{id}", base, ErrUnknownMatchType},
		{"authorization-details: unknown type even for star", "URLPattern", "*", base, ErrUnknownMatchType},
		{"subscribe-match: 4097-byte exact pattern", "exact", strings.Repeat("a", 4097), base, ErrTooLong},
		{"subscribe-match: 4097-byte urlpattern", "urlpattern", "/" + strings.Repeat("a", 4096), base, ErrTooLong},
		{"authorization-details: empty pattern", "exact", "", base, ErrInvalidPattern},
		{"authorization-details: empty urlpattern", "urlpattern", "", base, ErrInvalidPattern},
		{"subscribe-match: control character", "exact", "a\x01b", base, ErrInvalidPattern},
		{"subscribe-match: DEL", "urlpattern", "/a\x7f", base, ErrInvalidPattern},
		{"subscribe-match: C1 control", "exact", "a\u0085b", base, ErrInvalidPattern},
		{"subscribe-match: format character", "exact", "a\u200bb", base, ErrInvalidPattern},
		{"subscribe-match: invalid UTF-8", "exact", "a\xffb", base, ErrInvalidPattern},
		{"subscribe-match: invalid URL pattern (unclosed group)", "urlpattern", "/books/(", base, ErrInvalidPattern},
		{"subscribe-match: invalid URL pattern (bad regexp)", "urlpattern", "/books/([a-)", base, ErrInvalidPattern},
		{"subscribe-match: invalid URL pattern (duplicate name)", "urlpattern", "/:id/:id", base, ErrInvalidPattern},
		{"matching-08: relative pattern without a base", "urlpattern", "/books/:id", nil, ErrInvalidPattern},
		{"matching-08: too many groups", "urlpattern", strings.Repeat("/:a", 33), base, ErrInvalidPattern},
		{"matching-08: too many wildcards", "urlpattern", strings.Repeat("/*", 33), base, ErrInvalidPattern},
		{"matching-08: too many regexp groups", "urlpattern", strings.Repeat("/(a)", 33), base, ErrInvalidPattern},
		{"matching-08: counted repetition inflates the regexp", "urlpattern", "/(a{1000})", base, ErrInvalidPattern},
		{"matching-08: regexps too large together", "urlpattern", strings.Repeat("/(a{100})", 6), base, ErrInvalidPattern},
		{"relative base", "urlpattern", "/books/:id", mustParse(t, "/.well-known/mercure"), ErrInvalidPattern},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Compile08(tt.matchType, tt.pattern, tt.base)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Compile08(%q, %.40q) error = %v, want %v", tt.matchType, tt.pattern, err, tt.want)
			}
			if s != nil {
				t.Errorf("Compile08 returned a selector with an error")
			}
		})
	}
}

func TestCompile08Limits(t *testing.T) {
	t.Parallel()
	base := mustParse(t, hubURL)
	// docs/protocol.md#subscribe-match: the cap is 4096 bytes inclusive.
	exact := strings.Repeat("a", MaxPatternLength)
	if s := mustCompile08(t, "exact", exact, base); !s.Match(exact) {
		t.Errorf("4096-byte exact pattern does not match itself")
	}
	long := "/" + strings.Repeat("a", MaxPatternLength-1)
	if s := mustCompile08(t, "urlpattern", long, base); !s.Match(long) {
		t.Errorf("4096-byte URL pattern does not match its own path")
	}
	// docs/protocol.md#matching-08: complexity caps are inclusive and count only
	// real groups.
	var maxGroups strings.Builder // group names must be unique: :a, :ab, :abb...
	for j := range MaxPatternGroups {
		maxGroups.WriteString("/:a" + strings.Repeat("b", j))
	}
	within := []string{
		maxGroups.String(),
		"/(\\d{4})/(\\d{2})/:slug",
		"https://example.com:8080/books/:id",              // ":" before a port or "//" is no group
		"/books/\\*/\\(x\\)" + strings.Repeat("/\\*", 40), // escaped characters are literals
		"/(a{100})/(a{100})/(a{100})/(a{100})/(a{100})",
	}
	for _, p := range within {
		if _, err := Compile08("urlpattern", p, base); err != nil {
			t.Errorf("Compile08(urlpattern, %.60q): %v", p, err)
		}
	}
	// docs/protocol.md#matching-07: draft-07 templates longer than the cap are
	// exact strings.
	longTemplate := "https://example.com/{id}/" + strings.Repeat("a", MaxPatternLength)
	if s := Compile07(longTemplate); s.Kind() != KindExact || !s.Match(longTemplate) {
		t.Errorf("long template: kind %v", s.Kind())
	}
	if s := Compile07(longTemplate[:MaxPatternLength]); s.Kind() != KindTemplate {
		t.Errorf("4096-byte template: kind %v, want template", s.Kind())
	}

	// docs/protocol.md#matching-08: star needs no base, whatever the type.
	for _, typ := range []string{"", "exact", "urlpattern"} {
		if s := mustCompile08(t, typ, "*", nil); !s.Match("urn:x") {
			t.Errorf("Compile08(%q, \"*\", nil) does not match", typ)
		}
	}
	// Absolute patterns need no base; relative topics then never match.
	s := mustCompile08(t, "urlpattern", "https://example.com/books/:id", nil)
	if !s.Match("https://example.com/books/1") || s.Match("/books/1") {
		t.Errorf("absolute pattern without base: wrong matches")
	}
}

// TestURLPatternBaseShortcut checks that skipping the base URL for absolute
// topics (Selector.baseFor) never changes a result: the WHATWG parser must
// give the same answer as when the base is always supplied.
func TestURLPatternBaseShortcut(t *testing.T) {
	t.Parallel()
	bases := []string{hubURL, "http://localhost:3000/.well-known/mercure", "https://example.com/hub/"}
	patterns := []string{"/books/:id", "https://example.com/*", "http://*/*", "/.well-known/*", "*://*/books/:id", "file:///*", "ws://*"}
	topics := []string{
		"https://example.com/books/1", "https:books/1", "https:/books/1", "https://books/1", "HTTPS:books/1",
		"http:books/1", "http:/books/1", "http://example.com/books/1", "https:\\\\example.com\\books\\1",
		"file:///books/1", "file:books/1", "ws:books/1", "wss:/x", "ftp:x", "urn:books:1", "mailto:a@b",
		"foo:/books/1", "foo://example.com/books/1", "/books/1", "books/1", "?q", "#f", "//example.com/books/1",
		"1https:x", "+x:y", "a+b-c.d:x", ".well-known/x",
	}
	for _, b := range bases {
		base := mustParse(t, b)
		for _, p := range patterns {
			s := mustCompile08(t, "urlpattern", p, base)
			for _, topic := range topics {
				want := libraryPattern(t, s).Test(topic, s.base)
				if got := s.Match(topic); got != want {
					t.Errorf("base %q pattern %q topic %q: Match = %v, Test with base = %v", b, p, topic, got, want)
				}
			}
		}
	}
}

func TestSelectorsAreConcurrencySafe(t *testing.T) {
	t.Parallel()
	base := mustParse(t, hubURL)
	sels := []*Selector{
		Compile07("https://example.com/books/{id}"),
		mustCompile08(t, "urlpattern", "/books/:id", base),
	}
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				for _, s := range sels {
					topic := "https://example.com/books/" + string(rune('0'+(g+i)%10))
					if !s.Match(topic) {
						t.Errorf("%s did not match %s", s, topic)
						return
					}
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
}

func TestKindString(t *testing.T) {
	t.Parallel()
	for k, want := range map[Kind]string{KindAny: "any", KindExact: "exact", KindTemplate: "template", KindURLPattern: "urlpattern", 0: "Kind(0)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}
