package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/client"
	"github.com/mercurectl/mercurectl/internal/conformance"
	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/hub"
	"github.com/mercurectl/mercurectl/internal/token"
)

func TestNewConformanceCmd(t *testing.T) {
	t.Parallel()
	def := conformanceOptions{
		Hub: defaultHubURL, JWTKey: "k", JWTAlg: "HS256", Protocol: "auto", Timeout: conformance.DefaultTimeout,
		Output: "text", HistoryDepth: conformance.DefaultHistoryDepth, Parallel: conformance.DefaultConcurrency,
	}
	with := func(change func(*conformanceOptions)) conformanceOptions {
		o := def
		change(&o)
		return o
	}
	tests := []struct {
		name     string
		args     []string
		env      envMap
		want     conformanceOptions
		wantCode int
		wantErr  string
	}{
		{name: "key from the environment", env: envMap{"MERCURE_JWT_KEY": "k"}, want: def},
		{
			name: "every flag",
			args: []string{"--hub", "http://h:1", "--jwt-key", "k", "--jwt-alg", "hs384", "--issuer", "i1 i2", "--audience", "a",
				"--protocol", "8", "--timeout", "3s", "-o", "json", "--topic-prefix", "https://t.example/p/", "--origin", "https://app.example/",
				"--resource", "https://app.example/books/1", "--heartbeat", "2s", "--history-depth", "50", "--restart-cmd", "true", "--parallel", "2"},
			want: with(func(o *conformanceOptions) {
				o.Hub, o.JWTAlg, o.Issuer, o.Audience, o.Protocol, o.protocol = "http://h:1", "HS384", "i1 i2", "a", "8", client.Protocol08
				o.Timeout, o.Output, o.TopicPrefix, o.Origin = 3*time.Second, "json", "https://t.example/p/", "https://app.example"
				o.Resource, o.Heartbeat, o.HistoryDepth, o.RestartCmd, o.Parallel = "https://app.example/books/1", 2*time.Second, 50, "true", 2
			}),
		},
		{
			name: "ready tokens",
			args: []string{"--publisher-jwt", "p", "--subscriber-jwt", "s"},
			want: with(func(o *conformanceOptions) { o.JWTKey, o.PublisherJWT, o.SubscriberJWT = "", "p", "s" }),
		},
		{name: "list needs no credentials", args: []string{"--list"}, want: with(func(o *conformanceOptions) { o.JWTKey, o.List = "", true })},
		{name: "no credentials", wantCode: exitUsage, wantErr: "conformance: no credentials"},
		{name: "one token", args: []string{"--subscriber-jwt", "s"}, wantCode: exitUsage, wantErr: "go together"},
		{name: "stdin twice", args: []string{"--publisher-jwt", "@-", "--subscriber-jwt", "@-"}, wantCode: exitUsage, wantErr: "only one of the credentials can read stdin"},
		{name: "bad output", args: []string{"-o", "yaml"}, env: envMap{"MERCURE_JWT_KEY": "k"}, wantCode: exitUsage, wantErr: `-o "yaml"`},
		{name: "bad regexp", args: []string{"--run", "("}, env: envMap{"MERCURE_JWT_KEY": "k"}, wantCode: exitUsage, wantErr: "--run"},
		{name: "bad protocol", args: []string{"--protocol", "9"}, env: envMap{"MERCURE_JWT_KEY": "k"}, wantCode: exitUsage, wantErr: `--protocol "9"`},
		{name: "bad hub", args: []string{"--hub", "ftp://h"}, env: envMap{"MERCURE_JWT_KEY": "k"}, wantCode: exitUsage, wantErr: "--hub"},
		{name: "bad origin", args: []string{"--origin", "https://a.example/x"}, env: envMap{"MERCURE_JWT_KEY": "k"}, wantCode: exitUsage, wantErr: "--origin"},
		{name: "shallow history", args: []string{"--history-depth", "2"}, env: envMap{"MERCURE_JWT_KEY": "k"}, wantCode: exitUsage, wantErr: "at least 3"},
		{name: "no parallelism", args: []string{"--parallel", "0"}, env: envMap{"MERCURE_JWT_KEY": "k"}, wantCode: exitUsage, wantErr: "--parallel"},
		{name: "alg none", args: []string{"--jwt-alg", "none"}, env: envMap{"MERCURE_JWT_KEY": "k"}, wantCode: exitUsage, wantErr: "--jwt-alg"},
		{name: "positional argument", args: []string{"x"}, wantCode: exitUsage, wantErr: "takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, _ := newTestFactory(tt.env)
			var got *conformanceOptions
			cmd := newConformanceCmd(f, func(o *conformanceOptions) error { got = o; return nil })
			err := execCmd(t, f, cmd, tt.args...)
			if checkExit(t, err, tt.wantCode, tt.wantErr) {
				return
			}
			got.IO, got.HTTPClient, got.Logger, got.notify, got.run = nil, nil, nil, nil, nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("options\n got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

// The text output has one line per case, colour only on a terminal, and
// the summary line; failures exit 1, and the exit code of a run that could
// not start says why.
func TestRunConformance(t *testing.T) {
	t.Parallel()
	const key = "run-conformance-key-0123456789abcdef"
	v, err := token.NewVerifier(token.VerifierConfig{Key: []byte(key)})
	if err != nil {
		t.Fatal(err)
	}
	store := history.NewMemory(history.Retention{}, nil)
	srv := httptest.NewUnstartedServer(nil)
	cfg := hub.DefaultConfig()
	cfg.Store, cfg.PublisherVerifier, cfg.SubscriberVerifier = store, v, v
	cfg.ResourceIdentifier = "http://" + srv.Listener.Addr().String() + hub.Path
	h, err := hub.New(cfg)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		srv.Close()
		_ = h.Close()
	})
	tests := []struct {
		name     string
		args     []string
		tty      bool
		wantCode int
		wantOut  []string
	}{
		{
			name: "passing cases", args: []string{"--jwt-key", key, "--run", `^publish/generated-id \(draft-08`},
			wantOut: []string{"PASS publish/generated-id (draft-08 §Publication)\n1 passed, 0 failed\n"},
		},
		{
			name: "colour on a terminal", args: []string{"--jwt-key", key, "--run", `^publish/generated-id \(draft-08`}, tty: true,
			wantOut: []string{"\x1b[", "PASS", "1 passed, 0 failed\n"},
		},
		{
			name: "skipped cases are counted", args: []string{"--jwt-key", key, "--run", `^publish/generated-id|^cors/preflight-subscribe`},
			wantOut: []string{"SKIP cors/preflight-subscribe (draft-07 §Subscriptions, Fetch §CORS protocol): needs --origin", "2 passed, 0 failed, 2 skipped\n"},
		},
		{
			name: "a failing case", args: []string{"--jwt-key", key, "--protocol", "7", "--run", `^discovery/hub-url`, "--hub", srv.URL + "/elsewhere/"},
			wantCode: exitError,
			wantOut:  []string{`FAIL discovery/hub-url-well-known (draft-07 §Discovery): the hub URL's path is "/elsewhere/", want "/.well-known/mercure"`, "0 passed, 1 failed\n"},
		},
		{name: "refused", args: []string{"--jwt-key", "wrong-key-0123456789abcdef0123456789"}, wantCode: exitCredentials},
		{name: "unreachable", args: []string{"--jwt-key", key, "--hub", "http://127.0.0.1:1"}, wantCode: exitUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, ts := newTestFactory(envMap{"MERCURE_URL": srv.URL})
			if tt.tty {
				f.IO = newIOStreams(ts.In, ts.Out, ts.Err, envMap{}.Getenv)
				f.IO.SetStdoutTTY(true)
			}
			err := execCmd(t, f, newConformanceCmd(f, nil), tt.args...)
			if code := exitCode(err); code != tt.wantCode {
				t.Fatalf("exit %d (%v), want %d; stdout:\n%s", code, err, tt.wantCode, ts.Out.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(ts.Out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, ts.Out.String())
				}
			}
			if !tt.tty && bytes.Contains([]byte(ts.Out.String()), []byte("\x1b[")) {
				t.Errorf("escape sequences on a pipe:\n%s", ts.Out.String())
			}
		})
	}
}
