package ui_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mercurectl/mercurectl/internal/ui"
)

const hubPath = "/.well-known/mercure"

func get(t *testing.T, h http.Handler, target string, hdr map[string]string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func readConfig(t *testing.T, h http.Handler, host string) map[string]any {
	t.Helper()
	resp := get(t, h, "http://"+host+hubPath+"/ui/config.json", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("config.json: %d", resp.StatusCode)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("config.json Cache-Control %q, want no-store", cc)
	}
	var c map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPageIsServedWithAStrictPolicy(t *testing.T) {
	t.Parallel()
	h := ui.New(ui.Options{HubPath: hubPath})
	for _, f := range []struct{ path, typ string }{
		{"/ui/", "text/html"}, {"/ui/index.html", "text/html"}, {"/ui/app.js", "text/javascript"},
		{"/ui/sse.js", "text/javascript"}, {"/ui/jwt.js", "text/javascript"}, {"/ui/style.css", "text/css"},
	} {
		resp := get(t, h, hubPath+f.path, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", f.path, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, f.typ) {
			t.Errorf("%s: Content-Type %q, want %s", f.path, ct, f.typ)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("%s: Content-Security-Policy %q lacks %s", f.path, csp, d)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("%s: Content-Security-Policy %q allows unsafe sources", f.path, csp)
		}
	}
	body, _ := io.ReadAll(get(t, h, hubPath+"/ui/", nil).Body)
	// No inline script or style, and nothing from another origin.
	for _, bad := range []string{"<script>", "<style", "style=", `src="http`, `href="http`, `src="//`, `href="//`} {
		if strings.Contains(string(body), bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
}

func TestPageRoutes(t *testing.T) {
	t.Parallel()
	h := ui.New(ui.Options{HubPath: hubPath})
	if resp := get(t, h, hubPath+"/ui", nil); resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != hubPath+"/ui/" {
		t.Errorf("/ui: %d to %q, want a redirect to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/ui/nope.js", "/ui/ui.go", "/ui/static/app.js", "/ui/../ui/app.js.map"} {
		if resp := get(t, h, hubPath+p, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, resp.StatusCode)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, hubPath+"/ui/", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/: %d, want 405", w.Code)
	}
}

func TestPageCarriesNoSecretOutsideDev(t *testing.T) {
	t.Parallel()
	// Even if a caller filled them in, without Dev the secrets stay out.
	h := ui.New(ui.Options{HubPath: hubPath, DevToken: "tok", MintKey: []byte("key"), MintAlg: "HS256", Subscriptions: true})
	c := readConfig(t, h, "localhost:3000")
	for _, k := range []string{"token", "mintKey"} {
		if _, ok := c[k]; ok {
			t.Errorf("config.json has %q outside development mode: %v", k, c)
		}
	}
	if c["subscriptions"] != true || c["dev"] != false || c["hubPath"] != hubPath {
		t.Errorf("config.json %v", c)
	}
}

func TestDevSecretsOnlyForLoopbackOrIPHosts(t *testing.T) {
	t.Parallel()
	h := ui.New(ui.Options{HubPath: hubPath, Dev: true, DevToken: "tok", MintKey: []byte("key"), MintAlg: "HS256"})
	for _, host := range []string{"localhost:3000", "127.0.0.1:3000", "[::1]:3000", "192.0.2.7:3000", "app.localhost", "LOCALHOST."} {
		c := readConfig(t, h, host)
		if c["token"] != "tok" || c["mintKey"] != "a2V5" || c["mintAlg"] != "HS256" {
			t.Errorf("host %s: config.json %v, want the development token and key", host, c)
		}
	}
	// A name that DNS could rebind to this hub gets neither, and is told why.
	c := readConfig(t, h, "attacker.example:3000")
	if _, ok := c["token"]; ok {
		t.Errorf("rebindable host got the token: %v", c)
	}
	if _, ok := c["mintKey"]; ok {
		t.Errorf("rebindable host got the key: %v", c)
	}
	if w, _ := c["withheld"].(string); !strings.Contains(w, "MERCURE_JWT") {
		t.Errorf("withheld %q, want a hint", w)
	}
	// Another site cannot read it, even from an allowed host.
	for _, site := range []string{"cross-site", "same-site"} {
		resp := get(t, h, "http://localhost"+hubPath+"/ui/config.json", map[string]string{"Sec-Fetch-Site": site})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("Sec-Fetch-Site %s: %d, want 403", site, resp.StatusCode)
		}
	}
}

func TestDevWithConfiguredKeyHasNoMintKey(t *testing.T) {
	t.Parallel()
	h := ui.New(ui.Options{HubPath: hubPath, Dev: true, DevToken: "tok"})
	c := readConfig(t, h, "localhost")
	if _, ok := c["mintKey"]; ok || c["token"] != "tok" {
		t.Errorf("config.json %v, want the token and no key", c)
	}
}
