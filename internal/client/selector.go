package client

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/yosida95/uritemplate/v3"

	"github.com/mercurectl/mercurectl/internal/match"
	"github.com/mercurectl/mercurectl/internal/token"
)

// MatchAuto ("") is the match type of a Selector that lets the client choose
// (see Selector). The others are those of package match: match.TypeExact
// (draft-08 `match=`), match.TypeURLPattern (`match_urlpattern=`) and
// match.TypeTemplate (a draft-07 URI template).
const MatchAuto = ""

// Selector is a topic selector to subscribe to.
//
// In draft-07 every selector is sent as `topic=` whatever its MatchType (the
// hub decides: "*", exact string or URI template). In draft-08, "*" is sent
// as `match=*`; match.TypeExact as `match=`; match.TypeURLPattern as
// `match_urlpattern=`; and MatchAuto sends a selector with a path segment
// starting with ':' or '*' as a URL pattern (token.GuessMatchType), and
// anything else as an exact topic.
//
// URI templates exist only in draft-07. With ProtocolAuto, a subscription
// with a template (match.TypeTemplate, or MatchAuto and a value such as
// "/books/{id}") is sent in draft-07 even to a draft-08 hub; with
// Protocol08 forced it is an error (ErrTemplateSelector) that suggests the
// URL-pattern form.
type Selector struct {
	Value     string
	MatchType string
}

// Selectors returns the selectors for values, all with the same match type.
func Selectors(matchType string, values ...string) []Selector {
	s := make([]Selector, len(values))
	for i, v := range values {
		s[i] = Selector{Value: v, MatchType: matchType}
	}
	return s
}

// resolveSelectors validates sels for proto and returns them with the match
// type that will be sent: "" in draft-07, match.TypeExact or match.TypeURLPattern in
// draft-08.
func resolveSelectors(proto Protocol, sels []Selector) ([]Selector, error) {
	if len(sels) == 0 {
		return nil, fmt.Errorf("%w: at least one topic selector is required", ErrInvalidRequest)
	}
	out := make([]Selector, len(sels))
	for i, s := range sels {
		if s.Value == "" {
			return nil, fmt.Errorf("%w: empty topic selector", ErrInvalidRequest)
		}
		switch s.MatchType {
		case MatchAuto, match.TypeExact, match.TypeURLPattern, match.TypeTemplate:
		default:
			return nil, fmt.Errorf("%w: unknown match type %q (want exact, urlpattern or template)", ErrInvalidRequest, s.MatchType)
		}
		if proto == Protocol07 {
			out[i] = Selector{Value: s.Value}
			continue
		}
		mt := s.MatchType
		switch {
		case s.Value == "*":
			mt = match.TypeExact
		case mt == match.TypeTemplate:
			return nil, templateError(s.Value)
		case mt == MatchAuto:
			mt = token.GuessMatchType(s.Value)
			if mt == match.TypeExact && isTemplate(s.Value) {
				return nil, templateError(s.Value)
			}
		}
		out[i] = Selector{Value: s.Value, MatchType: mt}
	}
	return out, nil
}

// selectorParams adds the subscription parameters of resolved selectors
// (docs/protocol.md#subscribe-topic and #subscribe-match).
func selectorParams(q url.Values, proto Protocol, sels []Selector) {
	for _, s := range sels {
		switch {
		case proto == Protocol07:
			q.Add("topic", s.Value)
		case s.MatchType == match.TypeURLPattern:
			q.Add("match_urlpattern", s.Value)
		default:
			q.Add("match", s.Value)
		}
	}
}

// templateSelector returns the first URI template among sels ("" when
// none): a MatchTemplate selector, or a MatchAuto one whose value is a
// template. A subscription that mixes a template with a URL pattern cannot
// be expressed in either generation: that is an error.
func templateSelector(sels []Selector) (string, error) {
	tmpl, pattern := "", ""
	for _, s := range sels {
		switch {
		case s.Value == "*":
		case s.MatchType == match.TypeTemplate, s.MatchType == MatchAuto && isTemplate(s.Value):
			if tmpl == "" {
				tmpl = s.Value
			}
		case s.MatchType == match.TypeURLPattern, s.MatchType == MatchAuto && token.GuessMatchType(s.Value) == match.TypeURLPattern:
			if pattern == "" {
				pattern = s.Value
			}
		}
	}
	if tmpl != "" && pattern != "" {
		return "", fmt.Errorf("%w: %q is a URI template (draft-07) and %q a URL pattern (draft-08): one subscription cannot mix them; use %q instead of the template",
			ErrInvalidRequest, tmpl, pattern, SuggestURLPattern(tmpl))
	}
	return tmpl, nil
}

// isTemplate reports whether s is a URI template with at least one
// expression, as a draft-07 hub would read it.
func isTemplate(s string) bool {
	if !strings.Contains(s, "{") {
		return false
	}
	t, err := uritemplate.New(s)
	return err == nil && len(t.Varnames()) > 0
}

// templateError explains that draft-08 has no URI templates and suggests the
// equivalent URL pattern.
func templateError(s string) error {
	return fmt.Errorf("%w: %q is a URI template; use a URL pattern such as %q (with --match-type urlpattern if needed), or force draft-07",
		ErrTemplateSelector, s, SuggestURLPattern(s))
}

var (
	templateExpr = regexp.MustCompile(`\{([+#./;?&]?)([^}]*)\}`)
	notIdentChar = regexp.MustCompile(`[^A-Za-z0-9_]`)
)

// SuggestURLPattern rewrites the expressions of a URI template into the
// closest URL pattern syntax, for error messages: "{id}" becomes ":id",
// "{/id}" "/:id", "{.ext}" ".:ext", "{+path}" and "{#frag}" "*", and query
// expressions ("{?q}", "{&q}", "{;p}") are dropped.
func SuggestURLPattern(tmpl string) string {
	return templateExpr.ReplaceAllStringFunc(tmpl, func(expr string) string {
		m := templateExpr.FindStringSubmatch(expr)
		op, vars := m[1], m[2]
		name, _, _ := strings.Cut(vars, ",")
		name, _, _ = strings.Cut(name, ":") // prefix modifier
		name = strings.TrimSuffix(name, "*")
		name = notIdentChar.ReplaceAllString(name, "_")
		if name == "" || (name[0] >= '0' && name[0] <= '9') {
			name = "_" + name
		}
		switch op {
		case "":
			return ":" + name
		case "/", ".":
			return op + ":" + name
		case "+", "#":
			return "*"
		default:
			return ""
		}
	})
}
