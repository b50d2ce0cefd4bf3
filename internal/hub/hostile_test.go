package hub

// Tests of what a hostile client may try over HTTP: each one failed
// against the hub before its fix.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/history/bolt"
	"github.com/mercurectl/mercurectl/internal/history/redisstore"
	"github.com/mercurectl/mercurectl/internal/history/redisstore/redistest"
)

// signRawClaims signs claims given as JSON text with the test key, so that
// they may hold a member twice.
func signRawClaims(tb testing.TB, header, claims string) string {
	tb.Helper()
	b64 := base64.RawURLEncoding
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(claims))
	sig, err := jwt.SigningMethodHS256.Sign(input, testKey)
	if err != nil {
		tb.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

func TestTokensWithDuplicateMembersAreRefused(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	for name, claims := range map[string]string{
		"legacy claim twice":    `{"mercure":{"publish":[]},"mercure":{"publish":["*"]}}`,
		"legacy member twice":   `{"mercure":{"publish":[],"publish":["*"]}}`,
		"access token topic":    `{"iss":"mercurectl","aud":"` + th.url + `","exp":4102444800,"authorization_details":[{"type":"https://mercure.rocks/authorization-detail","actions":["publish"],"topics":[{"match":"https://example.com/a","match":"*"}]}]}`,
		"access token audience": `{"iss":"mercurectl","aud":"https://elsewhere.example","aud":"` + th.url + `","exp":4102444800,"authorization_details":[{"type":"https://mercure.rocks/authorization-detail","actions":["publish"],"topics":[{"match":"*"}]}]}`,
	} {
		typ := "JWT"
		if name[:6] == "access" {
			typ = "at+jwt"
		}
		tok := signRawClaims(t, `{"alg":"HS256","typ":"`+typ+`"}`, claims)
		resp, body := th.publish(t, tok, url.Values{"topic": {"https://example.com/a"}, "data": {"x"}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: publish got %d %q, want 401", name, resp.StatusCode, body)
		}
	}
	if n := len(confStored(t, th)); n != 0 {
		t.Fatalf("%d updates stored, want none", n)
	}
}

// transports opens one empty store of each kind (Redis only where
// redis-server is installed; redistest decides whether its absence skips or
// fails).
func transports(t *testing.T) map[string]func(*testing.T) history.Store {
	return map[string]func(*testing.T) history.Store{
		"memory": func(*testing.T) history.Store { return history.NewMemory(history.Retention{}, nil) },
		"bolt": func(t *testing.T) history.Store {
			s, err := bolt.Open(filepath.Join(t.TempDir(), "h.db"), bolt.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"redis": func(t *testing.T) history.Store {
			srv := redistest.Start(t, "")
			s, err := redisstore.Open(t.Context(), srv.DSN(), redisstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
}

func TestFieldCapsAreTheSameOnEveryTransport(t *testing.T) {
	t.Parallel()
	for name, open := range transports(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			th := newTestHub(t, func(c *Config) { c.Store = open(t); c.Anonymous = true })
			tok := legacyToken(t, []string{"*"}, []string{"*"})
			long := strings.Repeat("i", MaxIDLength+1)
			for _, tc := range []struct {
				name string
				form url.Values
				want int
			}{
				{"id at the cap", url.Values{"topic": {"t"}, "id": {long[:MaxIDLength]}}, http.StatusOK},
				{"id over the cap", url.Values{"topic": {"t"}, "id": {long}}, http.StatusRequestEntityTooLarge},
				{"id far over the cap", url.Values{"topic": {"t"}, "id": {strings.Repeat("i", 40000)}}, http.StatusRequestEntityTooLarge},
				{"type at the cap", url.Values{"topic": {"t"}, "type": {long[:MaxTypeLength]}}, http.StatusOK},
				{"type over the cap", url.Values{"topic": {"t"}, "type": {long}}, http.StatusRequestEntityTooLarge},
				{"topic over the cap", url.Values{"topic": {long}}, http.StatusRequestEntityTooLarge},
			} {
				resp, body := th.publish(t, tok, tc.form)
				if resp.StatusCode != tc.want {
					t.Errorf("%s: %d %.80q, want %d", tc.name, resp.StatusCode, body, tc.want)
				}
			}
			if n := len(confStored(t, th)); n != 2 {
				t.Errorf("%d updates stored, want the 2 accepted ones", n)
			}
			// A cursor longer than any id is unknown, not an error.
			s, resp := th.subscribe(t, "topic=t", http.Header{"Last-Event-ID": {strings.Repeat("c", 40000)}})
			if s == nil {
				t.Fatalf("subscribe with a long cursor: %d", resp.StatusCode)
			}
			if got := resp.Header.Get("Last-Event-ID"); got != "earliest" {
				t.Errorf("response cursor %q, want earliest", got)
			}
			// The same cap on subscription selectors, in both generations.
			for _, q := range []string{"topic=" + long, "match=" + long} {
				if s, resp := th.subscribe(t, q, nil); s != nil || resp.StatusCode != http.StatusBadRequest {
					t.Errorf("subscribe %.10s…: %d, want 400", q, resp.StatusCode)
				}
			}
		})
	}
}

// failingScanStore fails every Scan after it returned `after` updates, as
// a damaged history file does.
type failingScanStore struct {
	history.Store
	after int
}

var errDamaged = errors.New("history file is corrupt: page 7")

func (s *failingScanStore) Scan(ctx context.Context, after, until uint64, fn func(*history.Update) error) error {
	n := 0
	err := s.Store.Scan(ctx, after, until, func(u *history.Update) error {
		if n == s.after {
			return errDamaged
		}
		n++
		return fn(u)
	})
	return err
}

func TestReplayEndsCleanlyWhenTheStoreFails(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	th := newTestHub(t, func(c *Config) {
		c.Store = &failingScanStore{Store: history.NewMemory(history.Retention{}, nil), after: 2}
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	tok := legacyToken(t, []string{"*"}, []string{"*"})
	for i := range 4 {
		th.mustPublish(t, tok, url.Values{"topic": {"t"}, "id": {fmt.Sprint("u", i)}})
	}
	s, resp := th.subscribe(t, "topic=t&lastEventID=earliest", bearer(tok))
	if s == nil {
		t.Fatalf("subscribe: %d", resp.StatusCode)
	}
	if a, b := s.next(t).ID, s.next(t).ID; a != "u0" || b != "u1" {
		t.Fatalf("replayed %s %s, want u0 u1", a, b)
	}
	s.closed(t, 5*time.Second)
	if err := <-s.errc; !errors.Is(err, io.EOF) {
		t.Errorf("the stream ended with %v, want a clean end (EOF)", err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "page 7") {
		t.Errorf("no ERROR log naming the failure; logs: %s", logs.String())
	}
}

// TestSubscriberThatStopsReadingIsDroppedAndLogged opens a subscription on
// a connection that never reads, fills the kernel buffers with updates, and
// expects the hub to drop it after the dispatch timeout, with an info log
// naming the subscriber and the reason, and the metric counted.
func TestSubscriberThatStopsReadingIsDroppedAndLogged(t *testing.T) {
	t.Parallel()
	for _, park := range []bool{true, false} {
		t.Run(fmt.Sprint("park=", park), func(t *testing.T) {
			t.Parallel()
			testStuckSubscriberDropped(t, park)
		})
	}
}

func testStuckSubscriberDropped(t *testing.T, park bool) {
	var logs lockedBuffer
	th := newTestHub(t, func(c *Config) {
		c.Anonymous = true
		c.ParkIdle = park
		c.DispatchTimeout = 200 * time.Millisecond
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	conn, err := net.Dial("tcp", th.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := io.WriteString(conn, "GET "+Path+"?topic=t HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Wait until the subscription is registered.
	deadline := time.Now().Add(5 * time.Second)
	for th.h.Subscribers() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the subscription was not registered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	tok := legacyToken(t, []string{"*"}, nil)
	data := strings.Repeat("x", 256<<10)
	for i := 0; i < 200 && th.h.Subscribers() > 0; i++ {
		th.mustPublish(t, tok, url.Values{"topic": {"t"}, "data": {data}})
	}
	for th.h.Subscribers() > 0 {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatal("the subscriber that stopped reading is still connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	out := logs.String()
	if !strings.Contains(out, `level=INFO msg="subscriber dropped: it stopped reading" subscriber=urn:uuid:`) ||
		!strings.Contains(out, "reason=dispatch_timeout") {
		t.Errorf("no drop log with the subscriber id and reason; logs:\n%.2000s", out)
	}
	mfs, err := th.h.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "mercure_subscribers_dropped_total" {
			for _, m := range mf.GetMetric() {
				found = found || m.GetCounter().GetValue() >= 1
			}
		}
	}
	if !found {
		t.Error("mercure_subscribers_dropped_total not counted")
	}
}

// failingAppendStore refuses every append, as a store on a full disk does.
type failingAppendStore struct{ *history.Memory }

func (failingAppendStore) Append(context.Context, *history.Update) error {
	return fmt.Errorf("commit history: no space left on device: %w", history.ErrUnavailable)
}

func TestStoreFailuresAreLoggedOncePerInterval(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	th := newTestHub(t, func(c *Config) {
		c.Store = failingAppendStore{history.NewMemory(history.Retention{}, nil)}
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	tok := legacyToken(t, []string{"*"}, nil)
	for range 20 {
		resp, body := th.publish(t, tok, url.Values{"topic": {"t"}})
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("publish: %d %q, want 503", resp.StatusCode, body)
		}
	}
	if n := strings.Count(logs.String(), "the history store refused an update"); n != 1 {
		t.Fatalf("%d log lines for 20 failures, want 1; logs:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "no space left on device") {
		t.Errorf("the log does not say why: %s", logs.String())
	}
}

func TestSubscribersBeyondTheCapGet503AndPublishersStillGetThrough(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Anonymous = true; c.MaxSubscribers = 3 })
	for range 3 {
		if s, resp := th.subscribe(t, "topic=t", nil); s == nil {
			t.Fatalf("subscribe under the cap: %d", resp.StatusCode)
		}
	}
	for _, q := range []string{"topic=t", "match=t"} {
		s, resp := th.subscribe(t, q, nil)
		if s != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("subscribe over the cap: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	th.mustPublish(t, legacyToken(t, []string{"*"}, nil), url.Values{"topic": {"t"}})
	mfs, err := th.h.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "mercure_subscriptions_refused_total" {
			if v := mf.GetMetric()[0].GetCounter().GetValue(); v != 2 {
				t.Errorf("refused = %v, want 2", v)
			}
			return
		}
	}
	t.Error("no mercure_subscriptions_refused_total metric")
}
