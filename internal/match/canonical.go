package match

import "strings"

// CanonicalTopic returns the form of topic that every matcher agrees on:
// the one a URL parser reads it as. The WHATWG URL parser, which URL
// patterns use, removes dot segments from a path (also when their dots are
// percent-encoded, "%2e" and ".%2e"), and reads "\" as "/" in URLs with a
// special scheme (http, https, ws, wss, ftp) and in relative references
// resolved against the hub URL. URI templates and exact matchers compare
// the raw string instead, so a topic whose canonical form differs from its
// raw form could pass a grant such as "https://example.com/public/{+rest}"
// as "https://example.com/public/../private/x" and then reach the
// subscribers of "https://example.com/private/*". The hub refuses such
// topics at publish time, so that the form the grants see is the one the
// patterns see.
//
// basePath is the hub's path, against which a relative topic resolves; a
// relative topic whose canonical form differs is returned as the absolute
// path it resolves to. Opaque topics (such as "urn:books:1"), file: URLs
// and topics without dots or backslashes are returned unchanged, as is the
// query and the fragment of any topic.
func CanonicalTopic(topic, basePath string) string {
	if strings.IndexByte(topic, '.') < 0 && strings.IndexByte(topic, '\\') < 0 {
		return topic
	}
	// No URL pattern ever matches a topic with a control or format
	// character or surrounding spaces, whatever its form.
	if topic[0] == ' ' || topic[len(topic)-1] == ' ' || HasControlOrFormat(topic) {
		return topic
	}
	// The query and the fragment are never normalised.
	head, tail := topic, ""
	if i := strings.IndexAny(topic, "?#"); i >= 0 {
		head, tail = topic[:i], topic[i:]
	}
	scheme, _, hasScheme := SplitScheme(head)
	if hasScheme && scheme == "file" {
		return topic
	}
	if !hasScheme || isSpecialScheme(scheme) {
		head = strings.ReplaceAll(head, `\`, "/")
	}
	prefix, rest := "", head
	if hasScheme {
		prefix, rest = head[:len(scheme)+1], head[len(scheme)+1:]
		if !strings.HasPrefix(rest, "/") || isSpecialScheme(scheme) && !strings.HasPrefix(rest, "//") {
			// Opaque, or a special URL such as "https:/books" whose host
			// depends on the base: left to the parser.
			return head + tail
		}
	}
	authority := strings.HasPrefix(rest, "//")
	if authority {
		end := strings.IndexByte(rest[2:], '/')
		if end <= 0 {
			// No host, or no path: a special URL's parser skips any
			// number of slashes before the host, so leave it alone.
			return head + tail
		}
		prefix, rest = prefix+rest[:2+end], rest[2+end:]
	}
	path := rest
	if path == "" {
		return head + tail
	}
	if !strings.HasPrefix(path, "/") {
		// A relative reference: the WHATWG parser appends it to the
		// directory of the base path.
		path = basePath[:strings.LastIndexByte(basePath, '/')+1] + path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
	}
	norm, changed := removeDots(path)
	if !changed {
		return head + tail
	}
	if !authority && strings.HasPrefix(norm, "//") {
		// The parser would write this path with "/." in front, a form
		// no grant spells either: patterns and grants both see the path
		// as it is.
		return head + tail
	}
	return prefix + norm + tail
}

// isSpecialScheme reports the WHATWG URL standard's special schemes, whose
// URLs read "\" as "/" ("file" is special too, but left alone here).
func isSpecialScheme(s string) bool {
	switch s {
	case "http", "https", "ws", "wss", "ftp":
		return true
	}
	return false
}

// removeDots removes the dot segments of an absolute path as the WHATWG
// path state does: "." and "%2e" are single dots, "..", ".%2e", "%2e." and
// "%2e%2e" (in any case) double dots; a dot segment at the end leaves a
// trailing "/". changed reports whether there was one.
func removeDots(path string) (string, bool) {
	segs := strings.Split(path[1:], "/")
	out := make([]string, 0, len(segs))
	changed := false
	for i, seg := range segs {
		last := i == len(segs)-1
		switch {
		case isDoubleDot(seg):
			changed = true
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		case isSingleDot(seg):
			changed = true
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, seg)
		}
	}
	if !changed {
		return path, false
	}
	return "/" + strings.Join(out, "/"), true
}

func isSingleDot(s string) bool { return s == "." || strings.EqualFold(s, "%2e") }

func isDoubleDot(s string) bool {
	switch strings.ToLower(s) {
	case "..", ".%2e", "%2e.", "%2e%2e":
		return true
	}
	return false
}
