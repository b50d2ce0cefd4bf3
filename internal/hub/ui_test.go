package hub

import (
	"net/http"
	"testing"
)

func TestUIMountedOnlyWhenConfigured(t *testing.T) {
	t.Parallel()
	off := newTestHub(t, nil)
	resp, err := http.Get(off.url + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("without Config.UI: %d, want 404", resp.StatusCode)
	}

	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		_, _ = w.Write([]byte("page"))
	})
	on := newTestHub(t, func(c *Config) { c.UI = page; c.CORSOrigins = []string{"*"} })
	for _, p := range []string{"/ui", "/ui/", "/ui/config.json"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, on.url+p, nil)
		req.Header.Set("Origin", "https://elsewhere.example")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d, want the UI's 200", p, resp.StatusCode)
		}
		// The page is for its own origin: no CORS, even with "*".
		if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("%s: Access-Control-Allow-Origin %q on a UI reply", p, v)
		}
		if v := resp.Header.Get("Content-Security-Policy"); v != "default-src 'none'" {
			t.Errorf("%s: Content-Security-Policy %q, want the UI's own", p, v)
		}
		if v := resp.Header.Get("X-Frame-Options"); v != "DENY" {
			t.Errorf("%s: X-Frame-Options %q, want DENY", p, v)
		}
	}
}
