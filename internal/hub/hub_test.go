package hub

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/sse"
	"github.com/mercurectl/mercurectl/internal/token"
)

// streamPaths selects the stream paths the hub tests run on.
var streamPaths = flag.String("hub.paths", "both", "stream paths to run the hub tests on: both, parked or portable")

// testParking is the path of the current pass: every hub made by the test
// helpers (testConfig) parks its idle streams, or keeps a goroutine per
// stream.
var testParking atomic.Bool

// TestMain runs the whole suite once per stream path: on Linux, once with
// idle streams parked and once on the net/http path, so that both are held
// to the same tests. Clients must see no difference.
func TestMain(m *testing.M) {
	flag.Parse()
	goleak.VerifyTestMain(pathPasses{m})
}

type pathPasses struct{ m *testing.M }

func (p pathPasses) Run() int {
	passes := []bool{true, false}
	switch {
	case *streamPaths == "parked":
		passes = []bool{true}
	case *streamPaths == "portable":
		passes = []bool{false}
	case *streamPaths != "both":
		fmt.Fprintf(os.Stderr, "-hub.paths %q: want both, parked or portable\n", *streamPaths)
		return 2
	}
	// Parking is Linux-only; listing or fuzzing needs one pass.
	if !parkingSupported || flag.Lookup("test.fuzz").Value.String() != "" || flag.Lookup("test.list").Value.String() != "" {
		passes = passes[:1]
	}
	code := 0
	for _, parked := range passes {
		testParking.Store(parked && parkingSupported)
		name := "portable (a goroutine per stream)"
		if testParking.Load() {
			name = "parked"
		}
		fmt.Fprintf(os.Stderr, "hub tests with %s streams\n", name)
		if c := p.m.Run(); c != 0 {
			code = c
		}
	}
	return code
}

// testConfig sets what every test hub shares: the stream path of the pass.
func testConfig(cfg *Config) {
	cfg.ParkIdle = testParking.Load()
}

// testKey is the HMAC secret of test hubs.
var testKey = []byte("!ChangeThisMercureHubJWTSecretKey!")

// testHub is a hub served over real HTTP on 127.0.0.1 (newTestHub), or
// inside a synctest bubble (newBubbleHub).
type testHub struct {
	h     *Hub
	srv   *httptest.Server // nil in a bubble
	url   string           // the hub URL
	store history.Store
	// client reaches the hub; nil means http.DefaultClient.
	client *http.Client
}

// httpClient is the client that reaches th.
func (th *testHub) httpClient() *http.Client {
	if th.client != nil {
		return th.client
	}
	return http.DefaultClient
}

// newTestConfig is the configuration of test hubs at hubURL: a memory
// store, the test key for publishers and subscribers, and the stream path of
// the pass.
func newTestConfig(tb testing.TB, hubURL string) Config {
	tb.Helper()
	v, err := token.NewVerifier(token.VerifierConfig{Key: testKey})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Store = history.NewMemory(history.Retention{}, nil)
	cfg.PublisherVerifier, cfg.SubscriberVerifier = v, v
	testConfig(&cfg)
	// The hub's resource identifier is its own URL, as serve pins it.
	cfg.ResourceIdentifier = hubURL
	return cfg
}

func newTestHub(tb testing.TB, mod func(*Config)) *testHub {
	tb.Helper()
	srv := httptest.NewUnstartedServer(nil)
	cfg := newTestConfig(tb, "http://"+srv.Listener.Addr().String()+Path)
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		srv.Close()
		tb.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	th := &testHub{h: h, srv: srv, url: srv.URL + Path, store: cfg.Store}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		srv.CloseClientConnections()
		srv.Close()
		_ = h.Close()
		_ = cfg.Store.Close()
	})
	return th
}

// mint signs a token with the test key.
func mint(tb testing.TB, o token.MintOptions) string {
	tb.Helper()
	if o.Key == nil {
		o.Key = testKey
	}
	if o.TTL == 0 && o.Format == token.FormatAccessToken {
		o.TTL = time.Hour
	}
	s, err := token.Mint(o)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// legacyToken grants publish and subscribe on the given selectors.
func legacyToken(tb testing.TB, publish, subscribe []string) string {
	return mint(tb, token.MintOptions{Format: token.FormatLegacy, Publish: publish, Subscribe: subscribe, TTL: time.Hour})
}

// accessToken is a draft-08 token for the test hub's resource identifier.
func (th *testHub) accessToken(tb testing.TB, publish, subscribe []string) string {
	return mint(tb, token.MintOptions{Format: token.FormatAccessToken, Publish: publish, Subscribe: subscribe, Audience: th.url})
}

// publish posts a form with an optional bearer token.
func (th *testHub) publish(tb testing.TB, tok string, form url.Values) (*http.Response, string) {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodPost, th.url, strings.NewReader(form.Encode()))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := th.httpClient().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// mustPublish publishes and fails the test unless the hub says 200.
func (th *testHub) mustPublish(tb testing.TB, tok string, form url.Values) string {
	tb.Helper()
	resp, body := th.publish(tb, tok, form)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("publish %v: %d %s", form, resp.StatusCode, body)
	}
	return body
}

// stream is an open subscription read by our SSE reader.
type stream struct {
	resp     *http.Response
	events   chan sse.Event
	comments chan string
	errc     chan error
	cancel   context.CancelFunc
}

// subscribe opens a subscription with a raw query and optional headers.
// It returns once the response headers are in: the subscription is live.
func (th *testHub) subscribe(tb testing.TB, query string, hdr http.Header) (*stream, *http.Response) {
	tb.Helper()
	ctx, cancel := context.WithCancel(tb.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, th.url+"?"+query, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := th.httpClient().Do(req)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		cancel()
		return nil, resp
	}
	s := &stream{resp: resp, events: make(chan sse.Event, 1024), comments: make(chan string, 1024), errc: make(chan error, 1), cancel: cancel}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := sse.NewReader(bufio.NewReader(resp.Body), sse.ReaderOptions{OnComment: func(c string) {
			select {
			case s.comments <- c:
			default:
			}
		}})
		for {
			ev, err := r.Next()
			if err != nil {
				s.errc <- err
				close(s.events)
				return
			}
			s.events <- ev
		}
	}()
	tb.Cleanup(func() {
		cancel()
		_ = resp.Body.Close()
		<-done
	})
	return s, resp
}

// next waits for the next event.
func (s *stream) next(tb testing.TB) sse.Event {
	tb.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			tb.Fatalf("stream ended: %v", <-s.errc)
		}
		return ev
	case <-time.After(5 * time.Second):
		tb.Fatal("no event within 5s")
	}
	return sse.Event{}
}

// none asserts that no event arrives within d.
func (s *stream) none(tb testing.TB, d time.Duration) {
	tb.Helper()
	select {
	case ev, ok := <-s.events:
		if ok {
			tb.Fatalf("unexpected event %+v", ev)
		}
	case <-time.After(d):
	}
}

// waitComment waits for a comment with the given text.
func (s *stream) waitComment(tb testing.TB, text string) {
	tb.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case c := <-s.comments:
			if strings.TrimSpace(c) == text {
				return
			}
		case <-deadline:
			tb.Fatalf("no comment %q within 5s", text)
		}
	}
}

// closed waits for the hub to end the stream.
func (s *stream) closed(tb testing.TB, within time.Duration) {
	tb.Helper()
	deadline := time.After(within)
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return
			}
		case <-deadline:
			tb.Fatalf("stream still open after %v", within)
		}
	}
}

func bearer(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}
