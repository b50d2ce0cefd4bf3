package match

import (
	"net/url"
	"strings"
)

// simplePattern is the compact form of the URL patterns most subscribers
// use: a literal scheme, host and port (given, or those of the base URL for
// a pattern that starts with "/"), then a path of literal segments,
// whole-segment named groups (":id") and an optional final "/*"; no query,
// fragment, user info, modifier, regexp or brace group. The URL Pattern
// library compiles every pattern to eight regexps, in time and memory that
// grow with the square of the pattern's length (hundreds of KiB and
// milliseconds for a 4 KiB pattern); this form costs a few words besides the
// pattern string, and matching compares the topic's parsed components with
// the literals. Compile08 uses it only for patterns whose every character it
// understands, so that it matches exactly what the library's regexps match
// (FuzzSimplePatternAgreesWithLibrary checks this); any other pattern goes
// to the library.
type simplePattern struct {
	scheme, host, port string // compared with the topic's parsed ones
	anyPath            bool   // no path given: the pathname is "*"
	parts              []pathPart
}

// pathPart is a piece of a simple pattern's path.
type pathPart struct {
	lit  string // partLiteral: text to match exactly, slashes included
	kind uint8
}

const (
	partLiteral = iota
	partSegment // a named group: one or more characters other than "/"
	partRest    // the final wildcard: anything
)

// specialDefaultPorts are the special schemes of the WHATWG URL standard
// with a default port.
var specialDefaultPorts = map[string]string{"http": "80", "https": "443", "ws": "80", "wss": "443", "ftp": "21"}

// compileSimplePattern returns the simple form of pattern, or nil when the
// pattern needs the general matcher.
func compileSimplePattern(pattern string, base *url.URL) *simplePattern {
	p := &simplePattern{}
	var path string
	if strings.HasPrefix(pattern, "/") {
		if strings.HasPrefix(pattern, "//") || base == nil {
			return nil
		}
		// A relative pattern takes the base's scheme, host and port, as the
		// WHATWG parser serialises them.
		b, err := urlParser.Parse(base.String())
		if err != nil {
			return nil
		}
		p.scheme, p.host, p.port = b.Scheme(), b.Hostname(), b.Port()
		if _, ok := specialDefaultPorts[p.scheme]; !ok || !plainHost(p.host, true) || !allDigits(p.port) {
			return nil
		}
		path = pattern
	} else {
		scheme, rest, ok := strings.Cut(pattern, "://")
		if !ok {
			return nil
		}
		def, special := specialDefaultPorts[scheme]
		if !special {
			return nil
		}
		authority := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			authority, path = rest[:i], rest[i:]
		} else {
			p.anyPath = true
		}
		host, port, hasPort := strings.Cut(authority, ":")
		if !plainHost(host, false) {
			return nil
		}
		if hasPort {
			if port == "" || len(port) > 5 || port[0] == '0' || !allDigits(port) || port > "65535" && len(port) == 5 {
				return nil
			}
			if port == def {
				port = ""
			}
		}
		p.scheme, p.host, p.port = scheme, host, port
	}
	if p.anyPath {
		return p
	}
	if !p.parsePath(path) {
		return nil
	}
	return p
}

// parsePath fills p.parts from an absolute path pattern.
func (p *simplePattern) parsePath(path string) bool {
	if path == "/" {
		p.parts = []pathPart{{lit: "/"}}
		return true
	}
	var names []string
	lit := 0 // start of the pending literal in path
	for i := 0; i < len(path); {
		// path[i] is "/": the start of a segment.
		end := strings.IndexByte(path[i+1:], '/')
		if end < 0 {
			end = len(path)
		} else {
			end += i + 1
		}
		seg := path[i+1 : end]
		switch {
		case seg == "*" && end == len(path):
			p.addLiteral(path[lit : i+1])
			p.parts = append(p.parts, pathPart{kind: partRest})
			return true
		case strings.HasPrefix(seg, ":"):
			name := seg[1:]
			if !plainName(name) || containsString(names, name) {
				return false
			}
			names = append(names, name)
			p.addLiteral(path[lit : i+1])
			p.parts = append(p.parts, pathPart{kind: partSegment})
			lit = end
		case seg == "" && end == len(path):
			// a trailing slash
		case !plainSegment(seg):
			return false
		}
		i = end
	}
	p.addLiteral(path[lit:])
	return true
}

func (p *simplePattern) addLiteral(s string) {
	if s != "" {
		p.parts = append(p.parts, pathPart{lit: s})
	}
}

// prefix returns the index key prefix of the pattern (see urlView.key).
func (p *simplePattern) prefix() string {
	k := p.scheme + "\x00" + p.host + "\x00" + p.port + "\x00"
	if len(p.parts) > 0 && p.parts[0].kind == partLiteral {
		k += p.parts[0].lit
	}
	return k
}

// matchView reports whether the parsed topic v matches p.
func (p *simplePattern) matchView(v *urlView) bool {
	if v.scheme != p.scheme || v.host != p.host || v.port != p.port {
		return false
	}
	if p.anyPath {
		return true
	}
	path := v.path
	for _, part := range p.parts {
		switch part.kind {
		case partLiteral:
			if !strings.HasPrefix(path, part.lit) {
				return false
			}
			path = path[len(part.lit):]
		case partSegment:
			n := strings.IndexByte(path, '/')
			if n < 0 {
				n = len(path)
			}
			if n == 0 {
				return false
			}
			path = path[n:]
		case partRest:
			return true
		}
	}
	return path == ""
}

// plainHost reports whether h is a host name that URL parsing leaves as it
// is: lower-case ASCII letters, digits, "-" and "." in non-empty labels that
// do not start or end with "-", no IDNA label, and a last label that is not
// a number (which would make it an IPv4 address). With base, h comes from a
// parsed URL and is already canonical, so IPv4 addresses are fine too.
func plainHost(h string, base bool) bool {
	if h == "" {
		return false
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || l[0] == '-' || l[len(l)-1] == '-' || strings.HasPrefix(l, "xn--") {
			return false
		}
		for i := range len(l) {
			if c := l[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	if last := labels[len(labels)-1]; !base && '0' <= last[0] && last[0] <= '9' {
		return false
	}
	return true
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// plainName reports whether s is an ASCII URL Pattern group name that
// starts with a letter (the library does not take "_" or "$" there).
func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || c != '_' && (c < '0' || c > '9')) {
			return false
		}
	}
	return true
}

// plainSegment reports whether s is a path segment that the URL Pattern
// syntax and path canonicalisation both leave as it is: unreserved
// characters, a few sub-delimiters and %XX, and not a dot segment.
func plainSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!&',;=", c) >= 0:
		case c == '%':
			if !isTriplet(s, i) || s[i+1] == '2' && (s[i+2] == 'e' || s[i+2] == 'E') {
				return false // %2e may make a dot segment
			}
			i += 2
		default:
			return false
		}
	}
	return true
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
