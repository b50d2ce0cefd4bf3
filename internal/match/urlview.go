package match

import (
	"strings"

	"github.com/dunglas/go-urlpattern"
	wurl "github.com/nlnwa/whatwg-url/url"
)

// urlParser parses topics for URL pattern matching the way the URL Pattern
// library does (a WHATWG URL parser with default options).
var urlParser = wurl.NewParser()

// urlView is a topic parsed as a URL, with the components URL patterns
// match against.
type urlView struct {
	scheme, host, port, path string
}

// urlTopicOK reports whether topic can match a URL pattern at all: one the
// WHATWG URL parser would silently alter before matching never does
// (draft-08 refuses such topics at publication, docs/protocol.md#publish-topics).
func urlTopicOK(topic string) bool {
	return topic != "" && topic[0] != ' ' && topic[len(topic)-1] != ' ' && !HasControlOrFormat(topic)
}

// parseURLView parses topic, relative to base when base is not "". A
// parsed base cannot be shared between parses (the parser may change it),
// so it is parsed again each time, as the URL Pattern library does.
func parseURLView(topic, base string) (urlView, bool) {
	var b *wurl.Url
	if base != "" {
		var err error
		if b, err = urlParser.Parse(base); err != nil {
			return urlView{}, false
		}
	}
	u, err := urlParser.BasicParser(topic, b, nil, wurl.NoState)
	if err != nil {
		return urlView{}, false
	}
	return urlView{scheme: u.Scheme(), host: u.Hostname(), port: u.Port(), path: u.Pathname()}, true
}

// key is the string URL pattern prefixes are indexed by: the components
// that patterns most often give literally, in URL order, separated by NUL
// (which no parsed component contains).
func (v *urlView) key() string {
	return v.scheme + "\x00" + v.host + "\x00" + v.port + "\x00" + v.path
}

// patternSpecials are the characters that start something other than fixed
// text in a component pattern string the URL Pattern library generates:
// fixed text that holds one of them is escaped with "\".
const patternSpecials = `\:*(){}+?`

// libraryPatternPrefix returns a prefix of the key of every topic that p
// matches: the protocol, hostname and port while they are plain text, then
// the plain text the pathname starts with.
func libraryPatternPrefix(p *urlpattern.URLPattern) string {
	var b strings.Builder
	for _, c := range []string{p.Protocol(), p.Hostname(), p.Port()} {
		if strings.ContainsAny(c, patternSpecials) {
			return b.String()
		}
		b.WriteString(c)
		b.WriteByte(0)
	}
	path := p.Pathname()
	i := strings.IndexAny(path, patternSpecials)
	if i < 0 {
		return b.String() + path
	}
	lit := path[:i]
	// A "/" right before a group may be the group's prefix, optional with it
	// ("/books/:id?" matches "/books").
	lit = strings.TrimSuffix(lit, "/")
	return b.String() + lit
}
