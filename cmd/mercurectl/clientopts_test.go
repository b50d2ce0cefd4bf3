package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mercurectl/mercurectl/internal/client"
	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/hub"
	"github.com/mercurectl/mercurectl/internal/match"
	"github.com/mercurectl/mercurectl/internal/token"
)

// clientTestKey is the HMAC key of the hubs of the client command tests.
const clientTestKey = "client-commands-test-key-0123456789"

// clientTestHub is our hub on a real HTTP server, with a memory history.
type clientTestHub struct {
	URL string // the hub URL
	srv *httptest.Server

	mu   sync.Mutex
	sent map[string]string // data field of each publish request, by its id field
}

// sentData returns the data field of the publish request with the id field
// id, exactly as the hub received it.
func (th *clientTestHub) sentData(id string) (string, bool) {
	th.mu.Lock()
	defer th.mu.Unlock()
	d, ok := th.sent[id]
	return d, ok
}

// record notes the data field of publish requests, then passes them on.
func (th *clientTestHub) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, err := io.ReadAll(r.Body)
			if err == nil {
				if form, err := url.ParseQuery(string(body)); err == nil && form.Has("id") {
					th.mu.Lock()
					th.sent[form.Get("id")] = form.Get("data")
					th.mu.Unlock()
				}
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		next.ServeHTTP(w, r)
	})
}

// newClientTestHub starts our hub (hub.New, memory store) on httptest, whose
// verifier has the clock of newTestFactory. anonymous lets subscribers
// without a token in.
func newClientTestHub(tb testing.TB, anonymous bool) *clientTestHub {
	tb.Helper()
	// The verifier's clock is the test factory's, so that the tokens minted
	// with it are valid (and the hub gives them the lifetime they have left
	// by that clock).
	now := func() time.Time { return fixedNow }
	v, err := token.NewVerifier(token.VerifierConfig{Key: []byte(clientTestKey), Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	store := history.NewMemory(history.Retention{}, nil)
	srv := httptest.NewUnstartedServer(nil)
	cfg := hub.DefaultConfig()
	cfg.Store, cfg.PublisherVerifier, cfg.SubscriberVerifier, cfg.Anonymous = store, v, v, anonymous
	cfg.ResourceIdentifier = "http://" + srv.Listener.Addr().String() + hub.Path
	h, err := hub.New(cfg)
	if err != nil {
		srv.Close()
		tb.Fatal(err)
	}
	th := &clientTestHub{sent: map[string]string{}}
	srv.Config.Handler = th.record(h)
	srv.Start()
	th.URL, th.srv = srv.URL+hub.Path, srv
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		srv.CloseClientConnections()
		srv.Close()
		_ = h.Close()
		_ = store.Close()
	})
	return th
}

// publish publishes an update with the test key and returns its id. Only
// the update fields of po are used.
func (th *clientTestHub) publish(tb testing.TB, po publishOptions) string {
	tb.Helper()
	f, ts := newTestFactory(nil)
	po.IO, po.HTTPClient, po.Now = f.IO, f.HTTPClient, f.Now
	po.Conn = connectionOptions{Hub: th.URL, JWTKey: clientTestKey, JWTAlg: "HS256", Protocol: "auto"}
	if err := po.validate(); err != nil {
		tb.Fatal(err)
	}
	if err := runPublish(tb.Context(), &po); err != nil {
		tb.Fatalf("publish: %v (stderr %q)", err, ts.Err.String())
	}
	return strings.TrimSpace(ts.Out.String())
}

// closedURL returns the URL of a port on which nothing listens.
func closedURL(tb testing.TB) string {
	tb.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}

// The connection flags exist on the three commands and read their variables
// (docs/cli.md#environment): scripts rely on these names.
func TestClientEnvBindings(t *testing.T) {
	t.Parallel()
	f, _ := newTestFactory(nil)
	root := newRootCmd(f)
	bindings := []struct {
		flag string
		envs []string
	}{
		{"hub", []string{"MERCURE_URL"}},
		{"jwt", []string{"MERCURE_JWT"}},
		{"jwt-key", []string{"MERCURE_JWT_KEY", "MERCURE_JWT_SECRET"}},
		{"jwt-alg", []string{"MERCURE_JWT_ALG"}},
		{"issuer", []string{"MERCURE_ISSUER"}},
		{"audience", []string{"MERCURE_AUDIENCE"}},
		{"protocol", []string{"MERCURE_PROTOCOL"}},
	}
	for _, name := range []string{"publish", "subscribe", "replay"} {
		c, _, err := root.Find([]string{name})
		if err != nil || c.Name() != name {
			t.Fatalf("no command %s", name)
		}
		for _, b := range bindings {
			fl := c.Flags().Lookup(b.flag)
			if fl == nil {
				t.Errorf("%s: no --%s", name, b.flag)
				continue
			}
			if got := flagEnv(fl); !slices.Equal(got, b.envs) {
				t.Errorf("%s --%s reads %q, want %q", name, b.flag, got, b.envs)
			}
		}
	}
}

func TestProtocolOfToken(t *testing.T) {
	t.Parallel()
	mintT := func(format token.Format) string {
		tok, err := token.Mint(token.MintOptions{Format: format, Key: []byte(clientTestKey), Subscribe: []string{"*"}, TTL: time.Hour, Audience: "https://hub.example/.well-known/mercure"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// A header {"alg":"HS256","typ":"application/at+jwt"}, as RFC 9068 allows.
	appTyp := "eyJhbGciOiJIUzI1NiIsInR5cCI6ImFwcGxpY2F0aW9uL2F0K2p3dCJ9.e30.c2ln"
	tests := []struct {
		name string
		tok  string
		want client.Protocol
	}{
		{"legacy token", mintT(token.FormatLegacy), client.Protocol07},
		{"access token", mintT(token.FormatAccessToken), client.Protocol08},
		{"application/at+jwt", appTyp, client.Protocol08},
		{"malformed token", "not-a-token", client.ProtocolAuto},
	}
	for _, tt := range tests {
		if got := protocolOfToken(tt.tok); got != tt.want {
			t.Errorf("%s: protocol %v, want %v", tt.name, got, tt.want)
		}
	}
}

// The token minted with --jwt-key grants exactly the request's topics, in
// the format of the generation spoken.
func TestMinter(t *testing.T) {
	t.Parallel()
	o := &connectionOptions{JWTKey: clientTestKey, JWTAlg: "HS256", Issuer: "https://issuer.example, https://other.example"}
	mint := o.minter("subscribe", []byte(clientTestKey), func() time.Time { return fixedNow })
	md := &client.Metadata{Resource: "https://hub.example/.well-known/mercure"}

	legacy, err := mint(t.Context(), client.TokenRequest{Protocol: client.Protocol07, Action: client.ActionPublish,
		Selectors: []client.Selector{{Value: "https://example.com/a"}, {Value: "https://example.com/b"}}})
	if err != nil {
		t.Fatal(err)
	}
	header, claims := inspectJSON(t, legacy)
	if header["typ"] != "JWT" {
		t.Errorf("legacy header %v", header)
	}
	wantMercure := map[string]any{"publish": []any{"https://example.com/a", "https://example.com/b"}}
	if got := claims["mercure"]; fmt.Sprint(got) != fmt.Sprint(wantMercure) {
		t.Errorf("legacy mercure claim %v, want %v", got, wantMercure)
	}
	if exp := claims["exp"].(float64); int64(exp) != fixedNow.Add(mintedTokenTTL).Unix() {
		t.Errorf("exp %v, want now+%s", exp, mintedTokenTTL)
	}
	if _, ok := claims["iss"]; ok {
		t.Errorf("legacy token carries iss: %v", claims)
	}

	access, err := mint(t.Context(), client.TokenRequest{Protocol: client.Protocol08, Metadata: md, Action: client.ActionSubscribe,
		Selectors: []client.Selector{{Value: "https://example.com/books/:id", MatchType: match.TypeURLPattern}}})
	if err != nil {
		t.Fatal(err)
	}
	header, claims = inspectJSON(t, access)
	if header["typ"] != "at+jwt" {
		t.Errorf("access token header %v", header)
	}
	if claims["aud"] != md.Resource || claims["iss"] != "https://issuer.example" {
		t.Errorf("aud %v, iss %v; want the advertised resource and the first issuer", claims["aud"], claims["iss"])
	}
	details, _ := json.Marshal(claims["authorization_details"])
	want := `[{"actions":["subscribe"],"topics":[{"match":"https://example.com/books/:id","match_type":"urlpattern"}],"type":"https://mercure.rocks/authorization-detail"}]`
	if string(details) != want {
		t.Errorf("authorization_details %s, want %s", details, want)
	}

	// --audience wins over the metadata; without either, a usage error.
	o.Audience = "https://aud.example"
	access, err = mint(t.Context(), client.TokenRequest{Protocol: client.Protocol08, Metadata: md, Action: client.ActionSubscribe,
		Selectors: []client.Selector{{Value: "x", MatchType: match.TypeExact}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, claims = inspectJSON(t, access); claims["aud"] != "https://aud.example" {
		t.Errorf("aud %v, want --audience", claims["aud"])
	}
	o.Audience = ""
	_, err = mint(t.Context(), client.TokenRequest{Protocol: client.Protocol08, Action: client.ActionSubscribe,
		Selectors: []client.Selector{{Value: "x", MatchType: match.TypeExact}}})
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "--audience") {
		t.Errorf("no audience: %v (exit %d), want a usage error naming --audience", err, exitCode(err))
	}
}

// inspectJSON decodes a token's header and claims.
func inspectJSON(tb testing.TB, tok string) (header, claims map[string]any) {
	tb.Helper()
	h, c, err := token.Inspect(tok)
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(h, &header); err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(c, &claims); err != nil {
		tb.Fatal(err)
	}
	return header, claims
}

// Errors of the client library get the documented exit codes
// (docs/cli.md#exit-codes).
func TestClientError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		err     error
		code    int
		message string
	}{
		{"unreachable", fmt.Errorf("subscribe: %w: GET http://x: connection refused", client.ErrUnreachable), exitUnreachable, "replay: subscribe: hub unreachable: GET http://x: connection refused"},
		{"401", &client.HTTPError{Op: "subscribe", StatusCode: 401, Status: "401 Unauthorized"}, exitCredentials, "replay: subscribe: hub answered 401 Unauthorized"},
		{"403", &client.HTTPError{Op: "replay", StatusCode: 403, Status: "403 Forbidden"}, exitCredentials, "replay: hub answered 403 Forbidden"},
		{"400", &client.HTTPError{Op: "publish", StatusCode: 400, Status: "400 Bad Request"}, exitError, "replay: publish: hub answered 400 Bad Request"},
		{"template", fmt.Errorf("%w: %q is a URI template", client.ErrTemplateSelector, "/b/{id}"), exitUsage, `replay: draft-08 hubs do not support URI templates: "/b/{id}" is a URI template`},
		{"history gap", fmt.Errorf("replay: %w: gone", client.ErrHistoryGap), exitError, "replay: history gap: gone"},
		{"usage error kept", usageErrorf("replay: --jwt-key: bad"), exitUsage, "replay: --jwt-key: bad"},
	}
	for _, tt := range tests {
		err := clientError("replay", tt.err)
		if got := exitCode(err); got != tt.code {
			t.Errorf("%s: exit %d, want %d", tt.name, got, tt.code)
		}
		if err.Error() != tt.message {
			t.Errorf("%s: message %q, want %q", tt.name, err.Error(), tt.message)
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: the client's error left the chain", tt.name)
		}
	}
	if clientError("replay", nil) != nil {
		t.Error("clientError(nil) != nil")
	}
}

// fakeSignals stands for SIGINT: tests call send instead of signalling the
// test process.
type fakeSignals struct {
	mu sync.Mutex
	c  chan<- os.Signal
	ok chan struct{} // closed once notify was called
}

func newFakeSignals() *fakeSignals { return &fakeSignals{ok: make(chan struct{})} }

func (f *fakeSignals) notify(c chan<- os.Signal) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.c = c
	close(f.ok)
	return func() {}
}

func (f *fakeSignals) send() {
	<-f.ok
	f.mu.Lock()
	defer f.mu.Unlock()
	f.c <- os.Interrupt
}

func TestRunInterruptible(t *testing.T) {
	t.Parallel()
	t.Run("no signal", func(t *testing.T) {
		t.Parallel()
		want := errors.New("done")
		stopped, err := runInterruptible(t.Context(), newFakeSignals().notify, func(context.Context) error { return want })
		if stopped || !errors.Is(err, want) {
			t.Errorf("stopped %v, err %v", stopped, err)
		}
	})
	t.Run("one signal stops cleanly", func(t *testing.T) {
		t.Parallel()
		sig := newFakeSignals()
		go sig.send()
		stopped, err := runInterruptible(t.Context(), sig.notify, func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
		if !stopped || !errors.Is(err, context.Canceled) || exitCode(err) == exitInterrupted {
			t.Errorf("stopped %v, err %v", stopped, err)
		}
	})
	t.Run("a later signal forces", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			sig := newFakeSignals()
			release := make(chan struct{})
			defer close(release)
			go func() {
				sig.send()
				time.Sleep(signalWindow)
				sig.send()
			}()
			stopped, err := runInterruptible(t.Context(), sig.notify, func(ctx context.Context) error {
				<-release // a clean-up that does not finish
				return nil
			})
			if !stopped || exitCode(err) != exitInterrupted {
				t.Errorf("stopped %v, err %v (exit %d), want exit 130", stopped, err, exitCode(err))
			}
		})
	})
	// coreutils timeout signals the process, then its process group: the
	// same stop, delivered twice at once.
	t.Run("signals within the window count as one", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			sig := newFakeSignals()
			cleanUp := 2 * signalWindow
			go func() {
				sig.send()
				time.Sleep(signalWindow / 10)
				sig.send()
				time.Sleep(signalWindow - signalWindow/10 - time.Nanosecond)
				sig.send()
			}()
			start := time.Now()
			stopped, err := runInterruptible(t.Context(), sig.notify, func(ctx context.Context) error {
				<-ctx.Done()
				time.Sleep(cleanUp) // a clean-up that takes its time, and finishes
				return ctx.Err()
			})
			if !stopped || !errors.Is(err, context.Canceled) || exitCode(err) == exitInterrupted {
				t.Errorf("stopped %v, err %v (exit %d), want a clean stop", stopped, err, exitCode(err))
			}
			if d := time.Since(start); d != cleanUp {
				t.Errorf("returned after %s, want after the clean-up's %s", d, cleanUp)
			}
		})
	})
}
