package main

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/client"
)

func TestNewReplayCmd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		env      envMap
		want     replayOptions
		wantCode int
		wantErr  string
	}{
		{
			name: "every flag",
			args: []string{"-t", "a", "-t", "b", "--from", "id-1", "--idle", "3s", "--allow-gap", "--timeout", "1m", "-o", "data",
				"--match-type", "exact", "--jwt", "@tok.txt", "--protocol", "7"},
			want: replayOptions{
				Sel:  selectorOptions{Topics: []string{"a", "b"}, MatchType: "exact", Output: "data"},
				From: "id-1", Idle: 3 * time.Second, AllowGap: true, Timeout: time.Minute,
				Conn: connectionOptions{Hub: defaultHubURL, JWT: "@tok.txt", JWTAlg: "HS256", Protocol: "7", protocol: client.Protocol07},
			},
		},
		{
			name: "defaults",
			args: []string{"-t", "a", "--from", "earliest"},
			env:  envMap{"MERCURE_JWT_SECRET": "s"},
			want: replayOptions{
				Sel: selectorOptions{Topics: []string{"a"}}, From: "earliest", Idle: client.DefaultIdle,
				Conn: connectionOptions{Hub: defaultHubURL, JWTKey: "s", JWTAlg: "HS256", Protocol: "auto"},
			},
		},
		{name: "no --from", args: []string{"-t", "a"}, wantCode: exitUsage, wantErr: "replay: --from is required"},
		{name: "no topic", args: []string{"--from", "earliest"}, wantCode: exitUsage, wantErr: "replay: at least one --topic is required"},
		{name: "zero idle", args: []string{"-t", "a", "--from", "earliest", "--idle", "0s"}, wantCode: exitUsage, wantErr: "--idle must be positive"},
		{name: "bad output", args: []string{"-t", "a", "--from", "earliest", "-o", "csv"}, wantCode: exitUsage, wantErr: `replay: --output "csv"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, _ := newTestFactory(tt.env)
			var got *replayOptions
			cmd := newReplayCmd(f, func(o *replayOptions) error { got = o; return nil })
			err := execCmd(t, f, cmd, tt.args...)
			if checkExit(t, err, tt.wantCode, tt.wantErr) {
				return
			}
			got.IO, got.HTTPClient, got.Now, got.Logger, got.notify = nil, nil, nil, nil, nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("options\n got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

// foreignHub is a hub that is not ours: it serves no metadata, sends the
// given events without the end-of-replay marker, then keep-alive comments
// every keepAlive (never, when 0) until the client leaves.
func foreignHub(tb testing.TB, events string, keepAlive time.Duration) string {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != client.HubPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Last-Event-ID", r.URL.Query().Get("lastEventID"))
		_, _ = fmt.Fprint(w, events)
		w.(http.Flusher).Flush()
		var tick <-chan time.Time
		if keepAlive > 0 {
			tk := time.NewTicker(keepAlive)
			defer tk.Stop()
			tick = tk.C
		}
		for {
			select {
			case <-r.Context().Done():
				return
			case <-tick:
				_, _ = fmt.Fprint(w, ":\n")
				w.(http.Flusher).Flush()
			}
		}
	}))
	tb.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL
}

func TestRunReplay(t *testing.T) {
	t.Parallel()
	th := newClientTestHub(t, true)
	seedHub(t, th)
	foreign := foreignHub(t, "id: f-1\ndata: one\n\nid: f-2\ndata: two\n\n", 0)
	chatty := foreignHub(t, "id: f-1\ndata: one\n\n", 50*time.Millisecond)
	a := []string{"https://example.com/a"}
	const (
		json1 = `{"id":"id-1","data":"one"}` + "\n"
		json2 = `{"id":"id-2","type":"note","data":"two\nlines","retry":1500}` + "\n"
		json3 = `{"id":"id-3","data":"secret"}` + "\n"
		json4 = `{"id":"id-4","data":"<b>&</b>"}` + "\n"
	)
	tests := []struct {
		name     string
		opts     replayOptions
		hub      string
		wantOut  string
		wantCode int
		wantErr  string
		wantLog  string
		// maxTime bounds how long the replay may take: against our hub the
		// end is marked in-band, so no --idle wait.
		maxTime time.Duration
	}{
		{name: "earliest, anonymous", opts: replayOptions{From: "earliest"}, wantOut: json1 + json2, maxTime: 2 * time.Second},
		{name: "earliest, with the key: private too", opts: replayOptions{From: "earliest", Conn: connectionOptions{JWTKey: clientTestKey}}, wantOut: json1 + json2 + json3, maxTime: 2 * time.Second},
		{name: "after an id", opts: replayOptions{From: "id-1"}, wantOut: json2, maxTime: 2 * time.Second},
		{name: "newest update on another topic", opts: replayOptions{From: "id-2"}, wantOut: "", maxTime: 2 * time.Second},
		{name: "draft-07 with a legacy token", opts: replayOptions{From: "id-1", Conn: connectionOptions{JWT: legacyTestToken(t, nil, a)}}, wantOut: json2 + json3, maxTime: 2 * time.Second},
		{name: "unknown id: 1", opts: replayOptions{From: "gone"}, wantCode: exitError, wantErr: `replay: history gap: the hub does not hold "gone" (its cursor is "earliest"); updates after it may have been lost (--allow-gap prints what the hub holds)`},
		{name: "unknown id, --allow-gap: 0", opts: replayOptions{From: "gone", AllowGap: true}, wantOut: json1 + json2, wantLog: `mercurectl: warning: the hub does not hold update "gone"`},
		{name: "foreign hub: ends after --idle", hub: foreign, opts: replayOptions{From: "earliest", Idle: 200 * time.Millisecond, Sel: selectorOptions{Output: outputData}},
			wantOut: "one\ntwo\n", maxTime: 3 * time.Second},
		{name: "foreign hub with keep-alives: --timeout 124", hub: chatty, opts: replayOptions{From: "earliest", Timeout: time.Second, Sel: selectorOptions{Output: outputData}},
			wantOut: "one\n", wantCode: exitTimeout, wantErr: "replay: --timeout 1s expired before the replay caught up"},
		{name: "wrong key: 77", opts: replayOptions{From: "earliest", Conn: connectionOptions{JWTKey: "wrong-key-wrong-key-wrong-key-000"}}, wantCode: exitCredentials, wantErr: "401"},
		{name: "URI template in auto mode: draft-07", opts: replayOptions{From: "earliest", Sel: selectorOptions{Topics: []string{"https://example.com/{x}"}}}, wantOut: json1 + json2 + json4, maxTime: 2 * time.Second},
		{name: "URI template in draft-08: 2", opts: replayOptions{From: "earliest", Sel: selectorOptions{Topics: []string{"https://example.com/{x}"}}, Conn: connectionOptions{Protocol: "8"}}, wantCode: exitUsage, wantErr: "URI template"},
		{name: "unreachable: 69", hub: closedURL(t), opts: replayOptions{From: "earliest"}, wantCode: exitUnreachable, wantErr: "hub unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, ts := newTestFactory(nil)
			opts := tt.opts
			opts.IO, opts.HTTPClient, opts.Now, opts.notify = f.IO, f.HTTPClient, f.Now, newFakeSignals().notify
			opts.Conn.Hub = cmp.Or(tt.hub, th.URL)
			opts.Conn.JWTAlg, opts.Conn.Protocol = "HS256", cmp.Or(opts.Conn.Protocol, "auto")
			if opts.Sel.Topics == nil {
				opts.Sel.Topics = a
			}
			opts.Sel.Output = cmp.Or(opts.Sel.Output, outputJSON)
			opts.Idle = cmp.Or(opts.Idle, 10*time.Second) // our hub must not need it
			if err := opts.validate(); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err := runReplay(t.Context(), &opts)
			elapsed := time.Since(start)
			if code := exitCode(err); code != tt.wantCode {
				t.Fatalf("exit %d (%v), want %d; stderr %q", code, err, tt.wantCode, ts.Err.String())
			}
			if tt.wantErr != "" && err.Error() != tt.wantErr && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want %q", err, tt.wantErr)
			}
			if tt.wantCode == exitError && !errors.Is(err, client.ErrHistoryGap) {
				t.Errorf("error %v does not wrap ErrHistoryGap", err)
			}
			if out := ts.Out.String(); out != tt.wantOut {
				t.Errorf("stdout\n%q\nwant\n%q", out, tt.wantOut)
			}
			if !strings.Contains(ts.Err.String(), tt.wantLog) {
				t.Errorf("stderr %q lacks %q", ts.Err.String(), tt.wantLog)
			}
			if tt.maxTime > 0 && elapsed > tt.maxTime {
				t.Errorf("took %s, want at most %s", elapsed, tt.maxTime)
			}
		})
	}
}

// On a terminal, replay says on stderr how many updates it printed and how
// it knew it was done.
func TestRunReplaySummaryOnTTY(t *testing.T) {
	t.Parallel()
	th := newClientTestHub(t, true)
	seedHub(t, th)
	f, ts := newTestFactory(nil)
	f.IO.SetStderrTTY(true)
	opts := &replayOptions{
		IO: f.IO, HTTPClient: f.HTTPClient, Now: f.Now, notify: newFakeSignals().notify,
		Conn: connectionOptions{Hub: th.URL, Protocol: "auto"},
		Sel:  selectorOptions{Topics: []string{"https://example.com/a"}, Output: outputData},
		From: "earliest", Idle: time.Second,
	}
	if err := opts.validate(); err != nil {
		t.Fatal(err)
	}
	if err := runReplay(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	if got, want := ts.Err.String(), "mercurectl: replayed 2 updates (the hub marked the end of its history)\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
}
