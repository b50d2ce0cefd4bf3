package match

import (
	"errors"
	"strings"
	"testing"
)

// FuzzCompile07 checks that draft-07 selectors never panic, always match
// their own literal string (docs/protocol.md#matching-07), that exact
// selectors match nothing else, and that the cache agrees with direct
// matching.
func FuzzCompile07(f *testing.F) {
	for _, s := range []string{
		"*", "", "https://example.com/books/{id}", "https://example.com/{+path}", "{?q,r}", "{#frag}",
		"{/a,b*}", "{;x,y}", "{&a}", "{.ext}", "{var:3}", "{list*}", "{", "}", "{}", "{a", "a b{x}",
		"https://example.com/books/1", "/.well-known/mercure/subscriptions/{topic}/{subscriber}",
		"{a,b,c,d,e,f,g,h}", "%7B{x}%7D", "\xff{x}",
	} {
		f.Add(s, "https://example.com/books/1")
	}
	cache := NewCache(256 * (cacheEntryOverhead + 100))
	f.Fuzz(func(t *testing.T, sel, topic string) {
		s := Compile07(sel)
		if s.String() != sel {
			t.Fatalf("String() = %q, want %q", s.String(), sel)
		}
		if !s.Match(sel) {
			t.Fatalf("Compile07(%q) (kind %v) does not match itself", sel, s.Kind())
		}
		got := s.Match(topic)
		switch s.Kind() {
		case KindAny:
			if !got {
				t.Fatalf("* did not match %q", topic)
			}
		case KindExact:
			if got != (topic == sel) {
				t.Fatalf("exact %q Match(%q) = %v", sel, topic, got)
			}
		case KindTemplate:
			if strings.IndexByte(sel, '{') < 0 {
				t.Fatalf("template kind without an expression: %q", sel)
			}
		default:
			t.Fatalf("unexpected kind %v", s.Kind())
		}
		if c := cache.Match(s, topic); c != got {
			t.Fatalf("Cache.Match(%q, %q) = %v, Match = %v", sel, topic, c, got)
		}
	})
}

// FuzzCompile08 checks that draft-08 matchers never panic, that "*" matches
// anything whatever the type (docs/protocol.md#matching-08), that exact
// matchers are a byte comparison, and that URL pattern matching agrees with
// the library called with the base URL always supplied.
func FuzzCompile08(f *testing.F) {
	for _, p := range []string{
		"*", "", "/books/:id", "https://example.com/books/:id", "https://example.com/books/*",
		"/books/:id(\\d+)", "/books/(.*)", "{/:x}?", "/:a/:a", "urn\\:books\\:*", "urn:*", "file:///*",
		"*://*:*/*", "https://*.example.com/*", "/books/([a-)", "/(", "\\", "http://[::1]:8080/*",
	} {
		for _, typ := range []string{"urlpattern", "exact", ""} {
			f.Add(typ, p, "https://example.com/books/1")
		}
	}
	f.Add("urlpattern", "/books/:id", "https:books/1")
	f.Add("Exact", "*", "x")
	base := mustParse(f, hubURL)
	cache := NewCache(256 * (cacheEntryOverhead + 100))
	f.Fuzz(func(t *testing.T, matchType, pattern, topic string) {
		s, err := Compile08(matchType, pattern, base)
		validType := matchType == "" || matchType == TypeExact || matchType == TypeURLPattern
		if pattern == "*" && validType {
			if err != nil {
				t.Fatalf("Compile08(%q, \"*\"): %v", matchType, err)
			}
			if !s.Match(topic) {
				t.Fatalf("* did not match %q", topic)
			}
		}
		if err != nil {
			if s != nil {
				t.Fatalf("selector and error both returned")
			}
			if !errors.Is(err, ErrUnknownMatchType) && !errors.Is(err, ErrInvalidPattern) && !errors.Is(err, ErrTooLong) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if !validType {
			t.Fatalf("match type %q accepted", matchType)
		}
		got := s.Match(topic)
		switch s.Kind() {
		case KindAny:
		case KindExact:
			if got != (topic == pattern) {
				t.Fatalf("exact %q Match(%q) = %v", pattern, topic, got)
			}
		case KindURLPattern:
			want := false
			if topic != "" && topic[0] != ' ' && topic[len(topic)-1] != ' ' && !HasControlOrFormat(topic) {
				want = libraryPattern(t, s).Test(topic, s.base)
			}
			if got != want {
				t.Fatalf("pattern %q Match(%q) = %v, library with base = %v", pattern, topic, got, want)
			}
		default:
			t.Fatalf("unexpected kind %v", s.Kind())
		}
		if c := cache.Match(s, topic); c != got {
			t.Fatalf("Cache.Match(%q, %q) = %v, Match = %v", pattern, topic, c, got)
		}
	})
}
