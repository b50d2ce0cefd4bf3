package hub

import (
	"net/url"
	"strings"
	"testing"
)

const reservedHubURL = "https://example.com" + Path

func mustParseURL(tb testing.TB, s string) *url.URL {
	tb.Helper()
	u, err := url.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

func TestReservedNamespace08(t *testing.T) {
	t.Parallel()
	hub := mustParseURL(t, reservedHubURL)
	tests := []struct {
		name, topic string
		want        bool
	}{
		{"other host, subscriptions namespace", "https://x.example/.well-known/mercure/subscriptions/x", true},
		{"percent-encoded unreserved letter", "/.well-known/%6Dercure/x", true},
		{"lower-case hex", "/.well-known/%6dercure/x", true},
		{"encoded dot and tilde", "/%2Ewell-known/mercure", true},
		{"the hub path itself", "/.well-known/mercure", true},
		{"the hub URL itself", reservedHubURL, true},
		{"trailing slash", "/.well-known/mercure/", true},
		{"with a query", "https://example.com/.well-known/mercure?topic=x", true},
		{"with a fragment", "/.well-known/mercure#x", true},
		{"other scheme", "http://example.com/.well-known/mercure/x", true},
		{"non-special scheme with a path", "foo:/.well-known/mercure/x", true},
		{"non-special scheme with a host", "foo://h/.well-known/mercure/x", true},
		{"dot segments", "/a/../.well-known/mercure/x", true},
		{"single dot segment", "/.well-known/./mercure", true},
		{"encoded dot segments", "/books/%2e%2E/.well-known/mercure", true},
		{"dot segments above the root", "/../../.well-known/mercure", true},
		{"relative to the hub URL", "mercure/subscriptions/x", true},
		{"relative, current directory", "./mercure", true},
		{"scheme-relative", "//x.example/.well-known/mercure", true},
		{"same-scheme relative (WHATWG)", "https:mercure/x", true},
		{"backslashes (WHATWG, special scheme)", `https://x.example\.well-known\mercure\x`, true},
		{"backslashes, relative", `\.well-known\mercure`, true},
		{"tab stripped by the WHATWG parser", "/.well-\tknown/mercure", true},
		{"invalid port (lenient path)", "https://x.example:99999/.well-known/mercure/x", true},
		{"invalid host (lenient path)", "https://[x/.well-known/mercure/x", true},
		{"empty topic resolves to the hub", "", true},
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
		if got := reservedTopic08(tt.topic, hub); got != tt.want {
			t.Errorf("%s: reservedTopic08(%q) = %v, want %v", tt.name, tt.topic, got, tt.want)
		}
	}
}

func TestReservedNamespaceFollowsTheHubURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, hub, topic string
		want             bool
	}{
		{"a custom hub path is reserved", "https://example.com/hub", "https://example.com/hub/subscriptions", true},
		{"the default path is not, then", "https://example.com/hub", "/.well-known/mercure/x", false},
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
		if got := reservedTopic08(tt.topic, mustParseURL(t, tt.hub)); got != tt.want {
			t.Errorf("%s: hub %q: reservedTopic08(%q) = %v, want %v", tt.name, tt.hub, tt.topic, got, tt.want)
		}
	}
	// A nil hub stands for http://localhost/.well-known/mercure.
	if !reservedTopic08("/.well-known/%6Dercure/x", nil) || reservedTopic08("/books/1", nil) {
		t.Errorf("nil hub: wrong answers")
	}
	// The hub URL passed in is not modified.
	hub := &url.URL{Host: "example.com"}
	reservedTopic08("x", hub)
	if hub.Scheme != "" || hub.Path != "" {
		t.Errorf("reservedTopic08 modified the hub URL: %v", hub)
	}
}

func TestReservedNamespace07(t *testing.T) {
	t.Parallel()
	tests := []struct {
		topic string
		want  bool
	}{
		{"https://example.com/.well-known/mercure/subscriptions/x", true}, // the 0.x reference answers 403
		{"/.well-known/mercure", true},
		{"urn:x:/.well-known/mercure", true},
		{"https://example.com/?x=/.well-known/mercurex", true}, // a plain substring rule
		{"/.well-known/%6Dercure/x", false},                    // 0.x does not decode
		{"https://example.com/books/1", false},
		{"mercure/x", false},
	}
	for _, tt := range tests {
		if got := reservedTopic07(tt.topic); got != tt.want {
			t.Errorf("reservedTopic07(%q) = %v, want %v", tt.topic, got, tt.want)
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

// FuzzReservedTopic08 checks that reservedTopic08 never panics, and that any
// segment appended under the hub path, on any host, is reserved.
func FuzzReservedTopic08(f *testing.F) {
	for _, s := range []string{
		"https://x.example/.well-known/mercure/subscriptions/x", "/.well-known/%6Dercure/x", "mercure/x",
		"https://example.com/books/1", "*", "", "urn:uuid:1", "../../x", "%2e%2e", "\\", "http://[::1",
		"https:mercure", "foo:/.well-known/mercure", "//h", "?#",
	} {
		f.Add(s, reservedHubURL)
	}
	f.Add("x", "https://example.com/hub/")
	f.Add("x", "/relative")
	f.Fuzz(func(t *testing.T, topic, hubStr string) {
		hub, err := url.Parse(hubStr)
		if err != nil {
			hub = nil
		}
		reservedTopic08(topic, hub)

		hubPath := Path
		if hub != nil && hub.EscapedPath() != "" {
			hubPath = hub.EscapedPath()
		}
		seg := url.PathEscape(topic)
		if seg == "." || seg == ".." || seg == "" || !strings.HasPrefix(hubPath, "/") {
			return
		}
		under := "https://other.example" + strings.TrimSuffix(hubPath, "/") + "/" + seg
		if !reservedTopic08(under, hub) {
			t.Fatalf("hub %q: %q is not reserved", hubStr, under)
		}
	})
}

// BenchmarkReservedTopic08 measures the publish-time reserved-namespace check.
func BenchmarkReservedTopic08(b *testing.B) {
	hub := mustParseURL(b, reservedHubURL)
	b.ReportAllocs()
	for b.Loop() {
		reservedSink = reservedTopic08("https://example.com/books/12345", hub)
	}
}

var reservedSink bool
