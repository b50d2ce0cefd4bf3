package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/hub"
	"github.com/mercurectl/mercurectl/internal/token"
)

// parseServe runs `serve args...` through the real flag parsing and env
// handling, and returns the validated options instead of serving.
func parseServe(tb testing.TB, f *factory, args ...string) (*serveOptions, error) {
	tb.Helper()
	var got *serveOptions
	err := execCmd(tb, f, newServeCmd(f, func(o *serveOptions) error { got = o; return nil }), args...)
	return got, err
}

func TestNewServeCmd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		env      envMap
		check    func(t *testing.T, o *serveOptions)
		wantCode int
		wantErr  string
	}{
		{
			name: "defaults with a key",
			args: []string{"--jwt-key", "k"},
			check: func(t *testing.T, o *serveOptions) {
				if o.Addr != "localhost:3000" || o.JWTAlg != "HS256" || o.ShutdownTimeout != 5*time.Second ||
					o.Heartbeat != hub.DefaultHeartbeat || o.WriteTimeout != hub.DefaultWriteTimeout ||
					o.DispatchTimeout != hub.DefaultDispatchTimeout || o.MaxBodySize != hub.DefaultMaxBodySize ||
					o.HistorySize != defaultHistorySize || o.transport.kind != transportBolt || o.transport.path != "" ||
					o.LogFormat != "auto" || o.LogLevel != "info" {
					t.Errorf("unexpected defaults: %+v", o)
				}
			},
		},
		{
			name:     "no key refuses to start",
			wantCode: 2,
			wantErr:  "no key to verify tokens: set --jwt-key (or MERCURE_JWT_KEY)",
		},
		{
			name: "anonymous needs no key",
			args: []string{"--anonymous"},
			check: func(t *testing.T, o *serveOptions) {
				if !o.Anonymous {
					t.Error("Anonymous not set")
				}
			},
		},
		{name: "dev needs no key", args: []string{"--dev"}},
		{name: "JWKS is a key", args: []string{"--jwks-url", "https://idp.example/jwks.json"}},
		{
			name: "environment",
			env: envMap{
				"MERCURE_ADDR": "127.0.0.1:0", "MERCURE_JWT_KEY": "k", "MERCURE_PUBLISHER_JWT_KEY": "p",
				"MERCURE_SUBSCRIBER_JWT_KEY": "s", "MERCURE_JWT_ALG": "hs512", "MERCURE_ANONYMOUS": "yes",
				"MERCURE_ISSUER": "https://a.example https://b.example", "MERCURE_CORS_ORIGINS": "https://x.example,https://y.example",
				"MERCURE_PUBLISH_ORIGINS": "https://x.example", "MERCURE_SUBSCRIPTIONS": "on",
				"MERCURE_RESOURCE_IDENTIFIER": "https://hub.example/.well-known/mercure", "MERCURE_TRANSPORT": "memory",
				"MERCURE_JWKS_URL": "https://idp.example/jwks.json",
			},
			check: func(t *testing.T, o *serveOptions) {
				if o.Addr != "127.0.0.1:0" || o.JWTKey != "k" || o.PublisherJWTKey != "p" || o.SubscriberJWTKey != "s" ||
					o.JWTAlg != "HS512" || !o.Anonymous || !o.Subscriptions || o.transport.kind != transportMemory ||
					o.ResourceIdentifier != "https://hub.example/.well-known/mercure" || o.JWKSURL != "https://idp.example/jwks.json" {
					t.Errorf("env not applied: %+v", o)
				}
				if !slices.Equal(o.Issuers, []string{"https://a.example", "https://b.example"}) ||
					!slices.Equal(o.CORSOrigins, []string{"https://x.example", "https://y.example"}) ||
					!slices.Equal(o.PublishOrigins, []string{"https://x.example"}) {
					t.Errorf("env lists not applied: %q %q %q", o.Issuers, o.CORSOrigins, o.PublishOrigins)
				}
			},
		},
		{
			name: "flags win over the environment",
			args: []string{"--addr", ":4000", "--jwt-key", "flag", "--anonymous=false", "--cors-origin", "https://z.example", "--issuer", "https://i.example"},
			env:  envMap{"MERCURE_ADDR": ":5000", "MERCURE_JWT_KEY": "env", "MERCURE_ANONYMOUS": "1", "MERCURE_CORS_ORIGINS": "https://x.example", "MERCURE_ISSUER": "https://a.example"},
			check: func(t *testing.T, o *serveOptions) {
				if o.Addr != ":4000" || o.JWTKey != "flag" || o.Anonymous ||
					!slices.Equal(o.CORSOrigins, []string{"https://z.example"}) || !slices.Equal(o.Issuers, []string{"https://i.example"}) {
					t.Errorf("flags did not win: %+v", o)
				}
			},
		},
		{
			name: "repeatable flags",
			args: []string{"--anonymous", "--cors-origin", "https://a.example", "--cors-origin", "*", "--publish-origin", "https://a.example", "--issuer", "a", "--issuer", "b"},
			check: func(t *testing.T, o *serveOptions) {
				if !slices.Equal(o.CORSOrigins, []string{"https://a.example", "*"}) || !slices.Equal(o.Issuers, []string{"a", "b"}) {
					t.Errorf("repeated flags: %q %q", o.CORSOrigins, o.Issuers)
				}
			},
		},
		{
			name: "sizes and durations",
			args: []string{"--anonymous", "--max-body-size", "2MiB", "--heartbeat", "0", "--write-timeout", "0", "--history-size", "0", "--history-max-age", "1h", "--dispatch-timeout", "1s", "--shutdown-timeout", "0s"},
			check: func(t *testing.T, o *serveOptions) {
				if o.MaxBodySize != 2<<20 || o.Heartbeat != 0 || o.WriteTimeout != 0 || o.HistorySize != 0 ||
					o.HistoryMaxAge != time.Hour || o.DispatchTimeout != time.Second || o.ShutdownTimeout != 0 {
					t.Errorf("unexpected values: %+v", o)
				}
			},
		},
		{
			name: "bolt transport",
			args: []string{"--anonymous", "--transport", "bolt:///var/lib/mercure/hub.db"},
			check: func(t *testing.T, o *serveOptions) {
				if o.transport.kind != transportBolt || o.transport.path != filepath.FromSlash("/var/lib/mercure/hub.db") {
					t.Errorf("transport = %+v", o.transport)
				}
			},
		},
		{
			name: "--listen is --addr",
			args: []string{"--anonymous", "--listen", "127.0.0.1:0"},
			check: func(t *testing.T, o *serveOptions) {
				if o.Addr != "127.0.0.1:0" {
					t.Errorf("Addr = %q", o.Addr)
				}
			},
		},
		{name: "alg none", args: []string{"--jwt-key", "k", "--jwt-alg", "none"}, wantCode: 2, wantErr: `"none" algorithm is never accepted`},
		{name: "unknown alg", args: []string{"--jwt-key", "k", "--jwt-alg", "HS1"}, wantCode: 2, wantErr: "unsupported algorithm"},
		{name: "bad addr", args: []string{"--anonymous", "--addr", "localhost"}, wantCode: 2, wantErr: "want HOST:PORT"},
		{name: "bad metrics addr", args: []string{"--anonymous", "--metrics-addr", "9090"}, wantCode: 2, wantErr: "--metrics-addr"},
		{name: "bad JWKS URL", args: []string{"--jwks-url", "idp.example/jwks"}, wantCode: 2, wantErr: "--jwks-url"},
		{name: "relative resource identifier", args: []string{"--anonymous", "--resource-identifier", "/.well-known/mercure"}, wantCode: 2, wantErr: "absolute URL"},
		{name: "unknown transport", args: []string{"--anonymous", "--transport", "postgres://u:hunter2@db/x"}, wantCode: 2, wantErr: "unknown transport"},
		{name: "bolt without file", args: []string{"--anonymous", "--transport", "bolt://"}, wantCode: 2, wantErr: "name the file"},
		{name: "negative heartbeat", args: []string{"--anonymous", "--heartbeat", "-1s"}, wantCode: 2, wantErr: "--heartbeat must not be negative"},
		{name: "zero dispatch timeout", args: []string{"--anonymous", "--dispatch-timeout", "0"}, wantCode: 2, wantErr: "--dispatch-timeout must be positive"},
		{name: "zero body size", args: []string{"--anonymous", "--max-body-size", "0"}, wantCode: 2, wantErr: "--max-body-size must be positive"},
		{name: "bad body size", args: []string{"--anonymous", "--max-body-size", "big"}, wantCode: 2, wantErr: "invalid argument"},
		{name: "cert without key", args: []string{"--anonymous", "--tls-cert", "c.pem"}, wantCode: 2, wantErr: "--tls-cert and --tls-key go together"},
		{name: "bad log format", args: []string{"--anonymous", "--log-format", "xml"}, wantCode: 2, wantErr: "unknown log format"},
		{name: "bad log level", args: []string{"--anonymous", "--log-level", "loud"}, wantCode: 2, wantErr: "unknown log level"},
		{name: "two keys from stdin", args: []string{"--publisher-jwt-key", "@-", "--subscriber-jwt-key", "@-"}, wantCode: 2, wantErr: "only one key can be read from stdin"},
		{name: "dev with an asymmetric alg and no key", args: []string{"--dev", "--jwt-alg", "RS256"}, wantCode: 2, wantErr: "--dev generates an HMAC key"},
		{name: "argument", args: []string{"--anonymous", "extra"}, wantCode: 2, wantErr: "takes no arguments"},
		{name: "bad env boolean", args: []string{"--jwt-key", "k"}, env: envMap{"MERCURE_ANONYMOUS": "sometimes"}, wantCode: 2, wantErr: "MERCURE_ANONYMOUS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, _ := newTestFactory(tt.env)
			o, err := parseServe(t, f, tt.args...)
			if code := exitCode(err); code != tt.wantCode {
				t.Fatalf("exit code %d (err: %v), want %d", code, err, tt.wantCode)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("err %q shows a password", err)
				}
				return
			}
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}

func TestParseTransport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dsn     string
		want    transportSpec
		wantErr string
	}{
		{"", transportSpec{kind: transportBolt}, ""},
		{"memory", transportSpec{kind: transportMemory}, ""},
		{"memory://", transportSpec{kind: transportMemory}, ""},
		{"bolt://hub.db", transportSpec{kind: transportBolt, path: "hub.db"}, ""},
		{"bolt://state/hub.db", transportSpec{kind: transportBolt, path: filepath.FromSlash("state/hub.db")}, ""},
		{"bolt:///var/lib/hub.db", transportSpec{kind: transportBolt, path: filepath.FromSlash("/var/lib/hub.db")}, ""},
		{"redis://localhost:6379/0", transportSpec{kind: transportRedis, dsn: "redis://localhost:6379/0"}, ""},
		{"rediss://u:p@redis.example:6380/1", transportSpec{kind: transportRedis, dsn: "rediss://u:p@redis.example:6380/1"}, ""},
		{"unix:///run/redis.sock", transportSpec{kind: transportRedis, dsn: "unix:///run/redis.sock"}, ""},
		{"bolt://", transportSpec{}, "name the file"},
		{"bolt://hub.db?nosync=1", transportSpec{}, "no parameters"},
		{"memory://x", transportSpec{}, "unknown transport"},
		{"mem", transportSpec{}, "unknown transport"},
		{"http://user:secret@x", transportSpec{}, "xxxxx"},
	}
	for _, tt := range tests {
		got, err := parseTransport(tt.dsn)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || exitCode(err) != exitUsage {
				t.Errorf("parseTransport(%q) error = %v, want a usage error containing %q", tt.dsn, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseTransport(%q) = %+v, %v; want %+v", tt.dsn, got, err, tt.want)
		}
	}
}

func TestHubConfig(t *testing.T) {
	t.Parallel()
	f, _ := newTestFactory(nil)
	o, err := parseServe(t, f, "--anonymous", "--heartbeat", "0", "--write-timeout", "0", "--cors-origin", "https://a.example", "--max-body-size", "1KiB")
	if err != nil {
		t.Fatal(err)
	}
	cfg := o.hubConfig(nil, nil, nil, nil)
	if cfg.Heartbeat != 0 || cfg.WriteTimeout != 0 || cfg.QueueSize != hub.DefaultQueueSize {
		t.Errorf("0 on the command line must pass through, and the rest keep the defaults: Heartbeat %v, WriteTimeout %v, QueueSize %d",
			cfg.Heartbeat, cfg.WriteTimeout, cfg.QueueSize)
	}
	if !cfg.Anonymous || cfg.MaxBodySize != 1024 || !slices.Equal(cfg.CORSOrigins, []string{"https://a.example"}) {
		t.Errorf("cfg = %+v", cfg)
	}

	o, err = parseServe(t, f, "--dev")
	if err != nil {
		t.Fatal(err)
	}
	cfg = o.hubConfig(nil, nil, nil, nil)
	if !cfg.Anonymous || cfg.CORSOrigins != nil || !cfg.CORSAnyOriginWithCredentials {
		t.Errorf("--dev: Anonymous %v, CORSOrigins %q, CORSAnyOriginWithCredentials %v; want true, none and true",
			cfg.Anonymous, cfg.CORSOrigins, cfg.CORSAnyOriginWithCredentials)
	}
	o, err = parseServe(t, f, "--dev", "--cors-origin", "https://a.example")
	if err != nil {
		t.Fatal(err)
	}
	if cfg = o.hubConfig(nil, nil, nil, nil); cfg.CORSAnyOriginWithCredentials || !slices.Equal(cfg.CORSOrigins, []string{"https://a.example"}) {
		t.Errorf("--dev --cors-origin: the list must keep its meaning: %q, %v", cfg.CORSOrigins, cfg.CORSAnyOriginWithCredentials)
	}
	if cfg.Heartbeat != hub.DefaultHeartbeat || cfg.WriteTimeout != hub.DefaultWriteTimeout {
		t.Errorf("defaults not passed through: %v %v", cfg.Heartbeat, cfg.WriteTimeout)
	}
}

func TestPublicURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		tls  bool
		want string
	}{
		{"127.0.0.1:3000", false, "http://127.0.0.1:3000/.well-known/mercure"},
		{"0.0.0.0:3000", false, "http://localhost:3000/.well-known/mercure"},
		{"[::]:3000", true, "https://localhost:3000/.well-known/mercure"},
		{"[::1]:443", true, "https://[::1]:443/.well-known/mercure"},
	}
	for _, tt := range tests {
		addr, err := net.ResolveTCPAddr("tcp", tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := publicURL(addr, tt.tls); got != tt.want {
			t.Errorf("publicURL(%s) = %s, want %s", tt.addr, got, tt.want)
		}
	}
}

func TestWriteAddrFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "addr")
	if err := os.WriteFile(p, []byte("stale\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeAddrFile(p, "127.0.0.1:4321"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "127.0.0.1:4321\n" {
		t.Fatalf("addr file = %q, %v", b, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if err := writeAddrFile(filepath.Join(dir, "missing", "addr"), "x:1"); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}

// An address file that cannot be written stops serve with an error, after
// closing what it opened.
func TestRunServeAddrFileError(t *testing.T) {
	t.Parallel()
	f, _ := newTestFactory(nil)
	o, err := parseServe(t, f, "--anonymous", "--transport", "memory", "--addr", "127.0.0.1:0",
		"--addr-file", filepath.Join(t.TempDir(), "missing", "addr"), "--log-format", "json")
	if err != nil {
		t.Fatal(err)
	}
	err = runServe(t.Context(), o)
	if exitCode(err) != exitError || !strings.Contains(err.Error(), "--addr-file") {
		t.Fatalf("runServe = %v (exit %d), want exit 1 naming --addr-file", err, exitCode(err))
	}
}

// startServe runs runServe in the background with the given flags (plus a
// memory transport, a free port and an address file) and returns the hub
// address once it listens. The returned function stops it (like a first
// signal) and returns runServe's error.
func startServe(t *testing.T, f *factory, args ...string) (addr string, stop func() error) {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	args = append([]string{"--addr", "127.0.0.1:0", "--addr-file", addrFile, "--transport", "memory", "--log-format", "json"}, args...)
	o, err := parseServe(t, f, args...)
	if err != nil {
		t.Fatalf("serve %q: %v", args, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- runServe(ctx, o) }()
	addr = waitAddrFile(t, addrFile, errc)
	var stopped bool
	var stopErr error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case stopErr = <-errc:
			case <-time.After(10 * time.Second):
				t.Fatal("serve did not stop within 10s")
			}
			if _, err := os.Stat(addrFile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the address file was not removed at shutdown: %v", err)
			}
		}
		return stopErr
	}
	t.Cleanup(func() { _ = stop() })
	return addr, stop
}

// waitAddrFile waits for the address file, failing early if serve exits.
func waitAddrFile(t *testing.T, path string, errc <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			if !strings.HasSuffix(string(b), "\n") {
				t.Fatalf("partial address file %q", b)
			}
			return strings.TrimSpace(string(b))
		}
		select {
		case err := <-errc:
			t.Fatalf("serve exited before listening: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("no address file after 10s")
	return ""
}

// logRecords parses the JSON log lines of stderr, skipping other lines.
func logRecords(stderr string) []map[string]any {
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			recs = append(recs, m)
		}
	}
	return recs
}

func findLog(recs []map[string]any, msg string) map[string]any {
	for _, r := range recs {
		if r["msg"] == msg {
			return r
		}
	}
	return nil
}

// publish posts one update and returns the status and body.
func publish(t *testing.T, addr, jwt, topic, data string) (int, string) {
	t.Helper()
	form := url.Values{"topic": {topic}, "data": {data}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+hub.Path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+jwt)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func mintTest(t *testing.T, key string, publish ...string) string {
	t.Helper()
	tok, err := token.Mint(token.MintOptions{Key: []byte(key), Publish: publish, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

const testKey = "0123456789abcdef0123456789abcdef"

func TestRunServeLifecycle(t *testing.T) {
	t.Parallel()
	f, ts := newTestFactory(nil)
	f.Now = time.Now
	addr, stop := startServe(t, f, "--jwt-key", testKey, "--metrics-addr", "127.0.0.1:0", "--issuer", "https://idp.example")

	status, body := publish(t, addr, mintTest(t, testKey, "*"), "https://example.com/books/1", "hello")
	if status != http.StatusOK || !strings.HasPrefix(body, "urn:uuid:") {
		t.Fatalf("publish: %d %q, want 200 and an urn:uuid id", status, body)
	}
	if status, _ := publish(t, addr, mintTest(t, "another key of 32 bytes, not ours", "*"), "https://example.com/books/1", "x"); status != http.StatusUnauthorized {
		t.Errorf("publish with a foreign key: %d, want 401", status)
	}

	listening := findLog(logRecords(ts.Err.String()), "listening")
	if listening == nil || listening["addr"] != addr || listening["url"] != "http://"+addr+hub.Path || listening["transport"] != "memory" {
		t.Fatalf("listening log = %v", listening)
	}
	metrics, _ := listening["metrics"].(string)
	base := strings.TrimSuffix(metrics, "/metrics")
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 || body != "ok\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	if code, body := get(t, metrics); code != 200 || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "mercure") {
		t.Errorf("/metrics: %d, %d bytes; want Go and hub metrics", code, len(body))
	}
	if strings.Contains(ts.Err.String(), "no --issuer") {
		t.Error("issuer warning with --issuer set")
	}

	if err := stop(); err != nil {
		t.Fatalf("serve returned %v after a clean stop", err)
	}
	recs := logRecords(ts.Err.String())
	if findLog(recs, "shutting down") == nil || findLog(recs, "shutdown complete") == nil {
		t.Errorf("missing shutdown lines in %s", ts.Err.String())
	}
	if ts.Out.String() != "" {
		t.Errorf("serve wrote to stdout: %q", ts.Out.String())
	}
}

// --dev prints export lines with a token that keeps working after a
// restart: the generated key is kept in the state directory (mode 0600)
// and reused. CORS answers a credentialed request from any origin.
func TestRunServeDev(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	banner := func(stderr string) (jwt, hubURL string) {
		for line := range strings.SplitSeq(stderr, "\n") {
			if v, ok := strings.CutPrefix(line, "export MERCURE_JWT="); ok {
				jwt = v
			}
			if v, ok := strings.CutPrefix(line, "export MERCURE_URL="); ok {
				hubURL = v
			}
		}
		return jwt, hubURL
	}
	f, ts := newTestFactory(envMap{"XDG_STATE_HOME": state})
	f.Now = time.Now
	addr, stop := startServe(t, f, "--dev")
	jwt, hubURL := banner(ts.Err.String())
	if hubURL != "http://"+addr+hub.Path {
		t.Errorf("MERCURE_URL=%q, want the hub URL", hubURL)
	}
	header, claims, err := token.Inspect(jwt)
	if err != nil {
		t.Fatalf("MERCURE_JWT=%q: %v", jwt, err)
	}
	if !strings.Contains(string(header), `"typ":"JWT"`) ||
		!strings.Contains(string(claims), `"publish":["*"]`) || !strings.Contains(string(claims), `"subscribe":["*"]`) {
		t.Errorf("dev token is not a legacy publish+subscribe * token: %s %s", header, claims)
	}
	keyFile := filepath.Join(state, "mercurectl", devKeyFileName)
	for _, want := range []string{"Key: " + keyFile + " (kept for the next start", "History: in memory, lost when the hub stops."} {
		if !strings.Contains(ts.Err.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, ts.Err.String())
		}
	}
	if fi, err := os.Stat(keyFile); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Errorf("key file: %v, %v; want mode 0600", fi, err)
	}
	if status, body := publish(t, addr, jwt, "https://example.com/hello", "hi"); status != http.StatusOK {
		t.Errorf("publish with the dev token: %d %q", status, body)
	}
	// Anonymous subscribers are allowed, and a credentialed request from
	// any origin gets its Origin back, with credentials.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, hubURL+"?topic=*", nil)
	req.Header.Set("Origin", "https://anywhere.example")
	req.Header.Set("Cookie", "mercureAuthorization="+jwt)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "https://anywhere.example" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("credentialed subscribe: %d, Access-Control-Allow-Origin %q, Access-Control-Allow-Credentials %q",
			resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("Access-Control-Allow-Credentials"))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// The next start reuses the key: the first banner's token still works.
	f2, ts2 := newTestFactory(envMap{"XDG_STATE_HOME": state})
	f2.Now = time.Now
	addr2, stop2 := startServe(t, f2, "--dev")
	if status, body := publish(t, addr2, jwt, "https://example.com/hello", "again"); status != http.StatusOK {
		t.Errorf("publish after a restart with the first token: %d %q\n%s", status, body, ts2.Err.String())
	}
	if err := stop2(); err != nil {
		t.Fatal(err)
	}

	// A key given on the command line is used instead, and nothing is kept.
	f3, ts3 := newTestFactory(envMap{"XDG_STATE_HOME": t.TempDir()})
	f3.Now = time.Now
	_, stop3 := startServe(t, f3, "--dev", "--jwt-key", "given-key-given-key-given-key-0123")
	if strings.Contains(ts3.Err.String(), "Key: ") {
		t.Errorf("a given key is reported as kept:\n%s", ts3.Err.String())
	}
	if err := stop3(); err != nil {
		t.Fatal(err)
	}
}

func TestRunServePortInUse(t *testing.T) {
	t.Parallel()
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	f, _ := newTestFactory(nil)
	o, err := parseServe(t, f, "--anonymous", "--transport", "memory", "--addr", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	err = runServe(t.Context(), o)
	if exitCode(err) != exitError || err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("runServe on a used port: %v (exit %d), want exit 1 and \"already in use\"", err, exitCode(err))
	}
}

func TestRunServeBadKey(t *testing.T) {
	t.Parallel()
	f, _ := newTestFactory(nil)
	o, err := parseServe(t, f, "--jwt-alg", "RS256", "--jwt-key", "not a PEM key", "--transport", "memory", "--addr", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = runServe(t.Context(), o)
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "--jwt-key") {
		t.Fatalf("runServe with a bad key: %v (exit %d), want a usage error naming --jwt-key", err, exitCode(err))
	}
}

// A later signal during a shutdown that is waiting on an in-flight publish
// forces runServe to return at once, with exit code 130, and the address
// file is removed all the same.
func TestRunServeForcedExit(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no signals")
	}
	t.Parallel()
	f, ts := newTestFactory(nil)
	f.Now = time.Now
	o, err := parseServe(t, f, "--jwt-key", testKey, "--transport", "memory", "--addr", "127.0.0.1:0",
		"--addr-file", filepath.Join(t.TempDir(), "addr"), "--shutdown-timeout", "1m", "--log-format", "json")
	if err != nil {
		t.Fatal(err)
	}
	sig := newFakeSignals()
	o.notify = sig.notify
	o.signalWindow = time.Millisecond
	errc := make(chan error, 1)
	go func() { errc <- runServe(t.Context(), o) }()
	addr := waitAddrFile(t, o.AddrFile, errc)

	// A publish whose body never completes keeps http.Server.Shutdown
	// waiting. The "100 Continue" that net/http sends when the handler first
	// reads the body tells that the publish is in the handler.
	conn, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_, _ = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nExpect: 100-continue\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n", hub.Path, addr, mintTest(t, testKey, "*"))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, "100 Continue") {
		t.Fatalf("no 100 Continue from the publish handler: %q, %v", status, err)
	}
	_, _ = fmt.Fprint(conn, "topic=x")

	sig.send() // the first signal
	select {
	case err := <-errc:
		t.Fatalf("serve returned %v although a publish is in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	if !strings.Contains(ts.Err.String(), `"msg":"shutting down"`) {
		t.Fatalf("no shutdown after the first signal: %s", ts.Err.String())
	}
	sig.send() // a later signal
	select {
	case err := <-errc:
		if exitCode(err) != exitInterrupted {
			t.Fatalf("forced exit returned %v (exit %d), want exit 130", err, exitCode(err))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the later signal did not force the exit")
	}
	if !strings.Contains(ts.Err.String(), "interrupted again") {
		t.Errorf("no log line about the forced exit in %s", ts.Err.String())
	}
	if _, err := os.Stat(o.AddrFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the address file is still there after a forced exit: %v", err)
	}
}
