package hub

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestOneMeaningOfATopicAcrossGenerations publishes the spellings by which a
// topic can mean one thing to a grant or the reserved-namespace check and
// another to a URL pattern, with each generation's publisher, and listens
// with each generation's subscribers: every such publish is refused, and no
// subscriber receives it (docs/protocol.md#publish-topics).
func TestOneMeaningOfATopicAcrossGenerations(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Subscriptions = true })
	host := strings.TrimPrefix(th.srv.URL, "http://")
	const sentinel = "https://example.com/sentinel"

	// Subscribers of both generations on the targets of the attacks.
	sub07 := legacyToken(t, nil, []string{"*"})
	sub08 := th.accessToken(t, nil, []string{"*"})
	subscribers := map[string]*stream{}
	for name, q := range map[string]struct {
		query string
		tok   string
	}{
		"07 template on the reserved namespace":   {"topic=" + url.QueryEscape("/.well-known/mercure/subscriptions{/rest*}"), sub07},
		"07 template on private":                  {"topic=" + url.QueryEscape("https://example.com/private/{x}"), sub07},
		"07 exact on private":                     {"topic=" + url.QueryEscape("https://example.com/private/x"), sub07},
		"08 urlpattern on the reserved namespace": {"match_urlpattern=" + url.QueryEscape("/.well-known/mercure/subscriptions/*"), sub08},
		"08 urlpattern on private":                {"match_urlpattern=" + url.QueryEscape("https://example.com/private/*"), sub08},
		"08 exact on private":                     {"match=" + url.QueryEscape("https://example.com/private/x"), sub08},
	} {
		sel := "topic="
		if strings.HasPrefix(q.query, "match") {
			sel = "match="
		}
		s, resp := th.subscribe(t, q.query+"&"+sel+url.QueryEscape(sentinel), bearer(q.tok))
		if s == nil {
			t.Fatalf("%s: subscribe: %d", name, resp.StatusCode)
		}
		subscribers[name] = s
	}

	reservedSpellings := []string{
		"http://" + host + "/.well-known/./mercure/subscriptions/exact/x/FORGED",
		"http://" + host + "/.well-known/%2E/mercure/subscriptions/exact/x/FORGED",
		"http://" + host + "/x/%2e%2e/.well-known/mercure/subscriptions/exact/x/FORGED",
		"http://" + host + `/.well-known\mercure\subscriptions\exact\x\FORGED`,
		"/.well-known/./mercure/subscriptions/exact/x/FORGED",
		"./mercure/subscriptions/exact/x/FORGED",
		"https://elsewhere.example/.well-known/mercure/subscriptions/exact/x/FORGED",
	}
	escapeSpellings := []string{
		"https://example.com/public/../private/x",
		"https://example.com/public/%2e%2e/private/x",
		"https://example.com/public/.%2E/private/x",
		`https://example.com/public\..\private\x`,
	}
	publishers := map[string]string{
		"07 publish *":                   legacyToken(t, []string{"*"}, nil),
		"07 publish public/{+rest}":      legacyToken(t, []string{"https://example.com/public/{+rest}"}, nil),
		"08 publish *":                   th.accessToken(t, []string{"*"}, nil),
		"08 publish urlpattern public/*": confAccess(t, confAccessClaims(th, confDetail([]string{"publish"}, confTopic("https://example.com/public/*", "urlpattern")))),
	}
	for pname, tok := range publishers {
		spellings := escapeSpellings
		if strings.HasSuffix(pname, "*") {
			spellings = append(append([]string(nil), reservedSpellings...), escapeSpellings...)
		}
		for _, topic := range spellings {
			for _, typ := range []string{"", "mercure"} {
				resp, body := th.publish(t, tok, url.Values{"topic": {topic}, "type": {typ}, "data": {"FORGED"}})
				if resp.StatusCode < 400 || resp.StatusCode >= 500 {
					t.Errorf("%s published %q (type %q): %d %q, want a refusal", pname, topic, typ, resp.StatusCode, body)
				}
			}
		}
	}
	for _, u := range confStored(t, th) {
		if u.Data == "FORGED" {
			t.Errorf("stored a refused update: %v", u.Topics)
		}
	}

	// The canonical spellings are accepted and reach the subscribers of
	// both generations alike.
	th.mustPublish(t, publishers["07 publish *"], url.Values{"topic": {"https://example.com/private/x"}, "data": {"canonical"}})
	th.mustPublish(t, publishers["07 publish *"], url.Values{"topic": {sentinel}, "data": {"sentinel"}})
	for name, s := range subscribers {
		sawCanonical := false
		deadline := time.After(5 * time.Second)
	read:
		for {
			select {
			case ev, ok := <-s.events:
				if !ok {
					t.Fatalf("%s: stream ended", name)
				}
				switch {
				case strings.Contains(ev.Data, "FORGED"):
					t.Errorf("%s received a forged update: %+v", name, ev)
				case ev.Data == "canonical":
					sawCanonical = true
				case ev.Data == "sentinel":
					break read
				}
			case <-deadline:
				t.Fatalf("%s: no sentinel within 5s", name)
			}
		}
		if want := strings.Contains(name, "private"); sawCanonical != want {
			t.Errorf("%s: received the canonical update: %v, want %v", name, sawCanonical, want)
		}
	}
}
