package hub

import (
	"net/url"
	"strings"

	wurl "github.com/nlnwa/whatwg-url/url"

	"github.com/mercurectl/mercurectl/internal/match"
)

// The reserved namespace: the part of the topic space that only the hub
// publishes in (its subscription events), which publishers must not reach by
// any spelling.

// reservedTopic07 reports whether a draft-07 topic lies in the reserved
// namespace, by the rule of the 0.x reference hub: it contains
// "/.well-known/mercure" anywhere, where the reference answers 403
// (docs/protocol.md#publish-topics).
func reservedTopic07(topic string) bool {
	return strings.Contains(topic, Path)
}

// reservedTopic08 reports whether a draft-08 topic lies in the namespace the
// hub reserves for itself (docs/protocol.md#publish-topics): resolved against
// hub, its path equals hub's path or lies under it, whatever its scheme or
// host, after percent-decoding of unreserved characters and dot-segment
// removal. So
// "/.well-known/%6Dercure/x" and
// "https://x.example/.well-known/mercure/subscriptions/x" are reserved, and
// so is the relative "mercure/x" against a hub at /.well-known/mercure.
//
// Because a topic is later read by more than one URL parser (the exact
// matcher compares bytes, URL patterns use the WHATWG parser), the path is
// taken three ways and the topic is reserved if any of them is: the WHATWG
// URL parser, net/url, and a lenient split that accepts any input and treats
// "\" as "/". An empty hub path means /.well-known/mercure; the scheme and
// host of hub only serve to resolve topics, and a nil hub stands for
// http://localhost/.well-known/mercure.
func reservedTopic08(topic string, hub *url.URL) bool {
	hubPath := Path
	base := &url.URL{Scheme: "http", Host: "localhost", Path: Path}
	if hub != nil {
		b := *hub
		if b.Path == "" && b.RawPath == "" {
			b.Path = Path
		}
		if b.Scheme == "" {
			b.Scheme = "http"
		}
		if b.Host == "" {
			b.Host = "localhost"
		}
		b.Opaque = ""
		hubPath = b.EscapedPath()
		base = &b
	}
	reserved := normalizePath(hubPath)
	reserved = strings.TrimSuffix(reserved, "/")

	under := func(p string) bool {
		p = normalizePath(p)
		return p != "" && (p == reserved || strings.HasPrefix(p, reserved+"/"))
	}

	// WHATWG URL parser, as used by URL pattern matching. The parsed base is
	// used once: that parser shares the base's path with the result of a
	// relative parse and may shorten it in place.
	if wb, err := wurl.Parse(base.String()); err == nil {
		if u, err := wb.Parse(topic); err == nil && !u.OpaquePath() && under(u.Pathname()) {
			return true
		}
	}
	// net/url, as used by most Go code that might route on a topic.
	if u, err := url.Parse(topic); err == nil {
		if under(base.ResolveReference(u).EscapedPath()) {
			return true
		}
	}
	// Lenient split, for topics both parsers refuse.
	return under(lenientPath(topic, base.EscapedPath()))
}

// lenientPath extracts the path of s without validating anything: it drops a
// scheme, an authority and the query and fragment, treats "\" as "/", and
// resolves a relative path without a scheme against the directory of
// basePath. A scheme not followed by "/" (an opaque URI) gives "".
func lenientPath(s, basePath string) string {
	s = strings.ReplaceAll(s, `\`, "/")
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	if _, rest, ok := match.SplitScheme(s); ok {
		if !strings.HasPrefix(rest, "/") {
			return "" // an opaque URI such as "urn:x" has no path
		}
		s = rest
	}
	if strings.HasPrefix(s, "//") {
		s = strings.TrimLeft(s, "/")
		i := strings.IndexByte(s, '/')
		if i < 0 {
			return "/"
		}
		s = s[i:]
	}
	if strings.HasPrefix(s, "/") {
		return s
	}
	if s == "" {
		return basePath
	}
	return basePath[:strings.LastIndexByte(basePath, '/')+1] + s
}

// normalizePath percent-decodes the unreserved characters of an escaped path
// (RFC 3986 section 2.3; "%2e" becomes "."), then removes its dot segments
// (RFC 3986 section 5.2.4), so that equivalent spellings compare equal.
func normalizePath(p string) string {
	return removeDotSegments(decodeUnreserved(p))
}

func decodeUnreserved(p string) string {
	if strings.IndexByte(p, '%') < 0 {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			hi, ok1 := unhex(p[i+1])
			lo, ok2 := unhex(p[i+2])
			if c := hi<<4 | lo; ok1 && ok2 && isUnreserved(c) {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// removeDotSegments implements RFC 3986 section 5.2.4 on a path whose
// segments are separated by "/".
func removeDotSegments(p string) string {
	if !strings.Contains(p, ".") {
		return p
	}
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for i, seg := range segs {
		last := i == len(segs)-1
		switch seg {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 1 || (len(out) == 1 && out[0] != "") {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, seg)
		}
	}
	res := strings.Join(out, "/")
	if strings.HasPrefix(p, "/") && !strings.HasPrefix(res, "/") {
		res = "/" + res
	}
	return res
}
