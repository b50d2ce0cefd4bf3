package main

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/hub"
)

// waitLog waits for a log line with msg for which match holds.
func waitLog(t *testing.T, stderr func() string, msg string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, r := range logRecords(stderr()) {
			if r["msg"] == msg && (match == nil || match(r)) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q log line within 10s:\n%s", msg, stderr())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The start-up summary says, in two info lines, where the hub listens, what
// it keeps, who may do what and the limits, without a secret.
func TestServeStartupSummary(t *testing.T) {
	t.Parallel()
	f, ts := newTestFactory(nil)
	startServe(t, f, "--jwt-key", testKey, "--subscriptions", "--ui",
		"--cors-origin", "https://app.example", "--publish-origin", "https://app.example",
		"--issuer", "https://idp.example", "--history-max-age", "1h", "--trusted-proxy", "10.0.0.0/8",
		"--max-body-size", "2MiB")
	listening := waitLog(t, ts.Err.String, "listening", nil)
	if listening["retention"] != "10000 updates, 1h0m0s" || listening["transport"] != "memory" ||
		!strings.HasSuffix(listening["ui"].(string), "/.well-known/mercure/ui/") {
		t.Errorf("listening line %v", listening)
	}
	c := waitLog(t, ts.Err.String, "configuration", nil)
	want := map[string]any{
		"level": "INFO", "protocols": "draft-07 and draft-08", "anonymous": false,
		"cors_origins": "https://app.example", "publish_origins": "https://app.example",
		"key": "HMAC secret (HS256)", "issuers": "https://idp.example", "subscriptions_api": true,
		"access_log": true, "trusted_proxies": "10.0.0.0/8",
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("configuration %s = %v, want %v", k, c[k], v)
		}
	}
	limits, _ := c["limits"].(map[string]any)
	if limits["max_body"] != "2MiB" || limits["heartbeat"] != "40s" || limits["write_timeout"] != "10m0s" || limits["dispatch_timeout"] != "5s" {
		t.Errorf("limits %v", limits)
	}
	if strings.Contains(ts.Err.String(), testKey) {
		t.Error("the key is in the log")
	}
}

// The "no --issuer" warning appears only when draft-08 access tokens can be
// accepted, and says how to silence it.
func TestIssuerWarningOnlyWhenAccessTokensCanBeAccepted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		warn bool
	}{
		{"a key", []string{"--jwt-key", testKey}, true},
		{"a key and an issuer", []string{"--jwt-key", testKey, "--issuer", "https://idp.example"}, false},
		{"no key, anonymous only", []string{"--anonymous"}, false},
		{"the key --dev generated", []string{"--dev"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, ts := newTestFactory(envMap{"XDG_STATE_HOME": t.TempDir()})
			_, stop := startServe(t, f, tc.args...)
			waitLog(t, ts.Err.String, "configuration", nil)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			var warning map[string]any
			for _, r := range logRecords(ts.Err.String()) {
				if m, _ := r["msg"].(string); strings.HasPrefix(m, "no --issuer") {
					warning = r
				}
			}
			if (warning != nil) != tc.warn {
				t.Fatalf("warning %v, want one: %v", warning, tc.warn)
			}
			if warning != nil && !strings.Contains(warning["msg"].(string), "silence this warning") {
				t.Errorf("the warning does not say how to silence it: %v", warning)
			}
		})
	}
}

// --access-log=false (or MERCURE_ACCESS_LOG=false) drops the per-request
// lines but keeps the refusals.
func TestServeAccessLogSwitch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  envMap
		args []string
		on   bool
	}{
		{"default", nil, nil, true},
		{"flag off", nil, []string{"--access-log=false"}, false},
		{"env off", envMap{"MERCURE_ACCESS_LOG": "off"}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, ts := newTestFactory(tc.env)
			addr, stop := startServe(t, f, append([]string{"--jwt-key", testKey, "--issuer", "x"}, tc.args...)...)
			if status, body := publish(t, addr, mintTest(t, testKey, "*"), "https://example.com/a", "payload-not-logged"); status != http.StatusOK {
				t.Fatalf("publish: %d %s", status, body)
			}
			if status, _ := publish(t, addr, mintTest(t, testKey, "https://example.com/other"), "https://example.com/a", "x"); status != http.StatusForbidden {
				t.Fatalf("ungranted publish: %d", status)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			var requests, refused int
			for _, r := range logRecords(ts.Err.String()) {
				switch r["msg"] {
				case "request":
					requests++
					if r["status"] == float64(http.StatusForbidden) && !strings.HasPrefix(r["reason"].(string), "topic https://example.com/a not granted") {
						t.Errorf("reason %v", r["reason"])
					}
				case "request refused":
					refused++
				}
			}
			if tc.on && (requests != 2 || refused != 0) || !tc.on && (requests != 0 || refused != 1) {
				t.Errorf("%d request lines and %d refusal lines (access log %v):\n%s", requests, refused, tc.on, ts.Err.String())
			}
			if strings.Contains(ts.Err.String(), "payload-not-logged") {
				t.Error("the data is in the log")
			}
		})
	}
}

func TestServeTrustedProxyFlag(t *testing.T) {
	t.Parallel()
	f, _ := newTestFactory(envMap{"MERCURE_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1 2001:db8::/32"})
	o, err := parseServe(t, f, "--jwt-key", testKey)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("2001:db8::/32")}
	if !slices.Equal(o.proxies, want) {
		t.Errorf("proxies %v, want %v", o.proxies, want)
	}
	f, _ = newTestFactory(nil)
	_, err = parseServe(t, f, "--jwt-key", testKey, "--trusted-proxy", "10.0.0.0/33")
	checkExit(t, err, exitUsage, `--trusted-proxy "10.0.0.0/33": want a CIDR`)

	// Behind a trusted proxy, the log names the client, not the proxy.
	f, ts := newTestFactory(nil)
	addr, _ := startServe(t, f, "--anonymous", "--trusted-proxy", "127.0.0.1")
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+hub.Path+"/nowhere", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	line := waitLog(t, ts.Err.String, "request", func(r map[string]any) bool { return r["status"] == float64(404) })
	if line["remote"] != "203.0.113.7" {
		t.Errorf("remote %v, want the forwarded client", line["remote"])
	}
}

// The debug UI is off by default, on with --ui (without a secret) and
// always with --dev (with the development token).
func TestServeUI(t *testing.T) {
	t.Parallel()
	config := func(t *testing.T, addr string) (int, map[string]any) {
		t.Helper()
		status, body := get(t, "http://"+addr+hub.Path+"/ui/config.json")
		var c map[string]any
		if status == http.StatusOK {
			if err := json.Unmarshal([]byte(body), &c); err != nil {
				t.Fatal(err)
			}
		}
		return status, c
	}
	f, _ := newTestFactory(nil)
	addr, _ := startServe(t, f, "--jwt-key", testKey)
	if status, _ := get(t, "http://"+addr+hub.Path+"/ui/"); status != http.StatusNotFound {
		t.Errorf("without --ui: %d, want 404", status)
	}

	f, _ = newTestFactory(envMap{"MERCURE_UI": "1"})
	addr, _ = startServe(t, f, "--jwt-key", testKey, "--subscriptions")
	status, c := config(t, addr)
	if status != http.StatusOK || c["dev"] != false || c["subscriptions"] != true || c["token"] != nil || c["mintKey"] != nil {
		t.Errorf("MERCURE_UI=1: %d %v", status, c)
	}

	f, ts := newTestFactory(envMap{"XDG_STATE_HOME": t.TempDir()})
	addr, _ = startServe(t, f, "--dev")
	status, c = config(t, addr)
	jwt := ""
	for line := range strings.SplitSeq(ts.Err.String(), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimPrefix(line, "export "), "MERCURE_JWT="); ok {
			jwt = v
		}
	}
	if status != http.StatusOK || c["dev"] != true || jwt == "" || c["token"] != jwt || c["mintKey"] == nil ||
		c["resourceIdentifier"] != "http://"+addr+hub.Path {
		t.Errorf("--dev: %d %v (printed token %q)", status, c, jwt)
	}
	if !strings.Contains(ts.Err.String(), "http://"+addr+hub.Path+"/ui/") {
		t.Errorf("the --dev banner does not name the UI:\n%s", ts.Err.String())
	}
}
