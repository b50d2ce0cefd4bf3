// Package ui serves the hub's debug page at /.well-known/mercure/ui/: plain
// HTML, CSS and ES modules embedded in the binary, with no build step and no
// request to any other origin. The page talks to the hub only through its
// public HTTP interface on the same origin, so it doubles as an example of
// how a browser client subscribes, publishes and reads the subscriptions API.
//
// The handler carries no secret unless Options.Dev is set: then it hands the
// development token (and, when the development key was generated rather than
// given, the key itself, for minting in the page) to pages loaded from a
// loopback name or an IP address, never to a host name that DNS could point
// elsewhere.
package ui

import (
	"embed"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is the policy of every reply: scripts, styles and
// connections only from the hub's own origin, no inline code, no frames, no
// form submission and no plugin.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Options configures the page.
type Options struct {
	// HubPath is the path of the hub on the page's origin, such as
	// /.well-known/mercure; the page is served under HubPath + "/ui/".
	HubPath string
	// Dev marks a development hub: only then may the page hold DevToken and
	// MintKey.
	Dev bool
	// DevToken is the token the page uses by default in development mode, so
	// that subscribing and publishing work with no extra step.
	DevToken string
	// MintKey is the HMAC key that development mode generated; with it the
	// page mints tokens itself. Leave it nil when the key was configured:
	// a real key never leaves the hub.
	MintKey []byte
	// MintAlg is MintKey's algorithm (HS256, HS384 or HS512).
	MintAlg string
	// Issuer is the iss of the access tokens the page mints ("" means
	// mercurectl).
	Issuer string
	// ResourceIdentifier is the aud of the access tokens the page mints (""
	// means the page's origin plus HubPath, as the hub derives it).
	ResourceIdentifier string
	// Subscriptions says whether the hub serves the subscriptions API, which
	// the page then lists live.
	Subscriptions bool
	// Draft08Only says whether the hub refuses draft-07 subscriptions.
	Draft08Only bool
	// Anonymous says whether subscribers without a token are accepted.
	Anonymous bool
}

// handler serves the page.
type handler struct {
	opts   Options
	prefix string // HubPath + "/ui/"
	files  fs.FS
}

// New returns the page's handler, to be mounted at opts.HubPath + "/ui/"
// (HubPath + "/ui" redirects there).
func New(opts Options) http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return &handler{opts: opts, prefix: opts.HubPath + "/ui/", files: sub}
}

// contentTypes are the types of the embedded files, by extension.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	// Other origins may not even embed these files (no-cors reads).
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Cache-Control", "no-cache")
	if r.URL.Path == strings.TrimSuffix(h.prefix, "/") {
		http.Redirect(w, r, h.prefix, http.StatusMovedPermanently)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch name {
	case "":
		name = "index.html"
	case "config.json":
		h.serveConfig(w, r)
		return
	}
	typ, known := contentTypes[path.Ext(name)]
	b, err := fs.ReadFile(h.files, name)
	if !known || err != nil || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	hd.Set("Content-Type", typ)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

// config is what the page learns about the hub.
type config struct {
	HubPath            string `json:"hubPath"`
	Dev                bool   `json:"dev"`
	Token              string `json:"token,omitempty"`
	MintKey            string `json:"mintKey,omitempty"` // base64url
	MintAlg            string `json:"mintAlg,omitempty"`
	Issuer             string `json:"issuer,omitempty"`
	ResourceIdentifier string `json:"resourceIdentifier,omitempty"`
	Subscriptions      bool   `json:"subscriptions"`
	Draft08Only        bool   `json:"draft08Only"`
	Anonymous          bool   `json:"anonymous"`
	// Withheld explains why a development hub gave no token.
	Withheld string `json:"withheld,omitempty"`
}

// serveConfig answers the page's first request. It is never answered to
// another site (Sec-Fetch-Site), and the development secrets only go to a
// host that cannot be a rebound DNS name.
func (h *handler) serveConfig(w http.ResponseWriter, r *http.Request) {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		http.Error(w, "the debug UI configuration is for the page on this origin only", http.StatusForbidden)
		return
	}
	c := config{
		HubPath:            h.opts.HubPath,
		Dev:                h.opts.Dev,
		Issuer:             h.opts.Issuer,
		ResourceIdentifier: h.opts.ResourceIdentifier,
		Subscriptions:      h.opts.Subscriptions,
		Draft08Only:        h.opts.Draft08Only,
		Anonymous:          h.opts.Anonymous,
	}
	if h.opts.Dev {
		if trustedHost(r.Host) {
			c.Token = h.opts.DevToken
			if len(h.opts.MintKey) > 0 {
				c.MintKey = base64.RawURLEncoding.EncodeToString(h.opts.MintKey)
				c.MintAlg = h.opts.MintAlg
			}
		} else if h.opts.DevToken != "" || len(h.opts.MintKey) > 0 {
			c.Withheld = "the development token is given only to pages loaded from localhost or an IP address; " +
				"paste the MERCURE_JWT that serve --dev printed"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(c)
}

// trustedHost reports whether host (a Host header) is an IP address or a
// localhost name: a page loaded from any other name may come from a DNS
// name rebound to this hub by another site.
func trustedHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	return net.ParseIP(host) != nil || host == "localhost" || strings.HasSuffix(host, ".localhost")
}
