package match

import (
	"strings"
	"testing"
)

const hubPath = "/.well-known/mercure"

func TestCanonicalTopic(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"https://example.com/books/1", "https://example.com/books/1"},
		{"https://example.com/public/../private/x", "https://example.com/private/x"},
		{"https://example.com/public/%2e%2e/private/x", "https://example.com/private/x"},
		{"https://example.com/public/.%2E/private/x", "https://example.com/private/x"},
		{`https://example.com/public\..\private\x`, "https://example.com/private/x"},
		{"https://example.com/a/./b/.", "https://example.com/a/b/"},
		{"https://example.com/..", "https://example.com/"},
		{"http://h/.well-known/./mercure/subscriptions/exact/x/FORGED", "http://h/.well-known/mercure/subscriptions/exact/x/FORGED"},
		{"http://h/.well-known/%2E/mercure/x", "http://h/.well-known/mercure/x"},
		{`http://h/.well-known\mercure\x`, "http://h/.well-known/mercure/x"},
		{"/a/../b", "/b"},
		{"../x", "/x"},
		{"sub/../../x", "/x"},
		{"books/1", "books/1"},
		{"./mercure/x", "/.well-known/mercure/x"},
		{`a\b`, "a/b"},
		{"https://example.com/a/../b?x=/../#/..", "https://example.com/b?x=/../#/.."},
		{"urn:books:../1", "urn:books:../1"},
		{"foo://h/a/../b", "foo://h/b"},
		{`foo://h/a\..\b`, `foo://h/a\..\b`},
		{"file:///a/../b", "file:///a/../b"},
		{"https://example.com", "https://example.com"},
		{"https://ex.ample.com/a.b/c..d/%2ex", "https://ex.ample.com/a.b/c..d/%2ex"},
		{"*", "*"},
	} {
		if got := CanonicalTopic(tc.in, hubPath); got != tc.want {
			t.Errorf("CanonicalTopic(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzCanonicalTopic checks that canonicalisation never panics, is
// idempotent, and never changes what a URL pattern matches: matching the
// canonical topic gives the same result as matching the raw one.
func FuzzCanonicalTopic(f *testing.F) {
	for _, s := range []string{
		"https://example.com/public/../private/x", "https://example.com/public/%2e%2e/private/x",
		`https://example.com/public\..\private\x`, "/.well-known/./mercure/subscriptions/x",
		"../x", "./a/.%2e/b", "foo://h/a/../b", "urn:x:..", "https://example.com/a/b/..?q#f",
		"https:a/../b", "//h/a/../b", "foo:/a/..//b", "https://example.com/%2E/private/1",
	} {
		f.Add(s)
	}
	base := mustParse(f, hubURL)
	var patterns []*Selector
	for _, p := range []string{
		"https://example.com/private/*", "https://example.com/public/*", "/.well-known/mercure/subscriptions/*",
		"/.well-known/mercure/*", "https://example.com/:a/:b", "*://*/*", "/x", "foo://h/*", "https://example.com/",
	} {
		s, err := Compile08(TypeURLPattern, p, base)
		if err != nil {
			f.Fatal(err)
		}
		patterns = append(patterns, s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		c := CanonicalTopic(topic, base.Path)
		if again := CanonicalTopic(c, base.Path); again != c {
			t.Fatalf("not idempotent: %q -> %q -> %q", topic, c, again)
		}
		if strings.IndexByte(topic, '.') < 0 && strings.IndexByte(topic, '\\') < 0 && c != topic {
			t.Fatalf("changed a topic without dots or backslashes: %q -> %q", topic, c)
		}
		for _, p := range patterns {
			if a, b := p.Match(topic), p.Match(c); a != b {
				t.Fatalf("%s: Match(%q) = %v but Match(canonical %q) = %v", p, topic, a, c, b)
			}
		}
	})
}
