package main

import (
	"cmp"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/client"
	"github.com/mercurectl/mercurectl/internal/match"
	"github.com/mercurectl/mercurectl/internal/token"
)

func TestNewSubscribeCmd(t *testing.T) {
	t.Parallel()
	anon := connectionOptions{Hub: defaultHubURL, JWTAlg: "HS256", Protocol: "auto"}
	tests := []struct {
		name     string
		args     []string
		env      envMap
		want     subscribeOptions
		wantCode int
		wantErr  string
	}{
		{
			name: "every flag",
			args: []string{"--topic", "https://example.com/a", "-t", "*", "--match-type", "urlpattern", "-o", "sse",
				"--last-event-id", "earliest", "--count", "3", "--timeout", "2s", "--jwt-key", "k", "--jwt-alg", "hs512",
				"--issuer", "iss", "--audience", "aud", "--hub", "http://h:1"},
			want: subscribeOptions{
				Sel:         selectorOptions{Topics: []string{"https://example.com/a", "*"}, MatchType: "urlpattern", Output: "sse"},
				LastEventID: "earliest", Count: 3, Timeout: 2 * time.Second,
				Conn: connectionOptions{Hub: "http://h:1", JWTKey: "k", JWTAlg: "HS512", Issuer: "iss", Audience: "aud", Protocol: "auto"},
			},
		},
		{
			name: "anonymous, defaults",
			args: []string{"-t", "x"},
			want: subscribeOptions{Sel: selectorOptions{Topics: []string{"x"}}, Conn: anon},
		},
		{
			name: "--jwt wins over the key; env",
			args: []string{"-t", "x", "-n", "1", "-o", "data"},
			env:  envMap{"MERCURE_JWT": "tok", "MERCURE_JWT_KEY": "k", "MERCURE_URL": "http://env"},
			want: subscribeOptions{Sel: selectorOptions{Topics: []string{"x"}, Output: "data"}, Count: 1,
				Conn: connectionOptions{Hub: "http://env", JWT: "tok", JWTKey: "k", JWTAlg: "HS256", Protocol: "auto"}},
		},
		{name: "no topic", args: []string{"--count", "1"}, wantCode: exitUsage, wantErr: "subscribe: at least one --topic is required"},
		{name: "bad output", args: []string{"-t", "x", "-o", "yaml"}, wantCode: exitUsage, wantErr: `--output "yaml": want text, json, data, sse`},
		{name: "bad match type", args: []string{"-t", "x", "--match-type", "regexp"}, wantCode: exitUsage, wantErr: `--match-type "regexp"`},
		{name: "negative count", args: []string{"-t", "x", "--count", "-1"}, wantCode: exitUsage, wantErr: "--count must not be negative"},
		{name: "bad timeout", args: []string{"-t", "x", "--timeout", "soon"}, wantCode: exitUsage, wantErr: "invalid argument"},
		{name: "bad protocol env", args: []string{"-t", "x"}, env: envMap{"MERCURE_PROTOCOL": "9"}, wantCode: exitUsage, wantErr: "want auto, 7 or 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, _ := newTestFactory(tt.env)
			var got *subscribeOptions
			cmd := newSubscribeCmd(f, func(o *subscribeOptions) error { got = o; return nil })
			err := execCmd(t, f, cmd, tt.args...)
			if checkExit(t, err, tt.wantCode, tt.wantErr) {
				return
			}
			if got.notify == nil {
				t.Error("no signal notifier")
			}
			got.IO, got.HTTPClient, got.Now, got.Logger, got.notify = nil, nil, nil, nil, nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("options\n got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

// seedHub publishes the updates the subscribe and replay tests expect:
// three on topic a (the second with a type, a retry and two lines, the
// third private), one on topic b.
func seedHub(tb testing.TB, th *clientTestHub) {
	tb.Helper()
	th.publish(tb, publishOptions{Topics: []string{"https://example.com/a"}, ID: "id-1", Data: "one"})
	th.publish(tb, publishOptions{Topics: []string{"https://example.com/a"}, ID: "id-2", Type: "note", Retry: new(uint64(1500)), Data: "two\nlines"})
	th.publish(tb, publishOptions{Topics: []string{"https://example.com/a"}, ID: "id-3", Private: true, Data: "secret"})
	th.publish(tb, publishOptions{Topics: []string{"https://example.com/b"}, ID: "id-4", Data: "<b>&</b>"})
}

func TestRunSubscribe(t *testing.T) {
	t.Parallel()
	th := newClientTestHub(t, true)
	seedHub(t, th)
	closed := newClientTestHub(t, false) // no anonymous subscribers
	closed.publish(t, publishOptions{Topics: []string{"https://example.com/a"}, ID: "c-1", Data: "x"})
	unreachable := closedURL(t)
	a := []string{"https://example.com/a"}
	const (
		json1 = `{"id":"id-1","data":"one"}` + "\n"
		json2 = `{"id":"id-2","type":"note","data":"two\nlines","retry":1500}` + "\n"
		json3 = `{"id":"id-3","data":"secret"}` + "\n"
		json4 = `{"id":"id-4","data":"<b>&</b>"}` + "\n"
	)
	tests := []struct {
		name     string
		opts     subscribeOptions
		hub      string
		wantOut  string
		wantCode int
		wantErr  string
		wantLog  string // in stderr
	}{
		{name: "json, anonymous: public updates only", opts: subscribeOptions{Sel: selectorOptions{Topics: a, Output: outputJSON}, LastEventID: "earliest", Count: 2}, wantOut: json1 + json2},
		{name: "json by default when piped", opts: subscribeOptions{Sel: selectorOptions{Topics: []string{"https://example.com/b"}}, LastEventID: "earliest", Count: 1}, wantOut: json4},
		{name: "minted token receives private updates", opts: subscribeOptions{Sel: selectorOptions{Topics: a, Output: outputJSON}, LastEventID: "id-2", Count: 1, Conn: connectionOptions{JWTKey: clientTestKey}}, wantOut: json3},
		{name: "several selectors, URL pattern", opts: subscribeOptions{Sel: selectorOptions{Topics: []string{"https://example.com/:x"}, Output: outputJSON}, LastEventID: "earliest", Count: 3}, wantOut: json1 + json2 + json4},
		{name: "data", opts: subscribeOptions{Sel: selectorOptions{Topics: a, Output: outputData}, LastEventID: "earliest", Count: 2}, wantOut: "one\ntwo\nlines\n"},
		{name: "sse", opts: subscribeOptions{Sel: selectorOptions{Topics: a, Output: outputSSE}, LastEventID: "earliest", Count: 2}, wantOut: "id: id-1\ndata: one\n\nevent: note\nretry: 1500\nid: id-2\ndata: two\ndata: lines\n\n"},
		{name: "text when piped: plain, RFC 3339", opts: subscribeOptions{Sel: selectorOptions{Topics: a, Output: outputText}, LastEventID: "earliest", Count: 2},
			wantOut: "2026-03-01T12:00:00Z  id-1  one\n2026-03-01T12:00:00Z  id-2  note  two\n                                  lines\n"},
		{name: "legacy --jwt subscribes in draft-07", opts: subscribeOptions{Sel: selectorOptions{Topics: a, Output: outputJSON}, LastEventID: "id-2", Count: 1, Conn: connectionOptions{JWT: legacyTestToken(t, nil, a)}}, wantOut: json3},
		{name: "draft-07 forced, URI template", opts: subscribeOptions{Sel: selectorOptions{Topics: []string{"https://example.com/{x}"}, Output: outputJSON}, LastEventID: "earliest", Count: 1, Conn: connectionOptions{Protocol: "7"}}, wantOut: json1},
		{name: "unknown cursor warns", opts: subscribeOptions{Sel: selectorOptions{Topics: a, Output: outputJSON}, LastEventID: "gone", Count: 1}, wantOut: json1, wantLog: `mercurectl: warning: the hub does not hold update "gone" any more (its cursor is "earliest")`},
		{name: "timeout with count: 124", opts: subscribeOptions{Sel: selectorOptions{Topics: a, Output: outputJSON}, LastEventID: "earliest", Count: 5, Timeout: time.Second}, wantOut: json1 + json2, wantCode: exitTimeout, wantErr: "subscribe: --timeout 1s expired after 2 of 5 updates"},
		{name: "timeout without count: 0", opts: subscribeOptions{Sel: selectorOptions{Topics: a, Output: outputJSON}, LastEventID: "id-1", Timeout: time.Second}, wantOut: json2},
		{name: "URI template in auto mode: draft-07", opts: subscribeOptions{Sel: selectorOptions{Topics: []string{"https://example.com/{x}"}, Output: outputJSON}, LastEventID: "earliest", Count: 2}, wantOut: json1 + json2},
		{name: "template match type in auto mode, with a key: draft-07", opts: subscribeOptions{Sel: selectorOptions{Topics: a, MatchType: match.TypeTemplate, Output: outputJSON}, LastEventID: "id-2", Count: 1, Conn: connectionOptions{JWTKey: clientTestKey}}, wantOut: json3},
		{name: "URI template in draft-08: usage", opts: subscribeOptions{Sel: selectorOptions{Topics: []string{"https://example.com/{x}"}}, Conn: connectionOptions{Protocol: "8"}}, wantCode: exitUsage, wantErr: `use a URL pattern such as "https://example.com/:x"`},
		{name: "template match type in draft-08: usage", opts: subscribeOptions{Sel: selectorOptions{Topics: a, MatchType: match.TypeTemplate}, Conn: connectionOptions{Protocol: "8"}}, wantCode: exitUsage, wantErr: "URI template"},
		{name: "wrong key: 77", opts: subscribeOptions{Sel: selectorOptions{Topics: a}, Conn: connectionOptions{JWTKey: "wrong-key-wrong-key-wrong-key-000"}}, wantCode: exitCredentials, wantErr: "subscribe: hub answered 401 Unauthorized: invalid token: signature does not verify with the key (--jwt-key is not the key the hub verifies tokens with)"},
		{name: "token of another key: 77, with a hint", opts: subscribeOptions{Sel: selectorOptions{Topics: a}, Conn: connectionOptions{JWT: legacyTestTokenKey(t, "another-key-another-key-another-key")}}, wantCode: exitCredentials, wantErr: "subscribe: hub answered 401 Unauthorized: invalid token: signature does not verify with the key (the token was signed with another key than the hub's; for a 'mercurectl serve --dev' hub, export the MERCURE_JWT line that it printed at its last start)"},
		{name: "malformed token: 77", opts: subscribeOptions{Sel: selectorOptions{Topics: a}, Conn: connectionOptions{JWT: "not-a-token"}}, wantCode: exitCredentials, wantErr: "subscribe: hub answered 400 Bad Request: malformed Authorization header: the token is too short to be a JWT"},
		{name: "legacy token in forced draft-08: 77", opts: subscribeOptions{Sel: selectorOptions{Topics: a}, Conn: connectionOptions{JWT: legacyTestToken(t, nil, a), Protocol: "8"}}, wantCode: exitCredentials, wantErr: "401"},
		{name: "anonymous on a closed hub: 77", hub: closed.URL, opts: subscribeOptions{Sel: selectorOptions{Topics: a}}, wantCode: exitCredentials, wantErr: "subscribe: hub answered 401 Unauthorized: authorization required: no token, and this hub does not accept anonymous subscribers (no credentials were given: pass --jwt or --jwt-key"},
		{name: "key on a closed hub", hub: closed.URL, opts: subscribeOptions{Sel: selectorOptions{Topics: a, Output: outputData}, LastEventID: "earliest", Count: 1, Conn: connectionOptions{JWTKey: clientTestKey}}, wantOut: "x\n"},
		{name: "unreachable: 69", hub: unreachable, opts: subscribeOptions{Sel: selectorOptions{Topics: a}}, wantCode: exitUnreachable, wantErr: "subscribe: hub unreachable: " + unreachable + "/.well-known/mercure: dial tcp"},
		{name: "unreachable, draft-07: 69", hub: unreachable, opts: subscribeOptions{Sel: selectorOptions{Topics: a}, Conn: connectionOptions{Protocol: "7"}}, wantCode: exitUnreachable, wantErr: "subscribe: hub unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, ts := newTestFactory(nil)
			opts := tt.opts
			opts.IO, opts.HTTPClient, opts.Now, opts.notify = f.IO, f.HTTPClient, f.Now, newFakeSignals().notify
			opts.Conn.Hub = cmp.Or(tt.hub, th.URL)
			opts.Conn.JWTAlg, opts.Conn.Protocol = "HS256", cmp.Or(opts.Conn.Protocol, "auto")
			if err := opts.validate(); err != nil {
				t.Fatal(err)
			}
			err := runSubscribe(t.Context(), &opts)
			if code := exitCode(err); code != tt.wantCode {
				t.Fatalf("exit %d (%v), want %d; stderr %q", code, err, tt.wantCode, ts.Err.String())
			}
			if tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want %q", err, tt.wantErr)
			}
			if out := ts.Out.String(); out != tt.wantOut {
				t.Errorf("stdout\n%q\nwant\n%q", out, tt.wantOut)
			}
			if !strings.Contains(ts.Err.String(), tt.wantLog) {
				t.Errorf("stderr %q lacks %q", ts.Err.String(), tt.wantLog)
			}
		})
	}
}

// A first SIGINT stops subscribe cleanly: exit 0, every update written so
// far on stdout.
func TestRunSubscribeInterrupt(t *testing.T) {
	t.Parallel()
	th := newClientTestHub(t, true)
	seedHub(t, th)
	f, ts := newTestFactory(nil)
	sig := newFakeSignals()
	opts := &subscribeOptions{
		IO: f.IO, HTTPClient: f.HTTPClient, Now: f.Now, notify: sig.notify,
		Conn: connectionOptions{Hub: th.URL, Protocol: "auto"},
		Sel:  selectorOptions{Topics: []string{"https://example.com/b"}, Output: outputData}, LastEventID: "earliest",
	}
	if err := opts.validate(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- runSubscribe(t.Context(), opts) }()
	deadline := time.Now().Add(5 * time.Second)
	for ts.Out.String() == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	sig.send()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit %d (%v), want 0", exitCode(err), err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("subscribe did not stop on SIGINT")
	}
	if got := ts.Out.String(); got != "<b>&</b>\n" {
		t.Errorf("stdout %q", got)
	}
}

// A hub that gives no cursor (no Last-Event-ID response header) leaves a
// quiet subscriber without a resume position: subscribe says so once,
// however often it reconnects.
func TestRunSubscribeWarnsOnceWithoutHubCursor(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != client.HubPath {
			http.NotFound(w, r)
			return
		}
		conns.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = fmt.Fprint(w, ":\n")
		// The stream ends at once: the subscriber reconnects.
	}))
	t.Cleanup(srv.Close)
	f, ts := newTestFactory(nil)
	opts := &subscribeOptions{
		IO: f.IO, HTTPClient: f.HTTPClient, Now: f.Now, notify: newFakeSignals().notify,
		Conn: connectionOptions{Hub: srv.URL, Protocol: "auto", JWTAlg: "HS256"},
		Sel:  selectorOptions{Topics: []string{"https://example.com/a"}, Output: outputData}, Timeout: 2 * time.Second,
	}
	if err := opts.validate(); err != nil {
		t.Fatal(err)
	}
	if err := runSubscribe(t.Context(), opts); err != nil {
		t.Fatalf("exit %d (%v)", exitCode(err), err)
	}
	const warning = "mercurectl: warning: the hub sent no cursor: until the first update arrives, a reconnection could miss updates published meanwhile (--last-event-id avoids this)\n"
	if n := strings.Count(ts.Err.String(), warning); n != 1 || conns.Load() < 2 {
		t.Fatalf("%d warnings over %d connections, want 1 over at least 2; stderr:\n%s", n, conns.Load(), ts.Err.String())
	}
}

// legacyTestTokenKey is a legacy token granting subscribe on every topic,
// signed with key.
func legacyTestTokenKey(tb testing.TB, key string) string {
	tb.Helper()
	tok, err := token.Mint(token.MintOptions{Key: []byte(key), Subscribe: []string{"*"}, TTL: time.Hour, Now: func() time.Time { return fixedNow }})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}
