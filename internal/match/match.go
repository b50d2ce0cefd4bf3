// Package match compiles and evaluates Mercure topic selectors for both
// protocol generations a hub serves at once, and validates topics.
//
// Draft-07 selectors (subscription `topic=` parameters and the `mercure`
// claim of legacy tokens) are "*", an exact string, or an RFC 6570 URI
// template (docs/protocol.md#matching-07). Draft-08 matchers (`match=`,
// `match_urlpattern=` and the `topics` of authorization details) are "*", an
// exact string, or a WHATWG URL Pattern (docs/protocol.md#matching-08 and
// #authorization-details).
//
// Every matcher runs in time linear in the topic for a given selector: URI
// templates compile to a small automaton of their own (template.go), and the
// URL Pattern library compiles each URL component to a Go regexp (RE2, no
// backtracking). A pattern match still costs microseconds and allocates, so
// Cache memoises (selector, topic) results for the dispatch path.
//
// A Selector is immutable once compiled and safe for concurrent use.
package match

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net/url"
	"strings"

	"github.com/dunglas/go-urlpattern"
)

// Kind is the kind of a compiled selector.
type Kind uint8

const (
	// KindAny is "*": it matches every topic (docs/protocol.md#matching-08 and
	// #matching-07).
	KindAny Kind = iota + 1
	// KindExact matches only the byte-identical topic.
	KindExact
	// KindTemplate is a draft-07 URI template (RFC 6570). It also matches
	// its own literal string (docs/protocol.md#matching-07).
	KindTemplate
	// KindURLPattern is a draft-08 WHATWG URL Pattern
	// (docs/protocol.md#matching-08).
	KindURLPattern
)

// String returns the name of the kind, for logs and test output.
func (k Kind) String() string {
	switch k {
	case KindAny:
		return "any"
	case KindExact:
		return "exact"
	case KindTemplate:
		return "template"
	case KindURLPattern:
		return "urlpattern"
	default:
		return fmt.Sprintf("Kind(%d)", uint8(k))
	}
}

// Match types, as they appear in draft-08 requests, tokens and subscription
// events (docs/protocol.md#subscribe-match, #authorization-details and
// #subscription-topics), plus the two draft-07 pseudo-types that MatchType
// reports.
const (
	// TypeExact is the draft-08 byte-for-byte matcher type (the default).
	TypeExact = "exact"
	// TypeURLPattern is the draft-08 URL Pattern matcher type.
	TypeURLPattern = "urlpattern"
	// TypeTemplate is what MatchType reports for a draft-07 URI template.
	TypeTemplate = "template"
	// TypeAny is what MatchType reports for the draft-07 selector "*".
	TypeAny = "*"
)

// MaxPatternLength is the longest draft-08 matcher accepted, in bytes
// (docs/protocol.md#subscribe-match: a 4097-byte pattern is refused).
// Draft-07 templates longer than this are treated as exact strings.
const MaxPatternLength = 4096

// Complexity caps for URL patterns, so that matching stays cheap (draft-08
// says evaluation MUST be linear-time or bounded;
// docs/protocol.md#matching-08). Go regexps run in time linear in the topic,
// but the URL Pattern library extracts submatches, so the cost per topic byte
// grows with the number of capture groups times the number of live NFA
// states: without these caps a 3.6 KB pattern of 600 groups took 1.6 s to
// match a 1 KiB topic. Patterns beyond the caps are refused with
// ErrInvalidPattern. Legitimate patterns use a handful of groups and tiny
// regular expressions.
const (
	// MaxPatternGroups caps the named groups (":id"), regexp groups
	// ("(\\d+)") and wildcards ("*") of one URL pattern.
	MaxPatternGroups = 32
	// MaxPatternRegexpSize caps the compiled size, in RE2 instructions, of
	// all the regexp groups of one URL pattern together; it is what stops
	// counted repetition ("(a{1000})") from inflating a short pattern.
	MaxPatternRegexpSize = 512
)

// Errors returned by Compile08. They are wrapped with the offending detail;
// test them with errors.Is.
var (
	// ErrUnknownMatchType is returned for a match type other than "exact",
	// "urlpattern" or "" (match types are case-sensitive,
	// docs/protocol.md#authorization-details).
	ErrUnknownMatchType = errors.New("unknown match type")
	// ErrInvalidPattern is returned for an empty pattern, a pattern with
	// control or format characters or invalid UTF-8, or a URL pattern that
	// does not parse, is relative with no base, or exceeds MaxPatternGroups
	// or MaxPatternRegexpSize.
	ErrInvalidPattern = errors.New("invalid pattern")
	// ErrTooLong is returned for a pattern longer than MaxPatternLength bytes.
	ErrTooLong = errors.New("pattern too long")
)

// seed keys the hashes that Cache uses; one per process is enough.
var seed = maphash.MakeSeed()

// Selector is a compiled topic selector. Create it with Compile07 or
// Compile08. It is immutable and safe for concurrent use.
type Selector struct {
	kind      Kind
	raw       string
	matchType string

	// tmpl is the compiled URI template (KindTemplate).
	tmpl *template

	// pattern is the compiled URL pattern (KindURLPattern); base is the
	// absolute URL relative topics resolve against ("" when none), and
	// baseScheme its lower-cased scheme.
	pattern    *urlpattern.URLPattern
	simple     *simplePattern // instead of pattern, for simple patterns
	base       string
	baseScheme string

	// id identifies the matching behaviour for Cache: two selectors with the
	// same id match exactly the same topics, so subscribers sharing a
	// selector share cache entries. idHash is maphash.String(seed, id).
	id     string
	idHash uint64
}

// Compile07 compiles a draft-07 selector: a subscription `topic=` parameter
// or a selector granted by a legacy token (docs/protocol.md#matching-07 and
// #legacy-tokens).
//
// "*" gives KindAny. A string that parses as an RFC 6570 URI template with at
// least one expression gives KindTemplate, which matches the identical string
// or any string the template matches. Anything else, including an invalid
// template, gives KindExact. So does a template longer than MaxPatternLength
// or with an expression of more than 1,001 variables (the limit of the
// regular expressions templates used to compile to, kept so that such
// selectors behave as they did): this bounds the cost of matching
// (docs/protocol.md#matching-07), and Compile07 cannot refuse a selector
// since it also reads legacy tokens. Compile07 never fails.
func Compile07(s string) *Selector {
	if s == "*" {
		return &Selector{kind: KindAny, raw: s, matchType: TypeAny}
	}
	if strings.IndexByte(s, '{') >= 0 {
		if t := compileTemplate(s); t != nil {
			return newCached(&Selector{kind: KindTemplate, raw: s, matchType: TypeTemplate, tmpl: t}, "t", "")
		}
	}
	return &Selector{kind: KindExact, raw: s, matchType: TypeExact}
}

// Compile08 compiles a draft-08 matcher (docs/protocol.md#subscribe-match,
// #matching-08 and #authorization-details). matchType is "exact" or
// "urlpattern", case-sensitive; "" means "exact".
//
// "*" gives KindAny whatever the type. "exact" is a byte comparison with no
// normalisation and no resolution. "urlpattern" follows the WHATWG URL Pattern
// standard without ignoreCase; a relative pattern (one without a protocol)
// resolves against base (the hub URL), and with a nil base a relative
// pattern is invalid. Remember that ":" starts a named group in URL Pattern
// syntax: a pattern for "urn:books:1" is written `urn\:books\:*` or `urn:*`.
//
// Errors wrap ErrUnknownMatchType, ErrTooLong (more than MaxPatternLength
// bytes) or ErrInvalidPattern (empty, containing control or format
// characters or invalid UTF-8, or not a valid URL pattern).
func Compile08(matchType, pattern string, base *url.URL) (*Selector, error) {
	if matchType == "" {
		matchType = TypeExact
	}
	if matchType != TypeExact && matchType != TypeURLPattern {
		return nil, fmt.Errorf("%w %q", ErrUnknownMatchType, truncate(matchType))
	}
	if len(pattern) > MaxPatternLength {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLong, len(pattern), MaxPatternLength)
	}
	if pattern == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidPattern)
	}
	if HasControlOrFormat(pattern) {
		return nil, fmt.Errorf("%w: control or format character, or invalid UTF-8", ErrInvalidPattern)
	}
	if pattern == "*" {
		return &Selector{kind: KindAny, raw: pattern, matchType: matchType}, nil
	}
	if matchType == TypeExact {
		return &Selector{kind: KindExact, raw: pattern, matchType: matchType}, nil
	}

	var baseStr, baseScheme string
	if base != nil {
		if !base.IsAbs() {
			return nil, fmt.Errorf("%w: base URL %q is not absolute", ErrInvalidPattern, base.Redacted())
		}
		baseStr = base.String()
		baseScheme = strings.ToLower(base.Scheme)
	}
	if err := checkComplexity(pattern); err != nil {
		return nil, err
	}
	if sp := compileSimplePattern(pattern, base); sp != nil {
		s := &Selector{kind: KindURLPattern, raw: pattern, matchType: matchType, simple: sp, base: baseStr, baseScheme: baseScheme}
		return newCached(s, "u", baseStr), nil
	}
	p, err := compileURLPattern(pattern, baseStr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPattern, err)
	}
	s := &Selector{
		kind:       KindURLPattern,
		raw:        pattern,
		matchType:  matchType,
		pattern:    p,
		base:       baseStr,
		baseScheme: baseScheme,
	}
	return newCached(s, "u", baseStr), nil
}

// errPatternPanic reports a panic inside the URL Pattern library.
var errPatternPanic = errors.New("pattern parser failure")

// compileURLPattern wraps urlpattern.New.
//
// Only a relative pattern (one without a protocol) is resolved against base:
// the URL Pattern standard otherwise joins a non-absolute pathname to the
// base path even when the pattern has its own protocol, which would turn
// `urn\:books\:*` into a pattern whose pathname is "/.well-known/books\:*".
//
// The pattern comes from untrusted clients, so a panic in the third-party
// parser is turned into an error rather than taking the request down.
func compileURLPattern(pattern, base string) (p *urlpattern.URLPattern, err error) {
	defer func() {
		if recover() != nil {
			p, err = nil, errPatternPanic
		}
	}()
	p, err = urlpattern.New(pattern, "", nil)
	if errors.Is(err, urlpattern.ErrNoBaseURL) && base != "" {
		p, err = urlpattern.New(pattern, base, nil)
	}
	return p, err
}

// newCached sets the cache identity of s: its kind tag, the base URL that
// influences matching, and the raw selector.
func newCached(s *Selector, tag, base string) *Selector {
	s.id = tag + base + "\x00" + s.raw
	s.idHash = maphash.String(seed, s.id)
	return s
}

// truncate shortens s for inclusion in an error message.
func truncate(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}

// Kind returns the kind of the selector.
func (s *Selector) Kind() Kind { return s.kind }

// String returns the selector as it was given.
func (s *Selector) String() string { return s.raw }

// MatchType returns the match type used as `{match_type}` in subscription
// events (docs/protocol.md#subscription-topics). For draft-08 matchers it is
// the type the matcher was compiled with ("exact" or "urlpattern", also for
// "*"). For draft-07 selectors it is "*", "template" or "exact".
func (s *Selector) MatchType() string { return s.matchType }

// Exact returns the literal topic of a KindExact selector, so that a hub can
// index such selectors in a map; ok is false for the other kinds.
func (s *Selector) Exact() (topic string, ok bool) {
	if s.kind != KindExact {
		return "", false
	}
	return s.raw, true
}

// Match reports whether topic matches the selector.
//
// For a URL pattern, a relative topic resolves against the base given to
// Compile08, and a topic that cannot be parsed never matches. So does a topic
// the WHATWG URL parser would silently alter before matching: one containing
// control or format characters or invalid UTF-8, or with leading or trailing
// spaces (draft-08 refuses such topics at publication,
// docs/protocol.md#publish-topics).
func (s *Selector) Match(topic string) bool {
	switch s.kind {
	case KindAny:
		return true
	case KindExact:
		return topic == s.raw
	case KindTemplate:
		return topic == s.raw || s.tmpl.match(topic)
	case KindURLPattern:
		return s.matchURLPattern(topic)
	default:
		return false
	}
}

func (s *Selector) matchURLPattern(topic string) (matched bool) {
	if topic == "" || topic[0] == ' ' || topic[len(topic)-1] == ' ' || HasControlOrFormat(topic) {
		return false
	}
	// Match runs on the hub's dispatch path, outside any HTTP handler: a
	// panic in the third-party matcher must not bring the hub down.
	defer func() {
		if recover() != nil {
			matched = false
		}
	}()
	if s.simple != nil {
		v, ok := parseURLView(topic, s.baseFor(topic))
		return ok && s.simple.matchView(&v)
	}
	return s.pattern.Test(topic, s.baseFor(topic))
}

// baseFor returns the base URL to parse topic with: "" when the WHATWG URL
// parser would not consult the base anyway, which saves parsing the base URL
// on every match (it roughly halves the cost of an uncached match).
//
// Per the WHATWG URL standard's scheme state, the base of an input with a
// scheme is used only when the scheme is "file", or when the scheme is
// special, equals the base's scheme, and is not followed by "//" (the input
// "https:books/1" is relative to an https base). Every other input with a
// scheme parses the same with or without a base.
func (s *Selector) baseFor(topic string) string {
	if s.base == "" {
		return ""
	}
	scheme, rest, ok := SplitScheme(topic)
	if !ok {
		return s.base
	}
	switch scheme {
	case "file":
		return s.base
	case "http", "https", "ws", "wss", "ftp":
		if scheme == s.baseScheme && !strings.HasPrefix(rest, "//") {
			return s.base
		}
	}
	return ""
}

// SplitScheme splits a URL's scheme (lower-cased) from the rest, as the
// WHATWG scheme start and scheme states do: an ASCII letter followed by ASCII
// alphanumerics, "+", "-" or ".", then ":". ok is false when there is none.
func SplitScheme(s string) (scheme, rest string, ok bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return strings.ToLower(s[:i]), s[i+1:], true
		default:
			return "", "", false
		}
	}
	return "", "", false
}

// urlPrefix returns the index key prefix of a URL pattern (see urlView.key).
func (s *Selector) urlPrefix() string {
	if s.simple != nil {
		return s.simple.prefix()
	}
	return libraryPatternPrefix(s.pattern)
}

// matchURLView is Match for a URL pattern, given the topic parsed against
// the selector's base: a simple pattern compares it, the general matcher
// runs through c.
func (s *Selector) matchURLView(topic string, v *urlView, c *Cache, th uint64) bool {
	if s.simple != nil {
		return s.simple.matchView(v)
	}
	return c.MatchHashed(s, topic, th)
}

// GeneralURLPattern reports whether Compile08 would compile pattern (a
// valid URL pattern) with the general URL Pattern matcher, whose cost grows
// faster than the pattern's length, rather than the compact form of simple
// patterns (literal scheme, host and port, literal path segments,
// whole-segment named groups and a final "/*"). A hub can cap such patterns
// per request before compiling them.
func GeneralURLPattern(pattern string, base *url.URL) bool {
	return pattern != "*" && compileSimplePattern(pattern, base) == nil
}
