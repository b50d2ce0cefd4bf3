package match

import (
	"net/url"
	"testing"
)

func TestHasControlOrFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, s string
		want    bool
	}{
		{"empty", "", false},
		{"ASCII IRI", "https://example.com/books/1?x=1#f", false},
		{"space is not a control", "a b", false},
		{"non-ASCII letters", "https://example.com/livres/été/日本", false},
		{"emoji", "topic/🙂", false},
		{"U+00A0 no-break space is not Cf", "a\u00a0b", false},
		{"publish-topics: C0 control", "a\x01b", true},
		{"publish-id: NUL", "a\x00b", true},
		{"publish-id: CR", "a\rb", true},
		{"publish-id: LF", "a\nb", true},
		{"subscribe-match: tab", "a\tb", true},
		{"subscribe-match: unit separator", "a\x1fb", true},
		{"subscribe-match: DEL", "a\x7fb", true},
		{"subscribe-match: C1 U+0080", "a\u0080b", true},
		{"subscribe-match: C1 NEL U+0085", "a\u0085b", true},
		{"subscribe-match: C1 U+009F", "a\u009fb", true},
		{"subscribe-match: Cf zero-width space", "a\u200bb", true},
		{"subscribe-match: Cf soft hyphen", "a\u00adb", true},
		{"subscribe-match: Cf right-to-left override", "a\u202eb", true},
		{"subscribe-match: Cf byte order mark", "\ufeffa", true},
		{"subscribe-match: Cf language tag", "a\U000E0001", true},
		{"publish-topics: invalid UTF-8", "a\xffb", true},
		{"publish-topics: truncated UTF-8", "a\xc3", true},
		{"publish-topics: UTF-8 encoded surrogate", "a\xed\xa0\x80b", true},
	}
	for _, tt := range tests {
		if got := HasControlOrFormat(tt.s); got != tt.want {
			t.Errorf("%s: HasControlOrFormat(%q) = %v, want %v", tt.name, tt.s, got, tt.want)
		}
	}
}

func TestHasCRLFNUL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    string
		want bool
	}{
		{"", false},
		{"urn:uuid:1", false},
		{"a\tb", false},     // draft-07 (docs/protocol.md#publish-id): 0.x rejects only CR, LF and NUL
		{"a\x01b", false},   // idem
		{"a\u200bb", false}, // idem
		{"a\rb", true},
		{"a\nb", true},
		{"a\r\nb", true},
		{"a\x00b", true},
		{"\n", true},
	}
	for _, tt := range tests {
		if got := HasCRLFNUL(tt.s); got != tt.want {
			t.Errorf("HasCRLFNUL(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestReservedTopic08(t *testing.T) {
	t.Parallel()
	hub := mustParse(t, hubURL)
	tests := []struct {
		name, topic string
		want        bool
	}{
		{"publish-topics: other host, subscriptions namespace", "https://x.example/.well-known/mercure/subscriptions/x", true},
		{"publish-topics: percent-encoded unreserved letter", "/.well-known/%6Dercure/x", true},
		{"publish-topics: lower-case hex", "/.well-known/%6dercure/x", true},
		{"publish-topics: encoded dot and tilde", "/%2Ewell-known/mercure", true},
		{"publish-topics: the hub path itself", "/.well-known/mercure", true},
		{"publish-topics: the hub URL itself", hubURL, true},
		{"publish-topics: trailing slash", "/.well-known/mercure/", true},
		{"publish-topics: with a query", "https://example.com/.well-known/mercure?topic=x", true},
		{"publish-topics: with a fragment", "/.well-known/mercure#x", true},
		{"publish-topics: other scheme", "http://example.com/.well-known/mercure/x", true},
		{"publish-topics: non-special scheme with a path", "foo:/.well-known/mercure/x", true},
		{"publish-topics: non-special scheme with a host", "foo://h/.well-known/mercure/x", true},
		{"publish-topics: dot segments", "/a/../.well-known/mercure/x", true},
		{"publish-topics: single dot segment", "/.well-known/./mercure", true},
		{"publish-topics: encoded dot segments", "/books/%2e%2E/.well-known/mercure", true},
		{"publish-topics: dot segments above the root", "/../../.well-known/mercure", true},
		{"publish-topics: relative to the hub URL", "mercure/subscriptions/x", true},
		{"publish-topics: relative, current directory", "./mercure", true},
		{"publish-topics: scheme-relative", "//x.example/.well-known/mercure", true},
		{"publish-topics: same-scheme relative (WHATWG)", "https:mercure/x", true},
		{"publish-topics: backslashes (WHATWG, special scheme)", `https://x.example\.well-known\mercure\x`, true},
		{"publish-topics: backslashes, relative", `\.well-known\mercure`, true},
		{"publish-topics: tab stripped by the WHATWG parser", "/.well-\tknown/mercure", true},
		{"publish-topics: invalid port (lenient path)", "https://x.example:99999/.well-known/mercure/x", true},
		{"publish-topics: invalid host (lenient path)", "https://[x/.well-known/mercure/x", true},
		{"publish-topics: empty topic resolves to the hub", "", true},
		{"not reserved: ordinary IRI", "https://example.com/books/1", false},
		{"not reserved: star", "*", false},
		{"not reserved: sibling name", "/.well-known/mercurex", false},
		{"not reserved: sibling with dash", "/.well-known/mercure-x", false},
		{"not reserved: paths are case-sensitive", "/.WELL-KNOWN/mercure", false},
		{"not reserved: encoded slash is not unreserved", "/.well-known/mercure%2Fx", false},
		{"not reserved: parent of the hub", "/.well-known/", false},
		{"not reserved: dot segments leave the namespace", "/.well-known/mercure/../x", false},
		{"not reserved: relative sibling", "../mercure", false},
		{"not reserved: relative other", "books/1", false},
		{"not reserved: URN", "urn:uuid:01a2b3c4", false},
		{"not reserved: URN named mercure", "urn:mercure/x", false},
		{"not reserved: hub path in the query", "https://example.com/?next=/.well-known/mercure", false},
		{"not reserved: hub path in the fragment", "https://example.com/#/.well-known/mercure", false},
		{"not reserved: hub path deeper", "/x/.well-known/mercure", false},
	}
	for _, tt := range tests {
		if got := ReservedTopic08(tt.topic, hub); got != tt.want {
			t.Errorf("%s: ReservedTopic08(%q) = %v, want %v", tt.name, tt.topic, got, tt.want)
		}
	}
}

func TestReservedTopic08HubURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, hub, topic string
		want             bool
	}{
		{"hub-path: a custom hub path is reserved", "https://example.com/hub", "https://example.com/hub/subscriptions", true},
		{"hub-path: the default path is not, then", "https://example.com/hub", "/.well-known/mercure/x", false},
		{"custom path with a trailing slash", "https://example.com/hub/", "/hub", true},
		{"custom path with a trailing slash, below", "https://example.com/hub/", "/hub/x", true},
		{"custom path, sibling", "https://example.com/hub", "/hubx", false},
		{"empty path means the default", "https://example.com", "/.well-known/mercure/x", true},
		{"empty path means the default, other path", "https://example.com", "/books/1", false},
		{"relative hub URL", "/.well-known/mercure", "https://x.example/.well-known/mercure/x", true},
		{"relative hub URL, relative topic", "/.well-known/mercure", "mercure/x", true},
		{"escaped hub path", "https://example.com/h%75b", "/hub/x", true},
		{"root hub reserves every path", "https://example.com/", "/books/1", true},
		{"root hub does not reserve opaque URIs", "https://example.com/", "urn:x", false},
	}
	for _, tt := range tests {
		if got := ReservedTopic08(tt.topic, mustParse(t, tt.hub)); got != tt.want {
			t.Errorf("%s: hub %q: ReservedTopic08(%q) = %v, want %v", tt.name, tt.hub, tt.topic, got, tt.want)
		}
	}
	// A nil hub stands for http://localhost/.well-known/mercure.
	if !ReservedTopic08("/.well-known/%6Dercure/x", nil) || ReservedTopic08("/books/1", nil) {
		t.Errorf("nil hub: wrong answers")
	}
	// The hub URL passed in is not modified.
	hub := &url.URL{Host: "example.com"}
	ReservedTopic08("x", hub)
	if hub.Scheme != "" || hub.Path != "" {
		t.Errorf("ReservedTopic08 modified the hub URL: %v", hub)
	}
}

func TestReservedTopic07(t *testing.T) {
	t.Parallel()
	tests := []struct {
		topic string
		want  bool
	}{
		{"https://example.com/.well-known/mercure/subscriptions/x", true}, // docs/protocol.md#publish-topics: 0.x → 403
		{"/.well-known/mercure", true},
		{"urn:x:/.well-known/mercure", true},
		{"https://example.com/?x=/.well-known/mercurex", true}, // a plain substring rule
		{"/.well-known/%6Dercure/x", false},                    // 0.x does not decode
		{"https://example.com/books/1", false},
		{"mercure/x", false},
	}
	for _, tt := range tests {
		if got := ReservedTopic07(tt.topic); got != tt.want {
			t.Errorf("ReservedTopic07(%q) = %v, want %v", tt.topic, got, tt.want)
		}
	}
}

func TestRemoveDotSegments(t *testing.T) {
	t.Parallel()
	// RFC 3986 section 5.4 examples, reduced to their paths.
	tests := map[string]string{
		"/a/b/c/./../../g":     "/a/g",
		"/a/b/c/../../../g":    "/g",
		"/a/b/c/../../../../g": "/g",
		"/a/b/c/.":             "/a/b/c/",
		"/a/b/c/..":            "/a/b/",
		"/a/./b":               "/a/b",
		"/..":                  "/",
		"/.":                   "/",
		"/":                    "/",
		"":                     "",
		"/a/.well-known/b":     "/a/.well-known/b",
		"/a/..b/c":             "/a/..b/c",
		"/a//../b":             "/a/b",
	}
	for in, want := range tests {
		if got := removeDotSegments(in); got != want {
			t.Errorf("removeDotSegments(%q) = %q, want %q", in, got, want)
		}
	}
}
