package hub

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mercurectl/mercurectl/internal/token"
)

// logSink collects the JSON log lines of a hub.
type logSink struct{ lockedBuffer }

// records parses the lines logged so far.
func (l *logSink) records(tb testing.TB) []map[string]any {
	tb.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			tb.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// wait returns the first record for which match holds, waiting up to 10s for
// it to be written (subscription lines come when the stream has ended).
func (l *logSink) wait(tb testing.TB, what string, match func(map[string]any) bool) map[string]any {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, r := range l.records(tb) {
			if match(r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no log line %s within 10s; the log:\n%s", what, l.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newLoggedHub is a test hub that logs JSON at info into the returned sink.
func newLoggedHub(tb testing.TB, mod func(*Config)) (*testHub, *logSink) {
	tb.Helper()
	sink := &logSink{}
	th := newTestHub(tb, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(sink, nil))
		c.AccessLog = true
		if mod != nil {
			mod(c)
		}
	})
	return th, sink
}

// testClock is a settable clock for Config.Now and the verifiers.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *testClock) now() time.Time { return time.Unix(0, c.ns.Load()) }

// otherKey signs the tokens that must not verify.
var otherKey = []byte("another-secret-that-is-not-the-hub-key")

// challengeDescription returns the error_description of a WWW-Authenticate
// header ("" when absent).
func challengeDescription(h string) string {
	_, rest, ok := strings.Cut(h, `error_description="`)
	if !ok {
		return ""
	}
	d, _, _ := strings.Cut(rest, `"`)
	return d
}

// Every refusal says precisely why: in the log line (at info, JSON), in the
// draft-07 plain-text body, and in the draft-08 WWW-Authenticate
// error_description; and none of them quotes the token or a key.
func TestRefusalReasons(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	subKey := []byte("the-subscriber-key-0123456789abcdef")
	pubV, err := token.NewVerifier(token.VerifierConfig{Key: testKey, Issuers: []string{"https://idp.example"}, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	subV, err := token.NewVerifier(token.VerifierConfig{Key: subKey, Issuers: []string{"https://idp.example"}, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	const aud = "https://b.example/.well-known/mercure"
	hubConfig := func(c *Config) {
		c.PublisherVerifier, c.SubscriberVerifier = pubV, subV
		c.ResourceIdentifier = aud
		c.PublishOrigins = []string{"https://app.example"}
	}
	past := func() time.Time { return clock.now().Add(-63 * time.Minute) }
	legacy := func(key []byte, o token.MintOptions) string {
		o.Key, o.Format, o.Now = key, token.FormatLegacy, cmpOr(o.Now, clock.now)
		return mint(t, o)
	}
	access := func(key []byte, o token.MintOptions) string {
		o.Key, o.Format, o.Now = key, token.FormatAccessToken, cmpOr(o.Now, clock.now)
		if o.Audience == "" {
			o.Audience = aud
		}
		if o.Issuer == "" {
			o.Issuer = "https://idp.example"
		}
		if o.TTL == 0 {
			o.TTL = time.Hour
		}
		return mint(t, o)
	}

	type req struct {
		method, query, body string
		hdr                 http.Header
	}
	cases := []struct {
		name   string
		gen    generation
		req    req
		status int
		reason string // the whole reason, or its start when it ends with "…"
		tok    string
	}{
		{name: "expired subscriber token", gen: gen07, status: http.StatusUnauthorized,
			tok:    legacy(subKey, token.MintOptions{Subscribe: []string{"*"}, TTL: time.Hour, Now: past}),
			req:    req{method: http.MethodGet, query: "topic=t"},
			reason: "invalid token: token expired 3m ago (exp …"},
		{name: "expired access token", gen: gen08, status: http.StatusUnauthorized,
			tok:    access(subKey, token.MintOptions{Subscribe: []string{"*"}, Now: past}),
			req:    req{method: http.MethodGet, query: "match=t"},
			reason: "invalid token: token expired 3m ago (exp …"},
		{name: "subscriber token signed with another key", gen: gen07, status: http.StatusUnauthorized,
			tok:    legacy(otherKey, token.MintOptions{Subscribe: []string{"*"}}),
			req:    req{method: http.MethodGet, query: "topic=t"},
			reason: "invalid token: signature does not verify with the subscriber key"},
		{name: "publisher token signed with the subscriber key", gen: gen08, status: http.StatusUnauthorized,
			tok:    access(subKey, token.MintOptions{Publish: []string{"*"}}),
			req:    req{method: http.MethodPost, body: "topic=t&data=secret-data"},
			reason: "invalid token: signature does not verify with the publisher key"},
		{name: "audience of another hub", gen: gen08, status: http.StatusUnauthorized,
			tok:    access(subKey, token.MintOptions{Subscribe: []string{"*"}, Audience: "https://a.example/.well-known/mercure"}),
			req:    req{method: http.MethodGet, query: "match=t"},
			reason: "invalid token: audience https://a.example/.well-known/mercure is not https://b.example/.well-known/mercure"},
		{name: "untrusted issuer", gen: gen08, status: http.StatusUnauthorized,
			tok:    access(subKey, token.MintOptions{Subscribe: []string{"*"}, Issuer: "https://evil.example"}),
			req:    req{method: http.MethodGet, query: "match=t"},
			reason: `invalid token: token issuer https://evil.example is not trusted; trusted: https://idp.example`},
		{name: "topic not granted, draft-07", gen: gen07, status: http.StatusForbidden,
			tok:    legacy(testKey, token.MintOptions{Publish: []string{"https://a.example/1"}}),
			req:    req{method: http.MethodPost, body: "topic=https://x.example/2&data=secret-data"},
			reason: "topic https://x.example/2 not granted by the publish claim (mercure.publish); it grants https://a.example/1"},
		{name: "topic not granted, draft-08", gen: gen08, status: http.StatusForbidden,
			tok:    access(testKey, token.MintOptions{Publish: []string{"https://a.example/1"}}),
			req:    req{method: http.MethodPost, body: "topic=https://x.example/2&data=secret-data"},
			reason: "topic https://x.example/2 not granted by the publish authorization details; it grants https://a.example/1 (exact)"},
		{name: "no publish grant at all", gen: gen07, status: http.StatusForbidden,
			tok:    legacy(testKey, token.MintOptions{Subscribe: []string{"*"}}),
			req:    req{method: http.MethodPost, body: "topic=https://x.example/2"},
			reason: "topic https://x.example/2 not granted by the publish claim (mercure.publish), which grants nothing"},
		{name: "cookie from an origin not allowed, draft-07", gen: gen07, status: http.StatusUnauthorized,
			req: req{method: http.MethodPost, body: "topic=t", hdr: http.Header{
				"Cookie": {cookie07 + "=" + legacy(testKey, token.MintOptions{Publish: []string{"*"}})},
				"Origin": {"https://evil.example"}}},
			reason: "cookie authorization refused: origin https://evil.example not in --publish-origin"},
		{name: "cookie from an origin not allowed, draft-08", gen: gen08, status: http.StatusBadRequest,
			req: req{method: http.MethodPost, body: "topic=t", hdr: http.Header{
				"Cookie": {cookie08 + "=" + access(testKey, token.MintOptions{Publish: []string{"*"}})},
				"Origin": {"https://evil.example"}}},
			reason: "cookie authorization refused: origin https://evil.example not in --publish-origin"},
		{name: "cookie without Origin or Referer", gen: gen07, status: http.StatusUnauthorized,
			req: req{method: http.MethodPost, body: "topic=t", hdr: http.Header{
				"Cookie": {cookie07 + "=" + legacy(testKey, token.MintOptions{Publish: []string{"*"}})}}},
			reason: "cookie authorization refused: the request has neither an Origin nor a Referer header"},
		{name: "no token, no anonymous subscribers", gen: gen07, status: http.StatusUnauthorized,
			req:    req{method: http.MethodGet, query: "topic=t"},
			reason: "authorization required: no token, and this hub does not accept anonymous subscribers"},
		{name: "no token to publish", gen: genUnknown, status: http.StatusUnauthorized,
			req:    req{method: http.MethodPost, body: "topic=t"},
			reason: "authorization required: no token (send it in an Authorization: Bearer header)"},
		{name: "not a bearer header", gen: genUnknown, status: http.StatusBadRequest,
			req:    req{method: http.MethodGet, query: "match=t", hdr: http.Header{"Authorization": {"Basic dXNlcjpwYXNzd29yZA=="}}},
			reason: `malformed Authorization header: want "Bearer <token>"`},
		{name: "another algorithm", gen: gen07, status: http.StatusUnauthorized,
			tok:    signRawJWT(t, `{"alg":"HS384"}`, `{"mercure":{"subscribe":["*"]}}`, subKey),
			req:    req{method: http.MethodGet, query: "topic=t"},
			reason: `invalid token: unexpected signing algorithm "HS384": this hub accepts HS256 only`},
		{name: "draft-07 token for a draft-08 subscription", gen: gen08, status: http.StatusUnauthorized,
			tok:    legacy(subKey, token.MintOptions{Subscribe: []string{"*"}}),
			req:    req{method: http.MethodGet, query: "match=t"},
			reason: "invalid token: draft-08 subscriptions need an access token (typ at+jwt)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			th, sink := newLoggedHub(t, hubConfig)
			hdr := http.Header{}
			for k, v := range tc.req.hdr {
				hdr[k] = v
			}
			if tc.tok != "" {
				hdr.Set("Authorization", "Bearer "+tc.tok)
			}
			resp, body := confDo(t, th, tc.req.method, tc.req.query, hdr, tc.req.body)
			body = strings.TrimSpace(body)
			confStatus(t, tc.name, resp, body, tc.status)
			matches := func(got string) bool {
				if w, ok := strings.CutSuffix(tc.reason, "…"); ok {
					return strings.HasPrefix(got, w)
				}
				return got == tc.reason
			}
			// The body says it in both generations (it is all that draft-07
			// clients get).
			if !matches(body) {
				t.Errorf("body %q, want %q", body, tc.reason)
			}
			challenge := resp.Header.Get("WWW-Authenticate")
			switch tc.gen {
			case gen07:
				if challenge != "" {
					t.Errorf("draft-07 reply with WWW-Authenticate %q", challenge)
				}
			case gen08:
				if d := challengeDescription(challenge); !matches(d) {
					t.Errorf("error_description %q (in %q), want %q", d, challenge, tc.reason)
				}
			}
			line := sink.wait(t, "for the request", func(r map[string]any) bool { return r["msg"] == "request" })
			if line["level"] != "INFO" || line["status"] != float64(tc.status) || line["method"] != tc.req.method || line["path"] != Path {
				t.Errorf("line %v", line)
			}
			if r, _ := line["reason"].(string); !matches(r) {
				t.Errorf("logged reason %q, want %q", r, tc.reason)
			}
			log := sink.String()
			for _, secret := range []string{tc.tok, string(testKey), string(subKey), string(otherKey), "secret-data"} {
				if secret != "" && strings.Contains(log, secret) {
					t.Fatalf("the log quotes a token, a key or the data: %s", log)
				}
			}
			if tc.tok != "" && strings.Contains(body+challenge, tc.tok[:30]) {
				t.Fatalf("the reply quotes the token")
			}
		})
	}
}

func cmpOr(f, g func() time.Time) func() time.Time {
	if f != nil {
		return f
	}
	return g
}

// signRawJWT builds a JWS with the given header and claims and an HMAC
// signature made with key, whatever algorithm the header claims.
func signRawJWT(tb testing.TB, header, claims string, key []byte) string {
	tb.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	input := enc([]byte(header)) + "." + enc([]byte(claims))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(input))
	return input + "." + enc(mac.Sum(nil))
}

// Without the access log, refusals still get their line (at info), and
// nothing else is logged per request.
func TestRefusalsLoggedWithoutAccessLog(t *testing.T) {
	t.Parallel()
	th, sink := newLoggedHub(t, func(c *Config) { c.AccessLog = false; c.Anonymous = true })
	th.mustPublish(t, legacyToken(t, []string{"*"}, nil), url.Values{"topic": {"t"}})
	resp, _ := th.publish(t, legacyToken(t, []string{"other"}, nil), url.Values{"topic": {"t"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d", resp.StatusCode)
	}
	line := sink.wait(t, "request refused", func(r map[string]any) bool { return r["msg"] == "request refused" })
	if line["level"] != "INFO" || line["status"] != float64(http.StatusForbidden) ||
		line["reason"] != "topic t not granted by the publish claim (mercure.publish); it grants other" {
		t.Errorf("line %v", line)
	}
	for _, r := range sink.records(t) {
		if r["msg"] == "request" {
			t.Errorf("an access line without the access log: %v", r)
		}
	}
}

// A publish's line has the update id and the topic count, never the data.
func TestPublishLogLine(t *testing.T) {
	t.Parallel()
	th, sink := newLoggedHub(t, nil)
	id := th.mustPublish(t, th.accessToken(t, []string{"*"}, nil), url.Values{
		"topic": {"https://example.com/a", "https://example.com/b"}, "data": {"do-not-log-this"},
	})
	line := sink.wait(t, "for the publish", func(r map[string]any) bool { return r["update"] == id })
	if line["msg"] != "request" || line["method"] != "POST" || line["status"] != float64(200) ||
		line["topics"] != float64(2) || line["protocol"] != "draft-08" || line["remote"] != "127.0.0.1" {
		t.Errorf("line %v", line)
	}
	if d, _ := line["duration"].(string); d == "" {
		t.Errorf("no duration: %v", line)
	}
	if strings.Contains(sink.String(), "do-not-log-this") {
		t.Errorf("the data is in the log: %s", sink.String())
	}
}

// The client address comes from X-Forwarded-For only when the peer is a
// trusted proxy, and then it is the nearest untrusted hop, not whatever the
// client wrote first.
func TestClientAddressBehindTrustedProxies(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name    string
		proxies []netip.Prefix
		xff     []string
		want    string
	}{
		{"no trusted proxy: the header is ignored", nil, []string{"203.0.113.9"}, "127.0.0.1"},
		{"from a trusted proxy", trusted, []string{"203.0.113.9"}, "203.0.113.9"},
		{"through two proxies", trusted, []string{"203.0.113.9, 10.1.2.3"}, "203.0.113.9"},
		{"a spoofed left part is skipped", trusted, []string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		{"several headers", trusted, []string{"198.51.100.1", "203.0.113.9, 10.0.0.1"}, "203.0.113.9"},
		{"garbage stops the walk", trusted, []string{"203.0.113.9, garbage, 10.0.0.1"}, "10.0.0.1"},
		{"IPv6 with a port", trusted, []string{"[2001:db8::1]:4711"}, "2001:db8::1"},
		{"no header", trusted, nil, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			th, sink := newLoggedHub(t, func(c *Config) { c.TrustedProxies = tc.proxies; c.Anonymous = true })
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, th.url+"/nope", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header["X-Forwarded-For"] = tc.xff
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			line := sink.wait(t, "for the request", func(r map[string]any) bool { return r["msg"] == "request" })
			if line["remote"] != tc.want {
				t.Errorf("remote %v, want %s", line["remote"], tc.want)
			}
		})
	}
}

// Each way a subscription ends is in its line: how long it lasted, its id,
// its selector count, and why it ended.
func TestSubscriptionEndReasons(t *testing.T) {
	t.Parallel()
	subLine := func(sink *logSink, t *testing.T) map[string]any {
		t.Helper()
		return sink.wait(t, "for the subscription", func(r map[string]any) bool { return r["msg"] == "request" && r["subscriber"] != nil })
	}
	check := func(t *testing.T, line map[string]any, end string, selectors int) {
		t.Helper()
		if line["end"] != end {
			t.Errorf("end %v, want %q (line %v)", line["end"], end, line)
		}
		if line["msg"] != "request" || line["method"] != "GET" || line["status"] != float64(200) ||
			line["selectors"] != float64(selectors) || line["level"] != "INFO" {
			t.Errorf("line %v", line)
		}
		if id, _ := line["subscriber"].(string); !strings.HasPrefix(id, "urn:uuid:") {
			t.Errorf("subscriber %v", line["subscriber"])
		}
		if _, ok := line["duration"].(string); !ok {
			t.Errorf("no duration in %v", line)
		}
	}

	t.Run("client gone", func(t *testing.T) {
		t.Parallel()
		th, sink := newLoggedHub(t, func(c *Config) { c.Anonymous = true })
		s, _ := th.subscribe(t, "match=a&match=b", nil)
		s.cancel()
		line := subLine(sink, t)
		check(t, line, "client gone", 2)
		if line["protocol"] != "draft-08" {
			t.Errorf("protocol %v", line["protocol"])
		}
	})

	t.Run("shutdown", func(t *testing.T) {
		t.Parallel()
		th, sink := newLoggedHub(t, func(c *Config) { c.Anonymous = true })
		th.subscribe(t, "topic=a", nil)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := th.h.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		line := subLine(sink, t)
		check(t, line, "shutdown", 1)
		if line["protocol"] != "draft-07" {
			t.Errorf("protocol %v", line["protocol"])
		}
	})

	// Time runs in a synctest bubble: the deadlines come exactly, at no
	// real cost.
	bubbleHub := func(t *testing.T, mod func(*Config)) (*testHub, *logSink) {
		t.Helper()
		sink := &logSink{}
		th := newBubbleHub(t, func(c *Config) {
			c.Logger, c.AccessLog = slog.New(slog.NewJSONHandler(sink, nil)), true
			mod(c)
		})
		return th, sink
	}

	t.Run("write timeout", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			th, sink := bubbleHub(t, func(c *Config) { c.Anonymous, c.WriteTimeout = true, time.Hour })
			th.subscribe(t, "match=a", nil)
			time.Sleep(time.Hour)
			line := subLine(sink, t)
			check(t, line, "write timeout", 1)
			// Randomised to 80-100% of the write timeout.
			if d, _ := time.ParseDuration(line["duration"].(string)); d < 48*time.Minute || d > time.Hour {
				t.Errorf("the subscription lasted %v", d)
			}
		})
	})

	t.Run("token expired", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			th, sink := bubbleHub(t, func(c *Config) { c.WriteTimeout = time.Hour })
			tok := mint(t, token.MintOptions{Subscribe: []string{"*"}, TTL: 10 * time.Minute})
			th.subscribe(t, "topic=a&topic=b&topic=c", bearer(tok))
			time.Sleep(10 * time.Minute)
			line := subLine(sink, t)
			check(t, line, "token expired", 3)
			if strings.Contains(sink.String(), tok) {
				t.Errorf("the token is in the log")
			}
		})
	})

	t.Run("slow reader", func(t *testing.T) {
		t.Parallel()
		th, sink := newLoggedHub(t, func(c *Config) {
			c.Anonymous, c.DispatchTimeout = true, 100*time.Millisecond
			c.MaxBodySize = 1 << 20
		})
		// A client that subscribes and then reads nothing, with a small
		// receive buffer: the hub's writes block, then time out.
		conn, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", th.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		_ = conn.(*net.TCPConn).SetReadBuffer(4096)
		if _, err := fmt.Fprintf(conn, "GET %s?match=slow HTTP/1.1\r\nHost: %s\r\n\r\n", Path, th.srv.Listener.Addr()); err != nil {
			t.Fatal(err)
		}
		// Wait for the response headers, so that the subscription is live.
		br := bufio.NewReader(conn)
		if status, err := br.ReadString('\n'); err != nil || !strings.Contains(status, "200") {
			t.Fatalf("status line %q: %v", status, err)
		}
		tok := legacyToken(t, []string{"*"}, nil)
		data := strings.Repeat("x", 900<<10)
		for i := 0; i < 64; i++ {
			if sink.has(t, func(r map[string]any) bool { return r["end"] != nil }) {
				break
			}
			th.mustPublish(t, tok, url.Values{"topic": {"slow"}, "data": {data}})
		}
		check(t, subLine(sink, t), "slow reader", 1)
	})
}

// has reports whether some record logged so far matches.
func (l *logSink) has(tb testing.TB, match func(map[string]any) bool) bool {
	tb.Helper()
	for _, r := range l.records(tb) {
		if match(r) {
			return true
		}
	}
	return false
}

// X-Forwarded-Proto changes the derived hub URL only from a trusted proxy.
func TestForwardedProtoFromTrustedProxiesOnly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		proxies []netip.Prefix
		want    string
	}{
		{"untrusted peer", nil, "http://"},
		{"trusted proxy", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, "https://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			th := newTestHub(t, func(c *Config) { c.TrustedProxies, c.ResourceIdentifier = tc.proxies, "" })
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, th.srv.URL+MetadataPath, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Forwarded-Proto", "https")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			var md struct{ Resource string }
			if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(md.Resource, tc.want) {
				t.Errorf("resource %q, want %s…", md.Resource, tc.want)
			}
		})
	}
}
