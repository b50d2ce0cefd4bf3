package match

import (
	"regexp"
	"strings"
	"testing"

	"github.com/yosida95/uritemplate/v3"
)

// regexpTemplate is the matcher templates had before template.go: the
// uritemplate library's regular expression, or nil where Compile07 made the
// selector exact (not a template with an expression, or a regexp RE2 refuses).
func regexpTemplate(s string) (re *regexp.Regexp) {
	if strings.IndexByte(s, '{') < 0 || len(s) > MaxPatternLength {
		return nil
	}
	tmpl, err := uritemplate.New(s)
	if err != nil || len(tmpl.Varnames()) == 0 {
		return nil
	}
	defer func() {
		if recover() != nil {
			re = nil
		}
	}()
	return tmpl.Regexp()
}

// checkTemplateAgrees fails when compileTemplate and the regexp disagree on
// whether sel is a template or on whether it matches topic.
func checkTemplateAgrees(t *testing.T, sel, topic string) {
	t.Helper()
	re := regexpTemplate(sel)
	tm := compileTemplate(sel)
	if (re == nil) != (tm == nil) {
		t.Fatalf("template %q: regexp %v, compiled %v", sel, re != nil, tm != nil)
	}
	if re == nil {
		return
	}
	if want, got := re.MatchString(topic), tm.match(topic); got != want {
		t.Fatalf("template %q, topic %q: match %v, regexp %v (%s)", sel, topic, got, want, re)
	}
}

func TestTemplateMatchesLikeTheRegexp(t *testing.T) {
	t.Parallel()
	many := func(n int, op string) string {
		return "https://example.com/{" + op + strings.Repeat("v,", n-1) + "v}"
	}
	templates := []string{
		"https://example.com/books/{id}", "https://example.com/{+path}", "https://example.com/books{?page,size}",
		"https://example.com{/a,b}", "{#frag}", "{.ext}", "{;x,y}", "{&a}", "{/a,b*}", "{a*,b}", "{a,b*}",
		"{var:3}", "{list*}", "{?q*}", "{;x*}", "x{a}y{b}z", "{a}{b}", "{a}%41{b}", "%7B{x}%7D",
		"/.well-known/mercure/subscriptions/{topic}/{subscriber}", "{/a,b,c}", "{.a,b}", "{a%20b}",
		"{a.b}", "{a..b}", "{.a}", "{a.}", "{a:0}", "{a:10000}", "{a:05}", "{a:9999}", "{", "}", "{}",
		"{a", "a b{x}", "{=a}", "{|a}", "{a,}", "{,a}", "{a*:3}", "{a:3*}", "\xff{x}", "{x}\xef\xbf\xbd",
		"é{x}", "{x}é", many(1001, ""), many(1002, ""), many(1001, "/"), many(1002, "/"), many(1500, "/") + "*",
		many(1000, ";") + many(1000, "?")[19:],
	}
	topics := []string{
		"", "https://example.com/books/1", "https://example.com/books/", "https://example.com/books/1/x",
		"https://example.com/a/b/c", "https://example.com/books?page=2", "https://example.com/books?page=2&size=3",
		"https://example.com/books?page=2&size=3&x=4", "https://example.com/x/y", "https://example.com/x/y/z",
		"#a,b", "#", ".a.b", ";x=1;y=2", ";x;y;z", "&a=1", "/a/b", "/a/b=c/d", "/a/b/c/d", "a,b", "a=b,c",
		"a,b=c", "abc", "abcd", "xaybz", "ab", "a%41b", "%7Bx%7D", "/.well-known/mercure/subscriptions/a/b",
		"/x/y/z", ".a", "a.b", "é", "xé", "%zz", "%4", "%41", "%", "a%2", "https://example.com/books/1\n",
		"https://example.com/" + strings.Repeat("v,", 1100), "https://example.com/" + strings.Repeat("/v", 1100),
		strings.Repeat("a", 2000),
	}
	for _, sel := range templates {
		for _, topic := range append(topics, sel) {
			checkTemplateAgrees(t, sel, topic)
		}
	}
}

// FuzzTemplateMatchesLikeTheRegexp checks that compileTemplate accepts
// exactly the templates Compile07 used to (through the uritemplate library
// and RE2) and matches exactly the same topics.
func FuzzTemplateMatchesLikeTheRegexp(f *testing.F) {
	for _, s := range []string{
		"https://example.com/books/{id}", "https://example.com/{+path}", "{?q,r}", "{#frag}", "{/a,b*}",
		"{;x,y}", "{&a}", "{.ext}", "{var:3}", "{list*}", "{a}{b}", "x{a}y", "{/a,b}", "{a%41}",
	} {
		f.Add(s, "https://example.com/books/1")
		f.Add(s, "/a/b;x=1?q=2&r=3#f")
	}
	f.Fuzz(func(t *testing.T, sel, topic string) {
		checkTemplateAgrees(t, sel, topic)
	})
}
