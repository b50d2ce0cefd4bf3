package hub

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mercurectl/mercurectl/internal/token"
)

// The tests of this file run on the bubble's fake clock (see
// bubble_test.go): each checks the exact instant something happens, one
// nanosecond before and at it, and none takes real time.

// sleepUntil sleeps until t by the bubble's clock, then until every
// goroutine of the bubble is blocked, so that what was due at t has been
// done and read.
func sleepUntil(t time.Time) {
	time.Sleep(time.Until(t))
	synctest.Wait()
}

// wireAt returns what the stream holds at t, and whether it ended by then.
func wireAt(s *confRaw, t time.Time) (string, bool) {
	sleepUntil(t)
	return s.snapshot()
}

// An idle stream gets ":\n" at once, then a comment line every heartbeat
// (docs/protocol.md#heartbeats).
func TestIdleStreamGetsACommentEveryHeartbeat(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const hb = 100 * time.Millisecond
		th := newBubbleHub(t, func(c *Config) { c.Heartbeat = hb })
		start := time.Now()
		s := confOpen(t, th, http.MethodGet, "match=t", bearer(th.accessToken(t, nil, []string{"*"})), "")
		for n := 1; n <= 5; n++ {
			due := start.Add(time.Duration(n) * hb)
			if wire, _ := wireAt(s, due.Add(-time.Nanosecond)); wire != strings.Repeat(":\n", n) {
				t.Fatalf("1ns before heartbeat %d the stream holds %q", n, wire)
			}
			if wire, _ := wireAt(s, due); wire != strings.Repeat(":\n", n+1) {
				t.Fatalf("at heartbeat %d the stream holds %q", n, wire)
			}
		}
	})
}

// An update resets the heartbeat timer: the next comment comes a whole
// heartbeat after the update, not at the next multiple of the heartbeat.
func TestUpdateResetsTheHeartbeat(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const hb = 400 * time.Millisecond
		th := newBubbleHub(t, func(c *Config) { c.Heartbeat = hb })
		tok := th.accessToken(t, []string{"*"}, []string{"*"})
		start := time.Now()
		s := confOpen(t, th, http.MethodGet, "match=t", bearer(tok), "")
		sleepUntil(start.Add(hb + hb/2))
		th.mustPublish(t, tok, url.Values{"topic": {"t"}, "id": {"u"}})
		published := time.Now()
		withUpdate := ":\n:\nid: u\ndata: \n\n"
		if wire, _ := wireAt(s, published.Add(hb-time.Nanosecond)); wire != withUpdate {
			t.Fatalf("1ns before a heartbeat after the update the stream holds %q, want %q", wire, withUpdate)
		}
		if wire, _ := wireAt(s, published.Add(hb)); wire != withUpdate+":\n" {
			t.Fatalf("a heartbeat after the update the stream holds %q, want %q", wire, withUpdate+":\n")
		}
	})
}

// With Heartbeat 0 an idle stream gets nothing after its first ":\n".
func TestNoHeartbeatWhenSwitchedOff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		th := newBubbleHub(t, func(c *Config) { c.Heartbeat, c.WriteTimeout = 0, 0 })
		start := time.Now()
		s := confOpen(t, th, http.MethodGet, "match=t", bearer(th.accessToken(t, nil, []string{"*"})), "")
		// (The token lives an hour.)
		if wire, ended := wireAt(s, start.Add(50*time.Minute)); wire != ":\n" || ended {
			t.Fatalf("50 minutes without heartbeats, the stream holds %q (ended %v)", wire, ended)
		}
	})
}

// A stream closes when its token expires: within the sweeper's tick before
// exp (1s with the default heartbeat), never after it; reconnecting with the
// expired token is then refused (docs/protocol.md#token-expiry).
func TestTokenExpiryClosesTheStream(t *testing.T) {
	t.Parallel()
	for _, g := range confGens {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				th := newBubbleHub(t, nil)
				const ttl, tick = 5 * time.Second, time.Second
				o := token.MintOptions{Format: token.FormatLegacy, Subscribe: []string{"*"}, TTL: ttl}
				if g.gen == gen08 {
					o.Format, o.Audience = token.FormatAccessToken, th.url
				}
				tok := mint(t, o)
				exp := confExpiry(t, tok)
				s := confOpen(t, th, http.MethodGet, g.query("t"), bearer(tok), "")
				id := th.mustPublish(t, g.pub(t, th, "*"), url.Values{"topic": {"t"}})
				if got := confIDs(s.events(t, 1)); got[0] != id {
					t.Fatalf("got %q before expiry", got)
				}
				if _, ended := wireAt(s, exp.Add(-tick-time.Nanosecond)); ended {
					t.Fatalf("the stream ended more than a tick (%v) before exp", tick)
				}
				if _, ended := wireAt(s, exp); !ended {
					t.Fatal("the stream is still open at exp")
				}
				sleepUntil(exp.Add(time.Nanosecond))
				resp, body := confDo(t, th, http.MethodGet, g.query("t"), bearer(tok), "")
				confStatus(t, "reconnect with the expired token", resp, body, http.StatusUnauthorized)
				if g.gen == gen08 {
					confChallenge(t, "reconnect", th, resp, "invalid_token")
				} else {
					confChallenge(t, "reconnect", th, resp, "-")
				}
			})
		})
	}
}

// WriteTimeout bounds the lifetime of every stream, randomised to 80-100%
// of it so that clients do not all come back at once, and checked every
// sweeper tick (a tenth of it): a 400ms timeout ends a stream between 280ms
// and 400ms after it opened.
func TestWriteTimeoutEndsTheStream(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const wt = 400 * time.Millisecond
		th := newBubbleHub(t, func(c *Config) { c.WriteTimeout, c.Anonymous = wt, true })
		start := time.Now()
		s := confOpen(t, th, http.MethodGet, "match=t", nil, "")
		if _, ended := wireAt(s, start.Add(wt*8/10-wt/10-time.Nanosecond)); ended {
			t.Fatal("the stream ended before 80% of the write timeout, less a tick")
		}
		if _, ended := wireAt(s, start.Add(wt)); !ended {
			t.Fatal("the stream is still open at the write timeout")
		}
	})
}

// A token verified by a clock other than the hub's (a verifier with its own
// Now) still gives the stream the lifetime it has left by that clock.
func TestExpiryFollowsTheVerifiersClock(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		// The verifier lives a year ahead of the hub.
		ahead := 365 * 24 * time.Hour
		verifierNow := func() time.Time { return time.Now().Add(ahead) }
		v, err := token.NewVerifier(token.VerifierConfig{Key: testKey, Now: verifierNow})
		if err != nil {
			t.Fatal(err)
		}
		th := newBubbleHub(t, func(c *Config) { c.SubscriberVerifier = v })
		tok := mint(t, token.MintOptions{Subscribe: []string{"*"}, TTL: 10 * time.Second, Now: verifierNow})
		start := time.Now()
		s := confOpen(t, th, http.MethodGet, "topic=t", bearer(tok), "")
		if _, ended := wireAt(s, start.Add(8*time.Second)); ended {
			t.Fatal("the stream ended early: the hub read exp on its own clock")
		}
		if _, ended := wireAt(s, start.Add(10*time.Second)); !ended {
			t.Fatal("the stream is still open when the token has expired by the verifier's clock")
		}
	})
}
