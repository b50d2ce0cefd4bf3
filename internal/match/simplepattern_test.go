package match

import (
	"strings"
	"testing"

	"github.com/dunglas/go-urlpattern"
)

// libraryPattern returns the URL Pattern library's compiled form of a URL
// pattern selector, also when Compile08 gave it the simple form.
func libraryPattern(tb testing.TB, s *Selector) *urlpattern.URLPattern {
	tb.Helper()
	if s.pattern != nil {
		return s.pattern
	}
	p, err := compileURLPattern(s.raw, s.base)
	if err != nil {
		tb.Fatalf("pattern %q compiles in the simple form but the library refuses it: %v", s.raw, err)
	}
	return p
}

var simplePatternBases = []string{hubURL, "http://localhost:3000/.well-known/mercure", "http://127.0.0.1:8080/hub/", "https://EXAMPLE.com:443/x"}

// checkSimpleAgrees fails when a pattern that has a simple form matches a
// topic differently from the library, or has a simple form the library
// refuses.
func checkSimpleAgrees(t *testing.T, pattern, topic string) {
	t.Helper()
	for _, b := range simplePatternBases {
		base := mustParse(t, b)
		sp := compileSimplePattern(pattern, base)
		if sp == nil {
			continue
		}
		lib, err := compileURLPattern(pattern, base.String())
		if err != nil {
			t.Fatalf("base %q: %q has a simple form, the library refuses it: %v", b, pattern, err)
		}
		s := &Selector{kind: KindURLPattern, raw: pattern, simple: sp, base: base.String(), baseScheme: strings.ToLower(base.Scheme)}
		want := false
		if urlTopicOK(topic) {
			want = lib.Test(topic, s.base)
		}
		if got := s.Match(topic); got != want {
			t.Fatalf("base %q, pattern %q, topic %q: simple form %v, library %v (%+v)", b, pattern, topic, got, want, sp)
		}
	}
}

var simplePatterns = []string{
	"/books/:id", "https://example.com/books/:id", "https://example.com/books/*", "/books/*", "/*", "/",
	"https://example.com", "https://example.com/", "https://example.com:443/a", "https://example.com:8443/a/:b",
	"http://localhost:3000/books/:id", "/books/:id/chapters/:c", "/books/:id/", "/a/b/c", "/a%41/b", "/a%2e/b",
	"/./a", "/a/../b", "/a//b", "https://Example.com/a", "https://xn--nxasmq6b.com/a", "https://1.2.3.4/a",
	"https://example.123/a", "https://-a.com/x", "ws://example.com/:x", "ftp://example.com/*", "urn:*",
	"/books/:id?", "/books/:id*", "/books/:id+", "/:a/:a", "/:a/:b", "/:1", "/a:b", "/$a", "/a$/:$b", "/:_", "/:a_1",
	"https://example.com:0443/a", "https://example.com:65535/a", "https://example.com:65536/a", "https://example.com:/a",
	"https://user@example.com/a", "https://example.com/a?x", "https://example.com/a#f", "/a'b!c,d;e=f&g~h.i_j-k",
	"/a b", "/é", "/a|b", "/a^b", "/a@b", "//example.com/a", "books/:id",
}

var simpleTopics = []string{
	"https://example.com/books/1", "https://example.com/books/", "https://example.com/books", "https://example.com/books/1/x",
	"/books/1", "books/1", "/books/1/chapters/2", "https://EXAMPLE.com/books/1", "https://example.com:443/books/1",
	"https://example.com:8443/a/b", "http://localhost:3000/books/1", "http://127.0.0.1:8080/books/1", "/", "",
	"https://example.com", "https://example.com/a", "https://example.com/a/", "/a%41/b", "/aA/b", "/a/b/c",
	"/b", "/a/./b", "/a/../b", "/a//b", "https://example.com/a?x=1", "https://example.com/a#f", "urn:books:1",
	"https://user:pw@example.com/books/1", "https://example.com/books/%31", "https://example.com/books/1%2F2",
	"https:books/1", "//example.com/books/1", "https://example.com/books/1 ", "/a'b!c,d;e=f&g~h.i_j-k",
	"ws://example.com/x", "wss://example.com/x", "ftp://example.com/a/b", "https://example.com/books/é",
	"https://example.com\\books\\1", "https://example.com/books/1\t", "/x/y",
}

func TestSimplePatternAgreesWithLibrary(t *testing.T) {
	t.Parallel()
	simple := 0
	for _, p := range simplePatterns {
		if compileSimplePattern(p, mustParse(t, hubURL)) != nil {
			simple++
		}
		for _, topic := range append(simpleTopics, p) {
			checkSimpleAgrees(t, p, topic)
		}
	}
	if simple < 15 {
		t.Errorf("only %d of the test patterns have a simple form", simple)
	}
}

// FuzzSimplePatternAgreesWithLibrary checks that the compact form of simple
// URL patterns matches exactly what the URL Pattern library matches, against
// several base URLs, and is only used for patterns the library accepts.
func FuzzSimplePatternAgreesWithLibrary(f *testing.F) {
	for _, p := range simplePatterns {
		f.Add(p, "https://example.com/books/1")
		f.Add(p, "/books/1/chapters/2")
	}
	f.Fuzz(func(t *testing.T, pattern, topic string) {
		if len(pattern) > 256 || HasControlOrFormat(pattern) || pattern == "" {
			return
		}
		checkSimpleAgrees(t, pattern, topic)
	})
}

func TestSimplePatternsAreCheap(t *testing.T) {
	t.Parallel()
	base := mustParse(t, hubURL)
	long := "https://example.com/" + strings.Repeat("a", 4000) + "/:id"
	s := mustCompile08(t, "urlpattern", long, base)
	if s.simple == nil || s.pattern != nil {
		t.Fatalf("a long literal pattern does not have the simple form")
	}
	if !s.Match("https://example.com/"+strings.Repeat("a", 4000)+"/7") || s.Match("https://example.com/"+strings.Repeat("a", 3999)+"/7") {
		t.Errorf("long simple pattern matches wrongly")
	}
	if GeneralURLPattern(long, base) || !GeneralURLPattern("/books/:id(\\d+)", base) || GeneralURLPattern("*", base) {
		t.Errorf("GeneralURLPattern is wrong")
	}
}
